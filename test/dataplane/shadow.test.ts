// Shadow traffic at the core: copies scored after the primary answered, compared on two fixture models whose
// differences are known from their golden files; a failing shadow never fails the primary; a full shadow queue drops.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { PredictCall } from "../../src/dataplane/instance.ts";
import {
	compareOutputs,
	type ShadowStats,
	summarize,
} from "../../src/dataplane/routing.ts";
import type { DataPlane, ExperimentInfo } from "../../src/dataplane/types.ts";
import { SqliteStore } from "../../src/registry/store/sqlite/store.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let dir: string;
let store: SqliteStore;
let registry: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-shadow-"));
	registry = join(dir, "r.db");
	store = new SqliteStore(registry);
	const lgbm = await readBundle(bundleDir("diabetes-lgbm"));
	const rf = await readBundle(bundleDir("diabetes-rf"));
	await store.register(lgbm, { name: "diabetes", aliases: ["production"] }); // 1
	await store.register(rf, { name: "diabetes" }); // 2
	// 3: a model with other inputs, so every copy of a diabetes-lgbm request fails in it.
	await store.register(await readBundle(bundleDir("diabetes-sex-ridge")), {
		name: "diabetes",
		allowSignatureChange: true,
	});
	const iris = await readBundle(bundleDir("iris-logreg"));
	await store.register(iris, { name: "iris", aliases: ["production"] }); // 1
	await store.register(iris, { name: "iris" }); // 2
});
after(async () => {
	await store.close();
	await rm(dir, { recursive: true, force: true });
});

async function plane(
	opts: {
		shadowMaxInFlight?: number;
		hooks?: ((c: PredictCall) => void)[];
	} = {},
): Promise<DataPlane> {
	return createDataPlane({
		models: [
			{ name: "diabetes", source: "diabetes@production" },
			{ name: "iris", source: "iris@production" },
		],
		registry,
		processMetrics: false,
		...opts,
	});
}

async function settled(
	dp: DataPlane,
	name: string,
	total: number,
): Promise<ExperimentInfo> {
	const t0 = Date.now();
	for (;;) {
		const info = dp.experiment?.(name) as ExperimentInfo;
		const done = info.shadows.reduce(
			(n, s) => n + s.compared + s.errors + s.dropped,
			0,
		);
		if (done >= total) return info;
		if (Date.now() - t0 > 30_000)
			assert.fail(`shadow copies did not finish: ${JSON.stringify(info)}`);
		await new Promise((r) => setTimeout(r, 10));
	}
}

it("comparison figures match the two models' golden outputs (mean and max |difference|, latency, counts)", async () => {
	await store.setRoute("diabetes", "production", {
		shadow: [{ version: 2, percent: 100 }],
	});
	const dp = await plane();
	try {
		const a = golden("diabetes-lgbm");
		const b = golden("diabetes-rf");
		const pa = (a.expected.variable as (number | number[])[]).flat();
		const pb = (b.expected.variable as (number | number[])[]).flat();
		let sum = 0;
		let max = 0;
		for (let i = 0; i < pa.length; i++) {
			const d = Math.abs((pa[i] as number) - (pb[i] as number));
			sum += d;
			max = Math.max(max, d);
		}
		for (const r of a.records) {
			const res = await dp.predict("diabetes", undefined, [r]);
			assert.equal(res.model_version, "1", "only the primary answers");
		}
		const info = await settled(dp, "diabetes", a.records.length);
		assert.deepEqual(info.versions, ["1", "2"]);
		const s = info.shadows[0];
		assert.equal(s?.version, "2");
		assert.equal(s?.compared, a.records.length);
		assert.equal(s?.errors, 0);
		assert.equal(s?.agreement, undefined, "a regression has no labels");
		const mean = sum / pa.length;
		assert.ok(
			Math.abs((s?.meanAbsDiff as number) - mean) <= 1e-4 * mean,
			`mean |diff| ${s?.meanAbsDiff} vs golden ${mean}`,
		);
		assert.ok(
			Math.abs((s?.maxAbsDiff as number) - max) <= 1e-4 * max,
			`max |diff| ${s?.maxAbsDiff} vs golden ${max}`,
		);
		assert.ok((s?.primaryMs as number) > 0 && (s?.shadowMs as number) > 0);
		const m = (await dp.metrics()).body;
		assert.match(
			m,
			new RegExp(
				`mlship_shadow_requests_total\\{model="diabetes",version="2",outcome="compared"\\} ${a.records.length}`,
			),
		);
		assert.match(
			m,
			/mlship_shadow_score_abs_diff_mean\{model="diabetes",version="2"\} \d/,
		);
		assert.match(
			m,
			/mlship_request_duration_seconds_count\{model="diabetes",version="2"\} 111/,
			"each version's latency has its own series",
		);
	} finally {
		await dp.close();
	}
});

