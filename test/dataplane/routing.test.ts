// Traffic policies at the core, on a real PostgreSQL registry shared by two data planes (replicas in one process):
// a 90/10 split over 20,000 requests, sticky keys that land on the same version on both replicas, rows split per
// feature key, a bandit through an injected chooser, and a policy change followed by both replicas.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import {
	createDataPlane,
	followRegistryModel,
} from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import {
	pickArm,
	stickyBucket,
	type TrafficPolicy,
} from "../../src/experiments/policy.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let pg: PostgresServer;
let url: string;
let store: ModelStore;
const planes: DataPlane[] = [];
const row = golden("diabetes-lgbm").records[0] as Record<string, unknown>;

before(async () => {
	pg = await startPostgres();
	url = await createDatabase(pg.url, uniqueDatabaseName("routing"));
	store = await openRegistry(url);
	const lgbm = await readBundle(bundleDir("diabetes-lgbm"));
	const rf = await readBundle(bundleDir("diabetes-rf"));
	await store.register(lgbm, { name: "churn", aliases: ["production"] }); // 1
	await store.register(rf, { name: "churn" }); // 2
	await store.register(lgbm, { name: "churn" }); // 3
	await store.setRoute("churn", "production", {
		split: [
			{ version: 1, weight: 90 },
			{ version: 2, weight: 10 },
		],
		sticky: { key: "customer_id", from: "param" },
		salt: "exp-1",
	});
	for (let i = 0; i < 2; i++)
		planes.push(
			await createDataPlane({
				models: [{ name: "churn", source: "churn@production" }],
				registry: url,
				processMetrics: false,
			}),
		);
});
after(async () => {
	for (const dp of planes) await dp.close();
	await store?.close();
	await pg?.stop();
});

/** Runs `n` calls, `width` at a time. */
async function many<T>(
	n: number,
	width: number,
	fn: (i: number) => Promise<T>,
): Promise<T[]> {
	const out: T[] = new Array(n);
	let next = 0;
	await Promise.all(
		Array.from({ length: width }, async () => {
			while (next < n) {
				const i = next++;
				out[i] = await fn(i);
			}
		}),
	);
	return out;
}

/** Polls until `ok` holds on every plane; returns the ms it took (fails after 10 s). */
async function until(ok: (dp: DataPlane) => boolean): Promise<number> {
	const t0 = performance.now();
	while (!planes.every(ok)) {
		if (performance.now() - t0 > 10_000)
			assert.fail("the replicas did not follow the policy within 10 s");
		await new Promise((r) => setTimeout(r, 5));
	}
	return performance.now() - t0;
}

describe("the sticky hash", () => {
	it("is deterministic, spreads keys evenly over [0, 100), and depends on the salt", () => {
		assert.equal(
			stickyBucket("s", "customer-1"),
			stickyBucket("s", "customer-1"),
		);
		const deciles = new Array(10).fill(0);
		let moved = 0;
		for (let i = 0; i < 100_000; i++) {
			const b = stickyBucket("salt", `c${i}`);
			assert.ok(b >= 0 && b < 100);
			deciles[Math.floor(b / 10)]++;
			if (
				pickArm(split9010, b) !==
				pickArm(split9010, stickyBucket("other", `c${i}`))
			)
				moved++;
		}
		for (const d of deciles)
			assert.ok(Math.abs(d - 10_000) < 500, `decile ${d}`);
		// Two independent salts disagree on 2·0.9·0.1 = 18% of keys.
		assert.ok(Math.abs(moved / 100_000 - 0.18) < 0.01, `moved ${moved}`);
	});
});

const split9010: { version: number; weight: number }[] = [
	{ version: 1, weight: 90 },
	{ version: 2, weight: 10 },
];

