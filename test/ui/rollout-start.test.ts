// The experiments page against a real `mlship serve --ui` with real traffic, in Chromium: a rollout started from the
// page's form (the CLI's defaults, a confirmation, admin only, audited as the typed-in token) whose first step is in
// the registry at once and whose later steps the server's rollout agent makes on the traffic; the configured weights
// over time drawn from the registry's policy history; and a live bandit whose arm shares and rewards on the page
// come from real answers and the feedback posted with their request ids.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { ROLLOUT_DEFAULTS } from "../../src/rollout/spec.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { launchBrowser, screenshot } from "../harness/browser.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { startServing } from "../helpers/server.ts";
import { axe } from "./axe.ts";
import { signedIn } from "./session.ts";

const WAIT = { timeout: 90_000 };
const FLOWER = {
	sepal_length: 5.1,
	sepal_width: 3.5,
	petal_length: 1.4,
	petal_width: 0.2,
};

describe("experiments page: start a rollout, weights over time, a live bandit", () => {
	let dir: string;
	let store: ModelStore;
	let server: RunningServer;
	let browser: Browser;
	let admin: { token: string; id: string };
	let read: string;
	let url: string;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-start-"));
		const uri = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(uri);
		const bundle = await readBundle(bundleDir("iris-logreg"));
		for (const name of ["iris", "arms"]) {
			await store.register(bundle, { name, aliases: ["production"] });
			await store.register(bundle, { name });
			await store.register(bundle, { name });
		}
		const t = await store.tokens.create({
			scopes: ["read", "predict", "admin"],
		});
		admin = { token: t.token, id: t.info.id };
		read = (await store.tokens.create({ scopes: ["read"] })).token;
		// The bandit is configured as `mlship models route arms production --bandit thompson --arms 1,2` would;
		// its arm totals come only from the traffic and feedback below.
		await store.setRoute("arms", "production", {
			bandit: { algorithm: "thompson", arms: [1, 2] },
		});
		server = await startServing(
			{ iris: "iris@production", arms: "arms@production" },
			uri,
			{ ui: true, grpc_port: -1 },
		);
		url = `http://127.0.0.1:${server.httpPort}`;
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await server?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	const signedInAt = (hash: string) =>
		signedIn(browser, url, admin.token, hash);

	/** One answer of `model`: its request id and the version that served it. */
	async function predict(model: string): Promise<{ id: string; v: string }> {
		const res = await fetch(`${url}/v2/models/${model}/predict`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${admin.token}`,
				"content-type": "application/json",
			},
			body: JSON.stringify({ instances: [FLOWER] }),
		});
		assert.equal(res.status, 200, await res.clone().text());
		await res.arrayBuffer();
		return {
			id: res.headers.get("x-request-id") ?? "",
			v: res.headers.get("mlship-model-version") ?? "",
		};
	}

	it("starts a rollout from the form with the CLI's defaults, confirmed, audited as the token; its first step is in the registry", async () => {
		const { page, errors } = await signedInAt("#/experiments");
		const form = page.locator("[data-start-rollout]");
		await form.waitFor(WAIT);
		// The form starts from `mlship rollout start`'s defaults.
		assert.deepEqual(
			{
				steps: await page.getByLabel("Steps (% of traffic)").inputValue(),
				interval: await page.getByLabel("Check every").inputValue(),
				maxErrorRate: await page.getByLabel("Max error rate").inputValue(),
				minRequests: await page
					.getByLabel("Min requests per check")
					.inputValue(),
				failures: await page
					.getByLabel("Roll back after failed checks")
					.inputValue(),
			},
			{ ...ROLLOUT_DEFAULTS },
		);
		assert.equal(await page.getByLabel("Max p99 (ms)").inputValue(), "");
		await page.getByLabel("Alias").selectOption("iris@production");
		// The versions offered are the active ones other than the alias's own, newest first.
		assert.deepEqual(
			await page
				.getByLabel("Roll out version")
				.locator("option")
				.allTextContents(),
			["v3", "v2"],
		);
		await page.getByLabel("Roll out version").selectOption("2");
		await page.getByLabel("Steps (% of traffic)").fill("40,100");
		await page.getByLabel("Check every").fill("1s");
		await page.getByLabel("Min requests per check").fill("5");
		await page.getByLabel("Max p99 (ms)").fill("10000");
		await screenshot(page, "ui-rollout-form");
		assert.deepEqual(await axe(page), []);

		// Cancel changes nothing.
		await page.getByRole("button", { name: "Start rollout…" }).click();
		await page.getByRole("dialog").waitFor(WAIT);
		await page.getByRole("button", { name: "Cancel" }).click();
		assert.equal(await store.rollout("iris", "production"), undefined);

		await page.getByRole("button", { name: "Start rollout…" }).click();
		const dialog = page.getByRole("dialog");
		await dialog.waitFor(WAIT);
		assert.match(
			(await dialog.textContent()) ?? "",
			/Start a rollout of iris@production from v1 to v2 in steps 40,100%\?/,
		);
		await page.locator("#confirm-ok").click();
		const card = page.locator('[data-rollout="iris@production"]');
		await card.locator('[data-state="running"]').waitFor(WAIT);
		assert.match((await card.textContent()) ?? "", /v1 → v2/);
		assert.equal(
			await card.locator('li[aria-current="step"]').textContent(),
			"40%",
		);

		// In the registry: the rollout as the form said (defaults where left alone), and its first split applied.
		const r = await store.rollout("iris", "production");
		assert.ok(r);
		assert.deepEqual(
			{
				from: r.from,
				to: r.to,
				steps: r.steps,
				intervalMs: r.intervalMs,
				maxErrorRate: r.maxErrorRate,
				maxP99Ms: r.maxP99Ms,
				minRequests: r.minRequests,
				failures: r.failures,
			},
			{
				from: 1,
				to: 2,
				steps: [40, 100],
				intervalMs: 1000,
				maxErrorRate: 0.01,
				maxP99Ms: 10_000,
				minRequests: 5,
				failures: 3,
			},
		);
		assert.deepEqual((await store.route("iris", "production"))?.policy.split, [
			{ version: 1, weight: 60 },
			{ version: 2, weight: 40 },
		]);
		const started = await store.audit.list({ action: "rollout.started" });
		assert.equal(started.length, 1);
		assert.equal(started[0]?.actor, admin.id);
		assert.equal(started[0]?.target, "iris@production");

		// A second start while it runs is refused, and the page says why.
		await page.getByLabel("Alias").selectOption("iris@production");
		await page.getByRole("button", { name: "Start rollout…" }).click();
		await page.locator("#confirm-ok").click();
		await page
			.getByRole("alert")
			.filter({ hasText: /already has a running rollout/ })
			.waitFor(WAIT);
		assert.deepEqual(
			errors.filter((e) => !/status of (401|409)/.test(e)),
			[],
		);
		await page.close();
	});

	it("the server's agent steps it to the end on real traffic; the weights over time show every configured split", async () => {
		for (let i = 0; i < 3000; i++) {
			await predict("iris");
			if (
				i % 10 === 0 &&
				(await store.rollout("iris", "production"))?.state !== "running"
			)
				break;
			await new Promise((r) => setTimeout(r, 10));
		}
		assert.equal(
			(await store.rollout("iris", "production"))?.state,
			"promoted",
		);
		const { page, errors } = await signedInAt("#/experiments?range=1h");
		const box = page.locator('[data-weights="iris@production"]');
		await box.locator("canvas").first().waitFor(WAIT);
		// Registered on v1 (100%), the form's first step (60/40), promoted: alias on v2 with the split, then cleared.
		const changes = await box
			.locator("details tbody tr[data-change]")
			.evaluateAll((trs) =>
				trs.map((tr) => [...tr.children].slice(1).map((c) => c.textContent)),
			);
		assert.deepEqual(
			changes.map((c) => c[0]),
			["v1 100%", "v1 60%, v2 40%", "v1 60%, v2 40%", "v2 100%"],
		);
		assert.equal(changes[1]?.[1], admin.id);
		assert.match(changes[3]?.[1] ?? "", /^rollout-agent:/);
		// It has no policy now (promoted), and is drawn because it had one in the range.
		await page
			.getByText("No traffic policy now; it had one in the range.")
			.waitFor(WAIT);
		// The chart's series are the versions configured in the range.
		assert.equal(await box.getAttribute("data-points"), "4");
		assert.deepEqual(
			(
				await box
					.locator(".u-legend .u-series th")
					.evaluateAll((ths) => ths.map((t) => t.textContent?.trim()))
			).slice(1),
			["v1", "v2"],
		);
		await screenshot(page, "ui-experiments-weights");
		assert.deepEqual(await axe(page), []);
		assert.deepEqual(
			errors.filter((e) => !/status of 401/.test(e)),
			[],
		);
		await page.close();
	});

	it("a live bandit: arm shares and rewards on the page come from real answers and the feedback sent for them", async () => {
		const pulls = new Map<string, number>();
		const rewards = new Map<string, number>();
		const feedback: { id: string; reward: number }[] = [];
		// Version 2 pays, version 1 does not (Thompson moves towards 2).
		for (let i = 0; i < 120; i++) {
			const a = await predict("arms");
			const reward = a.v === "2" ? 1 : 0;
			pulls.set(a.v, (pulls.get(a.v) ?? 0) + 1);
			rewards.set(a.v, (rewards.get(a.v) ?? 0) + reward);
			feedback.push({ id: a.id, reward });
			if (feedback.length === 20) {
				const fb = await fetch(`${url}/v2/models/arms/feedback`, {
					method: "POST",
					headers: {
						authorization: `Bearer ${admin.token}`,
						"content-type": "application/json",
					},
					body: JSON.stringify(feedback.splice(0)),
				});
				assert.equal(fb.status, 200, await fb.text());
			}
		}
		assert.deepEqual([...pulls.keys()].sort(), ["1", "2"]);
		// The server flushes its arm deltas to the registry every second.
		const deadline = Date.now() + 60_000;
		while (
			(await store.armStats("arms", "production")).reduce(
				(n, a) => n + a.pulls,
				0,
			) < 120
		) {
			assert.ok(Date.now() < deadline, "arm totals reach the registry");
			await new Promise((r) => setTimeout(r, 200));
		}
		const { page, errors } = await signedInAt("#/experiments");
		const table = page.locator('[data-bandit="arms@production"]');
		await table.waitFor(WAIT);
		const rows = await table
			.locator("tbody tr")
			.evaluateAll((trs) =>
				trs.map((tr) =>
					[...tr.children].map((c) => (c.textContent ?? "").trim()),
				),
			);
		const mean = (v: string) =>
			(rewards.get(v) ?? 0) / (pulls.get(v) as number);
		const expected = ["1", "2"].map((v) => {
			const m = mean(v);
			return [
				`v${v}`,
				String(pulls.get(v)),
				`${((100 * (pulls.get(v) as number)) / 120).toFixed(1)}%`,
				`${m.toFixed(3)}${m === Math.max(mean("1"), mean("2")) ? " (best)" : ""}`,
				(rewards.get(v) ?? 0).toFixed(2),
			];
		});
		assert.deepEqual(rows, expected);
		assert.match(rows[1]?.[3] ?? "", /^1\.000 \(best\)$/);
		// The bandit's weights are learned, not configured: its history names the arms.
		const box = page.locator('[data-weights="arms@production"]');
		assert.match(
			(await box.locator("details tbody").textContent()) ?? "",
			/bandit over v1, v2/,
		);
		await screenshot(page, "ui-experiments-live-bandit");
		assert.deepEqual(await axe(page), []);
		assert.deepEqual(
			errors.filter((e) => !/status of 401/.test(e)),
			[],
		);
		await page.close();
	});

	it("starting a rollout needs admin; bad settings are refused naming the field", async () => {
		const post = (token: string, body: unknown) =>
			fetch(`${url}/ui/api/rollouts/arms/production`, {
				method: "POST",
				headers: {
					authorization: `Bearer ${token}`,
					"content-type": "application/json",
				},
				body: JSON.stringify(body),
			});
		assert.equal((await post(read, { to: "2" })).status, 403);
		const list = await post(admin.token, ["2"]);
		assert.equal(list.status, 400);
		assert.match(await list.text(), /a JSON object .*got a list/);
		const noTo = await post(admin.token, { steps: "10,100" });
		assert.equal(noTo.status, 400);
		assert.match(await noTo.text(), /say which version to roll out/);
		const badSteps = await post(admin.token, { to: "2", steps: "ten" });
		assert.equal(badSteps.status, 400);
		assert.match(await badSteps.text(), /steps expects percentages/);
		const unknown = await post(admin.token, { to: "2", speed: "fast" });
		assert.equal(unknown.status, 400);
		assert.match(await unknown.text(), /unknown rollout setting 'speed'/);
		assert.equal(await store.rollout("arms", "production"), undefined);
		// Only `to`: every other setting is the CLI's default.
		const ok = await post(admin.token, { to: 3 });
		assert.equal(ok.status, 200, await ok.clone().text());
		const r = await store.rollout("arms", "production");
		assert.deepEqual(
			[r?.steps, r?.intervalMs, r?.maxErrorRate, r?.minRequests, r?.failures],
			[[5, 25, 50, 100], 60_000, 0.01, 100, 3],
		);
		assert.equal(r?.maxP99Ms, undefined);
	});
});
