// Byte-identical artifacts share one onnxruntime session set on a shared pool (per-entity families of identical
// retrains cost once): one session for two models, golden outputs from both, the survivor keeps working when the
// other unloads, and the memory estimate counts the shared sessions once.
import assert from "node:assert/strict";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords } from "../../src/codec/table.ts";
import { estimatedBytes } from "../../src/dataplane/cache.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { ModelInstance } from "../../src/dataplane/instance.ts";
import { loadBundle } from "../../src/model.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { sharedSessions } from "../../src/runtime/onnx/index.ts";
import { SharedOnnxPool } from "../../src/runtime/onnx/shared-pool.ts";
import {
	assertOutputMatches,
	assertTensorsMatch,
	bundleDir,
	golden,
} from "../helpers/fixtures.ts";

const IRIS = "iris-logreg";
let dir: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-shared-sessions-"));
});
after(() => rm(dir, { recursive: true, force: true }));

async function checkGolden(name: string, m: ModelInstance): Promise<void> {
	const g = golden(name);
	const { tensors, errors } = encodeRecords(m.plan, g.records);
	assert.deepEqual(errors, []);
	assertTensorsMatch(name, await m.predict(tensors));
}

describe("the onnx runtime on a shared pool", () => {
	let pool: SharedOnnxPool;
	before(async () => {
		pool = await SharedOnnxPool.start(1);
	});
	after(() => pool.close());

	it("loads byte-identical artifacts (two bundle copies) once; the last unload frees the session", async () => {
		const copy = join(dir, "iris-copy");
		await cp(bundleDir(IRIS), copy, { recursive: true });
		const a = await loadBundle(await readBundle(bundleDir(IRIS)), {
			shared: pool,
			name: "a",
		});
		const b = await loadBundle(await readBundle(copy), {
			shared: pool,
			name: "b",
		});
		assert.equal(pool.models, 1, "one session per worker for both");
		assert.deepEqual(sharedSessions(pool), { sets: 1, users: 2 });
		assert.ok(a.shared && b.shared && a.shared.key === b.shared.key);
		assert.ok(a.shared.bytes > 0 && a.shared.bytes < a.bytes);
		assert.equal(
			estimatedBytes([a, b]),
			a.bytes + b.bytes - a.shared.bytes,
			"the shared sessions are counted once",
		);
		await Promise.all([checkGolden(IRIS, a), checkGolden(IRIS, b)]);

		// A different artifact gets its own session.
		const other = "breast-cancer-gbdt";
		const c = await loadBundle(await readBundle(bundleDir(other)), {
			shared: pool,
		});
		assert.equal(pool.models, 2);
		assert.notEqual(c.shared?.key, a.shared.key);
		await checkGolden(other, c);
		await c.close();

		await a.close();
		assert.equal(pool.models, 1, "b still holds the session");
		assert.deepEqual(sharedSessions(pool), { sets: 1, users: 1 });
		await checkGolden(IRIS, b);
		await assert.rejects(
			a.predict(encodeRecords(a.plan, golden(IRIS).records).tensors),
			/unloaded|closed/,
		);
		await b.close();
		assert.equal(pool.models, 0);
		assert.deepEqual(sharedSessions(pool), { sets: 0, users: 0 });
	});

	it("concurrent loads of one artifact share one load", async () => {
		const bundle = await readBundle(bundleDir(IRIS));
		const ms = await Promise.all(
			[1, 2, 3].map(() => loadBundle(bundle, { shared: pool })),
		);
		assert.equal(pool.models, 1);
		assert.deepEqual(sharedSessions(pool), { sets: 1, users: 3 });
		await Promise.all(ms.map((m) => checkGolden(IRIS, m)));
		await Promise.all(ms.map((m) => m.close()));
		assert.equal(pool.models, 0);
	});
});

