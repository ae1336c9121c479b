// Progressive rollouts on a real PostgreSQL registry shared by two replicas (data planes): a good version is promoted
// step by step to 100%; a version that fails ~20% of requests is rolled back automatically; a second rollout on the
// alias is refused with nothing changed.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore, Rollout } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir, golden, REPO } from "../helpers/fixtures.ts";

const rows = golden("iris-logreg").records;
let pg: PostgresServer;
let url: string;
let store: ModelStore;
const planes: DataPlane[] = [];

before(async () => {
	pg = await startPostgres();
	url = await createDatabase(pg.url, uniqueDatabaseName("rollout"));
	store = await openRegistry(url);
	const good = await readBundle(bundleDir("iris-logreg"));
	const bad = await readBundle(
		`${REPO}test/fixtures/rollout/iris-fails-long-sepals`,
	);
	await store.register(good, { name: "churn", aliases: ["production"] }); // 1
	await store.register(good, { name: "churn" }); // 2: answers correctly
	await store.register(bad, { name: "churn" }); // 3: fails rows with sepal_length >= 6.5
	for (let i = 0; i < 2; i++)
		planes.push(
			await createDataPlane({
				models: [{ name: "churn", source: "churn@production" }],
				registry: url,
				processMetrics: false,
				rollouts: { tickMs: 50, replica: `replica-${i}` },
			}),
		);
});
after(async () => {
	for (const dp of planes) await dp.close();
	await store?.close();
	await pg?.stop();
});

/** Sends requests (4 in flight, alternating replicas) until the rollout ends; counts answers by version and failures. */
async function traffic(
	alias: string,
	limitMs: number,
): Promise<{
	rollout: Rollout;
	byVersion: Record<string, number>;
	failed: number;
	ms: number;
}> {
	const started = Date.now();
	const byVersion: Record<string, number> = {};
	let failed = 0;
	let done = false;
	let i = 0;
	const ended = (async () => {
		for (;;) {
			const r = await store.rollout("churn", alias);
			if (r && r.state !== "running") return r;
			if (Date.now() - started > limitMs) return r as Rollout;
			await new Promise((res) => setTimeout(res, 50));
		}
	})().finally(() => {
		done = true;
	});
	await Promise.all(
		Array.from({ length: 4 }, async () => {
			while (!done) {
				const n = i++;
				const dp = planes[n % 2] as DataPlane;
				try {
					const res = await dp.predict("churn", undefined, [
						rows[n % rows.length] as Record<string, unknown>,
					]);
					byVersion[res.model_version] =
						(byVersion[res.model_version] ?? 0) + 1;
				} catch {
					failed++;
				}
			}
		}),
	);
	return { rollout: await ended, byVersion, failed, ms: Date.now() - started };
}

it("a version that answers correctly is promoted step by step to 100%, driven by one replica at a time", async () => {
	await store.startRollout({
		name: "churn",
		alias: "production",
		to: 2,
		steps: [25, 50, 100],
		intervalMs: 200,
		maxErrorRate: 0.01,
		maxP99Ms: 10_000,
		minRequests: 10,
		failures: 3,
	});
	const t = await traffic("production", 120_000);
	assert.equal(t.rollout.state, "promoted", JSON.stringify(t.rollout));
	assert.equal(t.failed, 0);
	assert.equal((await store.get("churn@production")).version, 2);
	assert.equal(
		await store.route("churn", "production"),
		undefined,
		"the split is gone",
	);
	const events = await store.rolloutEvents("churn", "production");
	const moves = events
		.filter((e) => e.type !== "waiting")
		.map((e) => `${e.type}:${e.detail.weight ?? ""}`);
	assert.deepEqual(moves, ["started:25", "step:50", "promoted:50"]);
	// Every rollout action is in the audit log too: the start as whoever started it, the steps as the agent.
	const audited = (await store.audit.list({ action: "rollout" }))
		.filter((a) => a.action !== "rollout.waiting")
		.reverse();
	assert.deepEqual(
		audited.map((a) => a.action),
		["rollout.started", "rollout.step", "rollout.promoted"],
	);
	assert.equal(audited[0]?.target, "churn@production");
	assert.match(audited[1]?.actor ?? "", /^rollout-agent:/);
	assert.ok(
		(t.byVersion["1"] ?? 0) > 0 && (t.byVersion["2"] ?? 0) > 0,
		JSON.stringify(t.byVersion),
	);
	console.log(
		`promotion: ${t.ms} ms, answers by version ${JSON.stringify(t.byVersion)}`,
	);
});

it("a version that fails ~20% of requests is rolled back after 3 failed checks; a second rollout on the alias is refused", async () => {
	const r = await store.startRollout({
		name: "churn",
		alias: "production",
		to: 3,
		steps: [5, 25, 50, 100],
		intervalMs: 200,
		maxErrorRate: 0.01,
		minRequests: 10,
		failures: 3,
	});
	assert.equal(r.from, 2);
	await assert.rejects(
		store.startRollout({
			name: "churn",
			alias: "production",
			to: 1,
			steps: [100],
			intervalMs: 200,
			maxErrorRate: 0.01,
			minRequests: 10,
			failures: 3,
		}),
		(err: Error & { code?: string }) =>
			err.code === "MLSHIP_ALREADY_EXISTS" &&
			/already has a running rollout \(to version 3, step 5%\): abort or promote it first/.test(
				err.message,
			),
	);
	const policy = await store.route("churn", "production");
	assert.deepEqual(
		policy?.policy.split,
		[
			{ version: 2, weight: 95 },
			{ version: 3, weight: 5 },
		],
		"the refused start changed nothing",
	);
	const t = await traffic("production", 120_000);
	assert.equal(t.rollout.state, "rolled_back", JSON.stringify(t.rollout));
	assert.equal(
		(await store.get("churn@production")).version,
		2,
		"the alias stays on the old version",
	);
	assert.equal(await store.route("churn", "production"), undefined);
	const all = await store.rolloutEvents("churn", "production");
	const events = all.slice(all.findLastIndex((e) => e.type === "started"));
	const types = events.map((e) => e.type).filter((x) => x !== "waiting");
	assert.deepEqual(types, [
		"started",
		"check_failed",
		"check_failed",
		"rolled_back",
	]);
	const rate =
		(t.byVersion["3"] ?? 0) + t.failed > 0
			? t.failed / ((t.byVersion["3"] ?? 0) + t.failed)
			: 0;
	assert.ok(
		rate > 0.1 && rate < 0.35,
		`version 3 failed ${(rate * 100).toFixed(1)}% of its requests`,
	);
	console.log(
		`rollback: ${t.ms} ms from start to rolled back, ${t.failed} failed requests of ${Object.values(t.byVersion).reduce((a, b) => a + b, 0) + t.failed} (version 3 answered ${t.byVersion["3"] ?? 0}, failed ${(rate * 100).toFixed(1)}%)`,
	);
});
