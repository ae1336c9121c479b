// The experiments page's bandit and rollout panels in Chromium against a real `mlship serve --ui` with tokens in the
// registry: arm shares and rewards from the registry's arm totals, a rollout's state, steps and events, and its
// pause / resume / abort / promote made in the page (each confirmed in a dialog, audited as the typed-in admin token).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore, RolloutSpec } from "../../src/registry/types.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { launchBrowser, screenshot } from "../harness/browser.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { startServing } from "../helpers/server.ts";
import { axe } from "./axe.ts";
import { signedIn } from "./session.ts";

const WAIT = { timeout: 90_000 };

const SPEC: RolloutSpec = {
	name: "iris",
	alias: "production",
	to: 2,
	steps: [10, 50, 100],
	// Far apart: no check or step happens while the test runs; only the page's actions change the rollout.
	intervalMs: 3_600_000,
	maxErrorRate: 0.01,
	maxP99Ms: 50,
	minRequests: 100,
	failures: 2,
};

describe("experiments page: bandit arms and rollout actions in Chromium", () => {
	let dir: string;
	let store: ModelStore;
	let server: RunningServer;
	let browser: Browser;
	let admin: { token: string; id: string };
	let read: string;
	let url: string;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-exp-"));
		const uri = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(uri);
		const bundle = await readBundle(bundleDir("iris-logreg"));
		await store.register(bundle, { name: "iris", aliases: ["production"] });
		await store.register(bundle, { name: "iris" });
		await store.register(bundle, { name: "iris" });
		const t = await store.tokens.create({
			scopes: ["read", "predict", "admin"],
		});
		admin = { token: t.token, id: t.info.id };
		read = (await store.tokens.create({ scopes: ["read"] })).token;
		// Arm totals as replicas publish them (two deltas for v2, merged by the registry).
		await store.addArmStats([
			{ name: "iris", alias: "bandit", version: 1, pulls: 30, rewardSum: 12 },
			{ name: "iris", alias: "bandit", version: 2, pulls: 50, rewardSum: 35 },
		]);
		await store.addArmStats([
			{ name: "iris", alias: "bandit", version: 2, pulls: 20, rewardSum: 14 },
		]);
		await store.startRollout(SPEC);
		server = await startServing({ iris: "iris@production" }, uri, {
			ui: true,
			grpc_port: -1,
		});
		url = `http://127.0.0.1:${server.httpPort}`;
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await server?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	/** Clicks the rollout's `verb` button, checks the dialog names it, confirms, and waits for `state`. */
	async function act(page: Page, verb: string, state: string): Promise<void> {
		const label = `${verb[0]?.toUpperCase()}${verb.slice(1)} the rollout of iris@production`;
		await page.getByRole("button", { name: label }).click();
		const dialog = page.getByRole("dialog");
		await dialog.waitFor(WAIT);
		assert.match((await dialog.textContent()) ?? "", new RegExp(label));
		await page.locator("#confirm-ok").click();
		await page
			.locator(`[data-rollout="iris@production"] [data-state="${state}"]`)
			.waitFor(WAIT);
	}

	it("arm shares and rewards; the rollout's steps and events; pause, resume, abort and promote from the page, audited as the token", async () => {
		const { page, errors } = await signedIn(
			browser,
			url,
			admin.token,
			"#/experiments",
		);
		const card = page.locator('[data-rollout="iris@production"]');
		await card.waitFor(WAIT);

		// Bandit: v1 30 pulls (mean 0.4), v2 70 pulls (mean 0.7, best).
		const arms = await page.evaluate<string[][]>(
			`[...document.querySelectorAll('[data-bandit="iris@bandit"] tbody tr')].map((tr) => [...tr.children].map((c) => c.textContent.trim()))`,
		);
		assert.deepEqual(arms, [
			["v1", "30", "30.0%", "0.400", "12.00"],
			["v2", "70", "70.0%", "0.700 (best)", "49.00"],
		]);

		// Rollout: running at step 1 (10%), v1 → v2, its start event.
		assert.match((await card.textContent()) ?? "", /iris@production: v1 → v2/);
		await card.locator('[data-state="running"]').waitFor(WAIT);
		assert.equal(
			await card.locator('li[aria-current="step"]').textContent(),
			"10%",
		);
		assert.equal(await card.locator('[data-event="started"]').count(), 1);
		assert.match(
			(await card.textContent()) ?? "",
			/error rate ≤ 1\.00%, p99 ≤ 50 ms, at least 100 requests/,
		);
		await screenshot(page, "ui-experiments-rollout");
		assert.deepEqual(await axe(page), []);

		// Cancel leaves it as it was.
		await page
			.getByRole("button", { name: "Pause the rollout of iris@production" })
			.click();
		await page.getByRole("button", { name: "Cancel" }).click();
		assert.equal((await store.rollout("iris", "production"))?.state, "running");

		await act(page, "pause", "paused");
		assert.equal((await store.rollout("iris", "production"))?.state, "paused");
		await act(page, "resume", "running");
		await act(page, "abort", "aborted");
		// Aborted: the alias's split is gone and the alias still on v1.
		assert.equal((await store.get("iris@production")).version, 1);
		assert.equal(
			(await store.routes("iris")).some((r) => r.alias === "production"),
			false,
		);
		const events = await store.rolloutEvents("iris", "production");
		assert.deepEqual(
			events.map((e) => e.type),
			["started", "paused", "resumed", "aborted"],
		);
		for (const e of events.slice(1)) assert.equal(e.detail.by, "ui", e.type);
		assert.equal(await card.locator("tbody [data-event]").count(), 4);
		await screenshot(page, "ui-experiments-aborted");

		// A second rollout, promoted from the page: the alias moves to v2.
		await store.startRollout(SPEC);
		await page.reload();
		await page
			.locator('[data-rollout="iris@production"] [data-state="running"]')
			.waitFor(WAIT);
		await act(page, "promote", "promoted");
		assert.equal((await store.get("iris@production")).version, 2);

		// Every action is in the audit log as the admin token typed into the page.
		for (const action of ["pause", "resume", "abort", "promote"]) {
			const found = await store.audit.list({ action: `rollout.${action}` });
			assert.equal(found.length, 1, action);
			assert.equal(found[0]?.actor, admin.id, action);
			assert.equal(found[0]?.target, "iris@production");
		}
		const moved = await store.audit.list({ action: "alias.set" });
		assert.ok(
			moved.some((e) => e.target === "iris@production" && e.actor === admin.id),
			JSON.stringify(moved),
		);
		// The only console errors are the browser's own line for the first load without a token.
		assert.deepEqual(
			errors.filter((e) => !/status of 401/.test(e)),
			[],
		);
		await page.close();
	});

	it("a rollout driven by the server on real traffic: its step events show the check figures; ended, no actions", async () => {
		const from = (await store.get("iris@production")).version;
		await store.startRollout({
			...SPEC,
			to: 3,
			steps: [30, 60, 100],
			intervalMs: 1000,
			minRequests: 3,
			maxP99Ms: 10_000,
			maxErrorRate: 0.5,
		});
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
		const ids: string[] = [];
		// Real requests until the server's rollout agent has checked and stepped it to the end (bounded).
		for (let i = 0; i < 3000; i++) {
			const res = await fetch(`${url}/v2/models/iris/predict`, {
				method: "POST",
				headers: {
					authorization: `Bearer ${admin.token}`,
					"content-type": "application/json",
				},
				body,
			});
			assert.equal(res.status, 200, await res.clone().text());
			ids.push(((await res.json()) as { id: string }).id);
			if (
				i % 20 === 0 &&
				(await store.rollout("iris", "production"))?.state !== "running"
			)
				break;
			await new Promise((r) => setTimeout(r, 20));
		}
		assert.equal(
			(await store.rollout("iris", "production"))?.state,
			"promoted",
		);
		// Truths for every answer (all setosa, as predicted for this flower).
		const fb = await fetch(`${url}/v2/models/iris/feedback`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${admin.token}`,
				"content-type": "application/json",
			},
			body: JSON.stringify(ids.map((id) => ({ id, truth: "setosa" }))),
		});
		assert.equal(fb.status, 200, await fb.text());
		const { page, errors } = await signedIn(
			browser,
			url,
			admin.token,
			"#/experiments",
		);
		const card = page.locator('[data-rollout="iris@production"]');
		await card.locator('[data-state="promoted"]').waitFor(WAIT);
		assert.match((await card.textContent()) ?? "", new RegExp(`v${from} → v3`));
		const step = card.locator('tbody [data-event="step"]').first();
		assert.match(
			(await step.textContent()) ?? "",
			/weight=60 requests=\d+ errors=0 errorRate=0 p99Ms=[\d.]+/,
		);
		assert.equal(await card.getByRole("button").count(), 0);
		// Only this rollout's events, not the earlier rollouts' on the same alias.
		assert.equal(await card.locator('[data-event="started"]').count(), 1);
		await screenshot(page, "ui-experiments-stepped");
		assert.deepEqual(await axe(page), []);

		// The model page's quality panel: classification figures per version that served the answers (v2 and v3).
		await page.goto(`${url}/ui/#/models/iris`);
		await page.locator("#quality table").waitFor(WAIT);
		const cells = await page.evaluate<string[][]>(
			`[...document.querySelectorAll("#quality tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent))`,
		);
		assert.deepEqual(
			cells.map((c) => c[0]).sort(),
			[`v${from}`, "v3"],
			JSON.stringify(cells),
		);
		assert.equal(
			cells.reduce((n, c) => n + Number.parseInt(c[1] ?? "0", 10), 0),
			ids.length,
		);
		for (const c of cells)
			assert.equal(c[2], "1.000 / 1.000", JSON.stringify(c));
		assert.match(
			(await page.locator("#quality thead").textContent()) ?? "",
			/Accuracy.*F1 \(macro\).*ROC AUC.*Log-loss/,
		);
		await screenshot(page, "ui-model-quality-classification");
		assert.deepEqual(await axe(page), []);
		assert.deepEqual(
			errors.filter((e) => !/status of 401/.test(e)),
			[],
		);
		await page.close();
	});

	it("a read token sees the panels but cannot act: the route needs admin", async () => {
		const res = await fetch(`${url}/ui/api/rollouts/iris/production/pause`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${read}`,
				"content-type": "application/json",
			},
			body: "{}",
		});
		assert.equal(res.status, 403, await res.text());
		const bad = await fetch(`${url}/ui/api/rollouts/iris/production/explode`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${admin.token}`,
				"content-type": "application/json",
			},
			body: "{}",
		});
		assert.equal(bad.status, 400);
		assert.match(await bad.text(), /use pause, resume, abort or promote/);
		const ok = await fetch(`${url}/ui/api/experiments`, {
			headers: { authorization: `Bearer ${read}` },
		});
		assert.equal(ok.status, 200);
		const body = (await ok.json()) as { rollouts: { state: string }[] };
		assert.equal(body.rollouts[0]?.state, "promoted");
	});
});