describe("a per-entity family of identical retrains", () => {
	let store: ModelStore;
	let tensors: Tensor[];
	before(async () => {
		store = await openRegistry(`sqlite:${join(dir, "r.db")}`);
		const iris = await readBundle(bundleDir(IRIS));
		await store.register(iris, { name: "flower" });
		await store.registerMany(
			["berlin", "paris", "rome", "oslo", "lima", "kyiv"].map((entity) => ({
				bundle: iris,
				opts: { name: "flower", entity },
			})),
		);
		const m = await loadBundle(iris, { mode: "inline" });
		tensors = encodeRecords(m.plan, golden(IRIS).records).tensors;
		await m.close();
	});
	after(() => store.close());

	/** A data plane serving the family lazily (under max_loaded_models when given). */
	const flowers = (maxLoadedModels?: number) =>
		createDataPlane({
			models: [{ name: "flower", source: "flower", entityKey: "city" }],
			registry: store,
			lazy: true,
			...(maxLoadedModels === undefined ? {} : { maxLoadedModels }),
			processMetrics: false,
		});
	/** One request for `city`'s model with the golden rows. */
	const askOf = (dp: Awaited<ReturnType<typeof flowers>>) => (city: string) =>
		dp.infer("flower", undefined, { inputs: tensors }, { entity: city });

	const loadedBytes = async (dp: { metrics(): Promise<{ body: string }> }) =>
		Number(
			/mlship_models_loaded_bytes (\d+)/.exec((await dp.metrics()).body)?.[1],
		);

	it("members with the same sha256 count their sessions once, and evicting one keeps the other answering", async () => {
		const dp = await flowers();
		const g = golden(IRIS);
		const ask = async (city: string) => {
			const r = await dp.infer(
				"flower",
				undefined,
				{ inputs: tensors },
				{ entity: city },
			);
			assert.equal(r.parameters?.entity_fallback, false);
			const label = r.outputs.find((o) => o.name === "label");
			assert.deepEqual(
				Array.from(label?.data as ArrayLike<unknown>, Number),
				g.expected.label as unknown[],
			);
		};
		try {
			await ask("berlin");
			const one = await loadedBytes(dp);
			await ask("paris");
			const two = await loadedBytes(dp);
			assert.ok(
				two > one && two < 2 * one,
				`two members (${two} bytes) cost less than twice one (${one})`,
			);
		} finally {
			await dp.close();
		}
	});

	it("the loaded count and estimated bytes stay exact over first loads (counted without a walk), evictions and unloads", async () => {
		const dp = await flowers(3);
		const gauges = async () => {
			const body = (await dp.metrics()).body;
			return [
				Number(/^mlship_models_loaded (\d+)/m.exec(body)?.[1]),
				Number(/^mlship_models_loaded_bytes (\d+)/m.exec(body)?.[1]),
			];
		};
		const ask = askOf(dp);
		try {
			await ask("berlin");
			const [n1, one] = (await gauges()) as [number, number];
			await ask("paris");
			const [n2, two] = (await gauges()) as [number, number];
			assert.deepEqual([n1, n2], [1, 2]);
			await dp.unload("flower");
			assert.equal((await gauges())[0], 0);
			await ask("rome");
			assert.deepEqual(await gauges(), [1, one], "after an unload");
			await ask("oslo");
			assert.deepEqual(await gauges(), [2, two]);
			await ask("berlin");
			const [n3, three] = (await gauges()) as [number, number];
			assert.equal(n3, 3);
			for (const city of ["paris", "rome", "oslo"]) {
				await ask(city); // each evicts the least recently used member
				assert.deepEqual(await gauges(), [3, three], city);
			}
		} finally {
			await dp.close();
		}
	});

	it("evicts the least recently used member, also one used or loaded after the last eviction walk", async () => {
		const dp = await flowers(3);
		const loaded = () =>
			dp
				.repositoryIndex()
				.filter((e) => e.state === "READY" && e.entity !== undefined)
				.map((e) => e.entity)
				.sort();
		const ask = askOf(dp);
		try {
			for (const city of ["berlin", "paris", "rome"]) await ask(city);
			await ask("oslo"); // walks: berlin goes
			assert.deepEqual(loaded(), ["oslo", "paris", "rome"]);
			await ask("paris"); // used since that walk
			await ask("lima"); // from the walk's order: not paris, rome
			assert.deepEqual(loaded(), ["lima", "oslo", "paris"]);
			await ask("kyiv"); // the order ran out: walks again, oslo is the least recently used
			assert.deepEqual(loaded(), ["kyiv", "lima", "paris"]);
			assert.match(
				(await dp.metrics()).body,
				/mlship_model_evictions_total\{model="flower"\} 3/,
			);
		} finally {
			await dp.close();
		}
	});

	it("under max_loaded_models 1, the evicted member's share goes and the loaded one keeps its session", async () => {
		const dp = await flowers(1);
		try {
			for (const city of ["berlin", "paris", "berlin", "paris"]) {
				const r = await dp.infer(
					"flower",
					undefined,
					{ inputs: tensors },
					{ entity: city },
				);
				assert.equal(r.parameters?.entity, city);
				const probs = r.outputs.find((o) => o.name === "probabilities");
				assertOutputMatches(
					IRIS,
					"probabilities",
					probs?.data as ArrayLike<unknown>,
					golden(IRIS).expected.probabilities as number[][],
				);
			}
			assert.match(
				(await dp.metrics()).body,
				/mlship_model_evictions_total\{model="flower"\} 3/,
			);
		} finally {
			await dp.close();
		}
	});
});
