// The dashboard in a real browser (Debian's chromium via playwright-core) against two real `mlship serve` replicas
// sharing a registry, with real traffic: every page without console errors and without serious/critical axe-core
// violations, the charts draw points, an alias move and an unload made in the page, keyboard navigation, and the
// live charts coming back after the server restarts. Screenshots go to test-artifacts/ (git-ignored).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { launchBrowser, openPage, screenshot } from "../harness/browser.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { startServing } from "../helpers/server.ts";
import { axe } from "./axe.ts";

const IRIS = bundleDir("iris-logreg");
const WAIT = { timeout: 60_000 };

/** Waits until the charts' data attribute (`points`, `nonzero`) is at least `n` (evaluated in the page). */
async function chartsAt(page: Page, attr: string, n: number): Promise<void> {
	await page.waitForFunction(
		`Number(document.getElementById("charts")?.dataset.${attr} ?? 0) >= ${n}`,
		undefined,
		WAIT,
	);
}

async function waitFor(
	what: string,
	fn: () => Promise<boolean>,
	ms = 60_000,
): Promise<void> {
	const end = Date.now() + ms;
	while (Date.now() < end) {
		if (await fn()) return;
		await new Promise((r) => setTimeout(r, 100));
	}
	assert.fail(`timed out waiting for ${what}`);
}

async function indexOf(
	url: string,
): Promise<{ name: string; version: string; state: string }[]> {
	const r = await fetch(`${url}/v2/repository/index`, {
		method: "POST",
		body: "{}",
		headers: { "content-type": "application/json" },
	});
	return (await r.json()) as { name: string; version: string; state: string }[];
}