describe("routing on two replicas of one registry", () => {
	it("a 90/10 split lands within ±2 points over 20,000 requests (counted by model_version)", async () => {
		const versions = await many(20_000, 64, async (i) => {
			const dp = planes[i % 2] as DataPlane;
			const r = await dp.predict("churn", undefined, [row]);
			assert.equal(r.predictions[0]?.model_version, r.model_version);
			return r.model_version;
		});
		const v1 = versions.filter((v) => v === "1").length;
		const v2 = versions.filter((v) => v === "2").length;
		assert.equal(v1 + v2, 20_000);
		const share = (v1 / 20_000) * 100;
		console.log(
			`90/10 split over 20,000 requests: ${share.toFixed(2)}% / ${(100 - share).toFixed(2)}%`,
		);
		assert.ok(Math.abs(share - 90) <= 2, `version 1 got ${share}%`);
		// Both versions are served: metadata lists them, each is ready, and a client may name one.
		const dp = planes[0] as DataPlane;
		assert.deepEqual(dp.modelMetadata("churn").versions, ["1", "2"]);
		assert.equal(dp.modelReady("churn", "2"), true);
		assert.throws(() => dp.modelReady("churn", "3"), /serving: 1, 2/);
		for (let i = 0; i < 20; i++)
			assert.equal((await dp.predict("churn", "2", [row])).model_version, "2");
	});

	it("a sticky key gets the same version on both replicas for 100% of 5,000 keys, and its hashed version", async () => {
		const keys = Array.from({ length: 5_000 }, (_, i) => `customer-${i}`);
		const [a, b] = await Promise.all(
			planes.map((dp) =>
				many(
					keys.length,
					32,
					async (i) =>
						(
							await dp.predict("churn", undefined, [row], {
								parameters: { customer_id: keys[i] },
							})
						).model_version,
				),
			),
		);
		let same = 0;
		for (let i = 0; i < keys.length; i++) {
			if (a?.[i] === b?.[i]) same++;
			assert.equal(
				a?.[i],
				String(pickArm(split9010, stickyBucket("exp-1", keys[i] as string))),
			);
		}
		assert.equal(same, keys.length);
		const onTwo = a?.filter((v) => v === "2").length ?? 0;
		assert.ok(
			Math.abs(onTwo / 5_000 - 0.1) < 0.02,
			`${onTwo} keys on version 2`,
		);
		// OIP infer requests carry the key in their parameters as well; a header works when the policy says so.
		const first = keys.findIndex((_, i) => a?.[i] === "2");
		const infer = await planes[0]?.infer("churn", undefined, {
			inputs: [
				{
					name: "float_input",
					datatype: "FP32",
					shape: [1, 10],
					data: new Float32Array(Object.values(row).map(Number)),
				},
			],
			parameters: { customer_id: keys[first] as string },
		});
		assert.equal(infer?.model_version, "2");
	});

	it("a policy change is followed by both replicas; a feature key splits one request's rows across versions", async () => {
		const t0 = performance.now();
		await store.setRoute("churn", "production", {
			split: split9010,
			sticky: { key: "customer_id", from: "feature" },
		});
		const ms = await until(
			(dp) => dp.experiment?.("churn").route?.policy.sticky?.from === "feature",
		);
		console.log(
			`both replicas followed the split change ${ms.toFixed(0)} ms after the write returned (${(performance.now() - t0).toFixed(0)} ms after it started)`,
		);
		const rows = Array.from({ length: 200 }, (_, i) => ({
			...row,
			customer_id: `customer-${i}`,
		}));
		const want = rows.map((r) =>
			String(pickArm(split9010, stickyBucket("exp-1", r.customer_id))),
		);
		for (const dp of planes) {
			const r = await dp.predict("churn", undefined, rows);
			assert.equal(r.model_version, "mixed");
			assert.deepEqual(
				r.predictions.map((p) => p.model_version),
				want,
			);
		}
		// The salt was kept by the change, so the keys kept their versions.
		assert.equal(
			(await store.route("churn", "production"))?.policy.salt,
			"exp-1",
		);
	});

	it("requests whose rows are split by a feature key never fail while the policy changes under them", async () => {
		const rows = Array.from({ length: 20 }, (_, i) => ({
			...row,
			customer_id: `customer-${i}`,
		}));
		const failures: string[] = [];
		let answered = 0;
		let stop = false;
		const clients = planes.flatMap((dp) =>
			[0, 1].map(async () => {
				while (!stop) {
					try {
						await dp.predict("churn", undefined, rows);
						answered++;
					} catch (err) {
						failures.push((err as Error).message);
					}
				}
			}),
		);
		for (let i = 0; i < 8; i++) {
			const other = i % 2 === 0 ? 3 : 2;
			await store.setRoute("churn", "production", {
				split: [
					{ version: 1, weight: 50 },
					{ version: other, weight: 50 },
				],
				sticky: { key: "customer_id", from: "feature" },
			});
			await until(
				(dp) =>
					dp.experiment?.("churn").versions.includes(String(other)) === true,
			);
			await new Promise((r) => setTimeout(r, 50));
		}
		stop = true;
		await Promise.all(clients);
		assert.deepEqual(failures, []);
		assert.ok(answered > 0);
	});

	it("long-running workers that lease (followModel) get one version per lease, by the split's weights", async () => {
		await store.setRoute("churn", "production", {
			split: [
				{ version: 1, weight: 50 },
				{ version: 2, weight: 50 },
			],
		});
		const m = await followRegistryModel("churn@production", {
			registry: url,
		});
		try {
			const seen: Record<string, number> = {};
			for (let i = 0; i < 400; i++) {
				const { model, release } = await m.lease();
				seen[String(model.version)] = (seen[String(model.version)] ?? 0) + 1;
				release();
			}
			assert.deepEqual(Object.keys(seen).sort(), ["1", "2"]);
			assert.ok(Math.abs((seen["1"] ?? 0) - 200) < 60, JSON.stringify(seen));
		} finally {
			await m.close();
		}
	});

	it("a bandit asks the injected chooser; clearing the policy serves the alias's one version again", async () => {
		const asked: TrafficPolicy["bandit"][] = [];
		const dp = await createDataPlane({
			models: [{ name: "churn", source: "churn@production" }],
			registry: url,
			processMetrics: false,
			armChooser: {
				choose(name, alias, bandit) {
					assert.equal(`${name}@${alias}`, "churn@production");
					asked.push(bandit);
					return 3;
				},
			},
		});
		try {
			await store.setRoute("churn", "production", {
				bandit: { algorithm: "thompson", arms: [2, 3] },
			});
			await until(
				() => dp.experiment?.("churn").route?.policy.bandit !== undefined,
			);
			const r = await dp.predict("churn", undefined, [row]);
			assert.equal(r.model_version, "3");
			assert.deepEqual(asked.at(-1)?.arms, [2, 3]);
			// Without a chooser, arms are picked uniformly.
			await until(
				(p) => p.experiment?.("churn").route?.policy.bandit !== undefined,
			);
			const seen = new Set(
				await many(
					200,
					16,
					async () =>
						(await planes[0]?.predict("churn", undefined, [row]))
							?.model_version,
				),
			);
			assert.deepEqual([...seen].sort(), ["2", "3"]);
			await store.clearRoute("churn", "production");
			await until((p) => p.experiment?.("churn").route === undefined);
			await until(() => dp.experiment?.("churn").route === undefined);
			assert.deepEqual(dp.experiment?.("churn").versions, ["1"]);
			assert.equal(
				(await dp.predict("churn", undefined, [row])).model_version,
				"1",
			);
			assert.equal(
				(await dp.predict("churn", undefined, [row])).predictions[0]
					?.model_version,
				undefined,
				"rows carry model_version only under a policy",
			);
		} finally {
			await dp.close();
		}
	});
});