it("compareOutputs: labels by equality (integers and strings), scores by |difference|, other outputs ignored", () => {
	const stats: ShadowStats = {
		model: "m",
		version: "2",
		compared: 1,
		errors: 0,
		dropped: 0,
		labels: 0,
		agreements: 0,
		scores: 0,
		diffSum: 0,
		diffMax: 0,
		primarySeconds: 0.002,
		shadowSeconds: 0.004,
	};
	compareOutputs(
		stats,
		[
			{
				name: "label",
				datatype: "INT64",
				shape: [4],
				data: new BigInt64Array([0n, 1n, 2n, 1n]),
			},
			{
				name: "probabilities",
				datatype: "FP32",
				shape: [2],
				data: new Float32Array([0.25, 0.75]),
			},
			{
				name: "only_primary",
				datatype: "FP32",
				shape: [1],
				data: new Float32Array([9]),
			},
		],
		[
			{
				name: "label",
				datatype: "INT64",
				shape: [4],
				data: new BigInt64Array([0n, 2n, 2n, 1n]),
			},
			{
				name: "probabilities",
				datatype: "FP32",
				shape: [2],
				data: new Float32Array([0.5, 0.5]),
			},
		],
	);
	compareOutputs(
		stats,
		[{ name: "label", datatype: "BYTES", shape: [2], data: ["a", "b"] }],
		[{ name: "label", datatype: "BYTES", shape: [2], data: ["a", "c"] }],
	);
	const s = summarize(stats);
	assert.equal(s.agreement, 4 / 6);
	assert.equal(s.meanAbsDiff, 0.25);
	assert.equal(s.maxAbsDiff, 0.25);
	assert.equal(s.primaryMs, 2);
	assert.equal(s.shadowMs, 4);
});

it("labels: the same classifier as its own shadow agrees on every label and every score", async () => {
	await store.setRoute("iris", "production", {
		shadow: [{ version: 2, percent: 100 }],
	});
	const dp = await plane();
	try {
		const g = golden("iris-logreg");
		await dp.predict("iris", undefined, g.records);
		const s = (await settled(dp, "iris", 1)).shadows[0];
		assert.equal(s?.agreement, 1);
		assert.equal(s?.maxAbsDiff, 0);
		assert.equal(s?.compared, 1);
	} finally {
		await dp.close();
	}
});

it("a shadow that fails every copy never fails the primary, and hooks see shadow copies as such", async () => {
	await store.setRoute("diabetes", "production", {
		shadow: [{ version: 3, percent: 100 }],
	});
	const calls: PredictCall[] = [];
	const dp = await plane({ hooks: [(c) => calls.push(c)] });
	try {
		const records = golden("diabetes-lgbm").records.slice(0, 20);
		for (const [i, r] of records.entries()) {
			const res = await dp.predict("diabetes", undefined, [r], {
				requestId: `req-${i}`,
			});
			assert.equal(res.model_version, "1");
		}
		const s = (await settled(dp, "diabetes", 20)).shadows.find(
			(x) => x.version === "3",
		);
		assert.equal(s?.errors, 20);
		assert.equal(s?.compared, 0);
		assert.equal(calls.filter((c) => c.version === 1).length, 20);
		assert.ok(
			calls.every((c) => c.shadow !== true),
			"failed copies call no hook",
		);
	} finally {
		await dp.close();
	}
	// A shadow that answers: its hook call carries the request id and says it is a shadow copy.
	await store.setRoute("diabetes", "production", {
		shadow: [{ version: 2, percent: 100 }],
	});
	const seen: PredictCall[] = [];
	const dp2 = await plane({ hooks: [(c) => seen.push(c)] });
	try {
		await dp2.predict(
			"diabetes",
			undefined,
			[golden("diabetes-lgbm").records[0] as Record<string, unknown>],
			{ requestId: "r1" },
		);
		await settled(dp2, "diabetes", 1);
		const shadowCall = seen.find((c) => c.version === 2);
		assert.equal(shadowCall?.shadow, true);
		assert.equal(shadowCall?.requestId, "r1");
		assert.equal(seen.find((c) => c.version === 1)?.shadow, undefined);
	} finally {
		await dp2.close();
	}
});

it("the copy is scored after the answer: when predict resolves, only the primary has started in its model", async () => {
	await store.setRoute("diabetes", "production", {
		shadow: [{ version: 2, percent: 100 }],
	});
	let started = 0;
	const dp = await createDataPlane({
		models: [{ name: "diabetes", source: "diabetes@production" }],
		registry,
		processMetrics: false,
		observer: { request: () => started++ },
	});
	try {
		const r = golden("diabetes-lgbm").records[0] as Record<string, unknown>;
		for (let i = 0; i < 20; i++) {
			started = 0;
			await dp.predict("diabetes", undefined, [r]);
			assert.equal(started, 1, "the shadow ran before the answer was returned");
			await settled(dp, "diabetes", i + 1);
		}
	} finally {
		await dp.close();
	}
});

it("a full shadow queue drops copies and counts them; the primary answers every request", async () => {
	await store.setRoute("diabetes", "production", {
		shadow: [{ version: 2, percent: 100 }],
	});
	const dp = await plane({ shadowMaxInFlight: 1 });
	try {
		const records = golden("diabetes-lgbm").records.slice(0, 50);
		const res = await Promise.all(
			records.map((r) => dp.predict("diabetes", undefined, [r])),
		);
		assert.ok(res.every((r) => r.model_version === "1"));
		const s = (await settled(dp, "diabetes", 50)).shadows[0];
		assert.equal((s?.compared ?? 0) + (s?.dropped ?? 0), 50);
		assert.ok((s?.dropped ?? 0) > 0, "some copies were dropped");
		assert.match(
			(await dp.metrics()).body,
			/mlship_shadow_requests_total\{model="diabetes",version="2",outcome="dropped"\} [1-9]/,
		);
	} finally {
		await dp.close();
	}
});