describe("dashboard in Chromium", () => {
	let dir: string;
	let uri: string;
	let store: ModelStore;
	let replica: RunningServer;
	let server: RunningServer;
	let url: string;
	let replicaUrl: string;
	let browser: Browser;
	let sending = true;
	let traffic: Promise<void>;

	const startMain = (port = 0) =>
		startServing({ iris: "iris@production" }, uri, {
			ui: true,
			ui_servers: [replicaUrl],
			allow_open_admin: true,
			http_port: port,
			grpc_port: -1,
		});

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-browser-"));
		uri = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(uri);
		const bundle = await readBundle(IRIS);
		await store.register(bundle, { name: "iris", aliases: ["production"] });
		await store.register(bundle, { name: "iris" });
		replica = await startServing({ iris: "iris@production" }, uri, {
			allow_open_admin: true,
			grpc_port: -1,
		});
		replicaUrl = `http://127.0.0.1:${replica.httpPort}`;
		server = await startMain();
		url = `http://127.0.0.1:${server.httpPort}`;
		// Real traffic to both replicas for as long as the test runs (bounded in count).
		traffic = (async () => {
			const body = JSON.stringify({
				instances: [
					{
						sepal_length: 5.1,
						sepal_width: 3.5,
						petal_length: 1.4,
						petal_width: 0.2,
					},
				],
			});
			for (let i = 0; sending && i < 50_000; i++) {
				for (const u of [url, replicaUrl])
					await fetch(`${u}/v2/models/iris/predict`, { method: "POST", body })
						.then((r) => r.arrayBuffer())
						.catch(() => undefined); // the main server restarts in the last test
				await new Promise((r) => setTimeout(r, 5));
			}
		})();
		browser = await launchBrowser();
	});
	after(async () => {
		sending = false;
		await traffic;
		await browser?.close();
		await server?.close();
		await replica?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	it("Models page: the model, its aliases and its state on both servers; no console errors, no serious axe violations", async () => {
		const { page, errors } = await openPage(browser, `${url}/ui/`);
		await page.getByRole("link", { name: "iris", exact: true }).waitFor(WAIT);
		const row = page.locator("tbody tr").first();
		assert.match((await row.textContent()) ?? "", /production→1/);
		assert.equal(await row.locator(".state-READY").count(), 2);
		await screenshot(page, "ui-models");
		assert.deepEqual(await axe(page), []);
		assert.deepEqual(errors, []);
		await page.close();
	});

	it("keyboard: skip link, then the pages in order; Enter follows a link", async () => {
		const { page, errors } = await openPage(browser, `${url}/ui/`);
		await page.getByRole("link", { name: "iris", exact: true }).waitFor(WAIT);
		const focused: string[] = [];
		for (let i = 0; i < 5; i++) {
			await page.keyboard.press("Tab");
			focused.push(
				await page.evaluate<string>(
					'document.activeElement?.textContent?.trim() ?? ""',
				),
			);
		}
		assert.deepEqual(focused.slice(0, 4), [
			"Skip to content",
			"Models",
			"Experiments",
			"Servers",
		]);
		await page.keyboard.press("Shift+Tab"); // back to Servers
		await page.keyboard.press("Enter");
		await page
			.getByRole("heading", { name: "Servers", level: 1 })
			.waitFor(WAIT);
		assert.match(page.url(), /#\/servers$/);
		assert.deepEqual(errors, []);
		await page.close();
	});

	it("Model page: live charts draw points per version from real traffic; the shareable URL keeps the range", async () => {
		const { page, errors } = await openPage(
			browser,
			`${url}/ui/#/models/iris?range=1m`,
		);
		await chartsAt(page, "nonzero", 3);
		assert.equal(await page.locator("#range").inputValue(), "1m");
		assert.equal(await page.locator("#charts .chart canvas").count(), 6);
		// The legend names the version serving the traffic.
		assert.match((await page.locator("#charts").textContent()) ?? "", /v1/);
		// No drift monitor on this branch's servers: the panel says what to run.
		await page.getByText("No drift report for this model").waitFor(WAIT);
		await screenshot(page, "ui-model");
		assert.deepEqual(await axe(page), []);
		await page.emulateMedia({ colorScheme: "dark" });
		await page.goto(`${url}/ui/#/models/iris?range=5m`);
		await page.reload();
		await chartsAt(page, "nonzero", 2);
		await screenshot(page, "ui-model-dark");
		assert.deepEqual(errors, []);
		await page.close();
	});

	it("an alias move made in the page (confirmed) is served by the second replica and audited", async () => {
		const { page, errors } = await openPage(browser, `${url}/ui/#/models/iris`);
		await page.locator("#move-production").waitFor(WAIT);
		await page.locator("#move-production").selectOption("2");
		await page.getByRole("button", { name: "Move" }).click();
		const dialog = page.getByRole("dialog");
		await dialog.waitFor(WAIT);
		assert.match(
			(await dialog.textContent()) ?? "",
			/from version 1 to version 2/,
		);
		await screenshot(page, "ui-confirm");
		await page.locator("#confirm-ok").click();
		await waitFor("the replica serving iris v2", async () =>
			(await indexOf(replicaUrl)).some(
				(e) => e.name === "iris" && e.version === "2" && e.state === "READY",
			),
		);
		assert.equal((await store.get("iris@production")).version, 2);
		const audit = await store.audit.list({ action: "alias.set" });
		assert.ok(audit.some((e) => e.target === "iris@production"));
		assert.deepEqual(errors, []);
		await page.close();
	});

	it("Experiments page: a split's weights; Servers page: both servers, and an unload from the page", async () => {
		await store.setRoute("iris", "production", {
			split: [
				{ version: 1, weight: 90 },
				{ version: 2, weight: 10 },
			],
		});
		const { page, errors } = await openPage(browser, `${url}/ui/#/experiments`);
		await page.getByText("split v1=90%, v2=10%").waitFor(WAIT);
		// The split as served: each version's share of the requests, drawn from live traffic.
		await page.waitForFunction(
			'Number(document.querySelector("[data-share]")?.dataset.nonzero ?? 0) >= 5',
			undefined,
			WAIT,
		);
		await screenshot(page, "ui-experiments");
		assert.deepEqual(await axe(page), []);

		await page.goto(`${url}/ui/#/servers`);
		await page.getByRole("heading", { name: replicaUrl }).waitFor(WAIT);
		assert.equal(await page.locator(".card").count(), 2);
		await screenshot(page, "ui-servers");
		assert.deepEqual(await axe(page), []);
		await page
			.getByRole("button", { name: `Unload iris from ${replicaUrl}` })
			.click();
		await page.locator("#confirm-ok").click();
		await waitFor("iris unloaded on the replica", async () =>
			(await indexOf(replicaUrl)).every(
				(e) => e.name !== "iris" || e.state !== "READY",
			),
		);
		assert.ok(
			(await store.audit.list({ action: "model.unload" })).some(
				(e) => e.target === "iris",
			),
		);
		assert.deepEqual(errors, []);
		await page.close();
	});

	it("the live charts reconnect after the server restarts", async () => {
		const { page } = await openPage(browser, `${url}/ui/#/models/iris`);
		await chartsAt(page, "points", 2);
		const port = server.httpPort;
		await server.close();
		await page.waitForFunction(
			'document.getElementById("conn")?.textContent?.startsWith("reconnecting")',
			undefined,
			WAIT,
		);
		server = await startMain(port);
		const before = Number(
			await page.locator("#charts").getAttribute("data-points"),
		);
		await page.waitForFunction(
			`document.getElementById("conn")?.textContent === "live" && Number(document.getElementById("charts")?.dataset.points ?? 0) > ${before + 1}`,
			undefined,
			WAIT,
		);
		await screenshot(page, "ui-reconnected");
		await page.close();
	});
});

describe("dashboard login in Chromium (tokens in the registry)", () => {
	let dir: string;
	let store: ModelStore;
	let server: RunningServer;
	let browser: Browser;
	let read: string;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-login-"));
		const uri = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(uri);
		await store.register(await readBundle(IRIS), {
			name: "iris",
			aliases: ["production"],
		});
		await store.register(await readBundle(IRIS), { name: "iris" });
		read = (await store.tokens.create({ scopes: ["read"] })).token;
		server = await startServing({ iris: "iris@production" }, uri, {
			ui: true,
			grpc_port: -1,
		});
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await server?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	it("without a token the page says what to do; the token typed in is used (and kept in sessionStorage only); a read token cannot move an alias", async () => {
		const url = `http://127.0.0.1:${server.httpPort}`;
		const { page, errors } = await openPage(browser, `${url}/ui/`);
		await page.getByRole("alert").waitFor(WAIT);
		assert.match(
			(await page.getByRole("alert").textContent()) ?? "",
			/enter an API token above \(mlship tokens create --scope read\)/,
		);
		await page.getByLabel("API token").fill(read);
		await page.getByRole("button", { name: "Use" }).click();
		await page.getByRole("link", { name: "iris", exact: true }).waitFor(WAIT);
		assert.equal(
			await page.evaluate<string | null>(
				'sessionStorage.getItem("mlship.token")',
			),
			read,
		);
		assert.equal(
			await page.evaluate<string | null>(
				'localStorage.getItem("mlship.token")',
			),
			null,
		);
		await page.goto(`${url}/ui/#/models/iris`);
		await page.locator("#move-production").waitFor(WAIT);
		await page.locator("#move-production").selectOption("2");
		await page.getByRole("button", { name: "Move" }).click();
		await page.locator("#confirm-ok").click();
		await page.getByText("this call needs 'admin'").waitFor(WAIT);
		assert.equal((await store.get("iris@production")).version, 1);
		await screenshot(page, "ui-login");
		// The only console errors are the browser's own lines for the refused answers (no token yet, then read-only).
		assert.deepEqual(
			errors.filter((e) => !/status of 40[13]/.test(e)),
			[],
		);
		await page.close();
	});
});
