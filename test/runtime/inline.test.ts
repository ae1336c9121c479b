// executor.inline: where a batch runs (calling thread or worker pool), decided from the model's cost measured at load.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { parseManifest } from "../../src/bundle/manifest.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import type { Signature, Tensor } from "../../src/protocol/types.ts";
import {
	calibrateInline,
	DEFAULT_INLINE_MAX_US,
	InlinePolicy,
} from "../../src/runtime/inline.ts";
import { runtime } from "../../src/runtime/registry.ts";
import type { LoadedModel } from "../../src/runtime/types.ts";
import {
	assertTensorsMatch,
	bundleDir,
	FIXTURES,
	golden,
} from "../helpers/fixtures.ts";

const SIG: Signature = {
	inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3] }],
	outputs: [{ name: "y", datatype: "FP32", shape: [-1, 1] }],
};

function policyOf(m: LoadedModel): InlinePolicy {
	const p = (m as LoadedModel & { inlinePolicy?: InlinePolicy }).inlinePolicy;
	assert.ok(p instanceof InlinePolicy, "an onnx model in auto mode has one");
	return p;
}

describe("InlinePolicy", () => {
	it("auto with a measured cost: inline when the batch's cost fits inline_max_us, busy or not", () => {
		const p = new InlinePolicy("auto", 64, 100, { fixedUs: 20, perRowUs: 2 });
		assert.equal(p.inline(1, true), true); // 22 µs
		assert.equal(p.inline(40, true), true); // 100 µs
		assert.equal(p.inline(41, true), false); // 102 µs: the pool while others wait
		assert.equal(p.inline(41, false), true, "idle: up to 10 × inline_max_us");
	});

	it("auto sends a slow model's batches to the pool even when idle (more than 10 × inline_max_us)", () => {
		const p = new InlinePolicy("auto", 64, 100, { fixedUs: 900, perRowUs: 50 });
		assert.equal(p.inline(2, false), true); // 1000 µs
		assert.equal(p.inline(3, false), false); // 1050 µs
		assert.equal(p.inline(1, true), false);
	});

	it("auto never inlines more than inline_max_rows, however cheap", () => {
		const p = new InlinePolicy("auto", 8, 1e9, { fixedUs: 1, perRowUs: 0 });
		assert.equal(p.inline(8, true), true);
		assert.equal(p.inline(9, false), false);
	});

	it("auto without a measurement acts as false: inline only while nothing else waits", () => {
		const p = new InlinePolicy("auto", 64, 100, undefined);
		assert.equal(p.inline(1, false), true);
		assert.equal(p.inline(1, true), false);
		assert.equal(p.inline(65, false), false);
	});

	it("true inlines every batch up to inline_max_rows; false only while idle", () => {
		const yes = new InlinePolicy(true, 64, 0, { fixedUs: 1e6, perRowUs: 1e6 });
		assert.equal(yes.inline(64, true), true, "true ignores the cost");
		assert.equal(yes.inline(65, true), false);
		const no = new InlinePolicy(false, 64, 1e9, { fixedUs: 0, perRowUs: 0 });
		assert.equal(no.inline(1, true), false, "false ignores the cost");
		assert.equal(no.inline(1, false), true);
	});
});

describe("calibrateInline", () => {
	it("fits a fixed and a per-row cost from batches of 1 and 32 zero-filled rows", async () => {
		const seen: Tensor[][] = [];
		const cost = await calibrateInline(
			SIG,
			async (inputs) => {
				seen.push(inputs);
			},
			1000,
		);
		assert.ok(cost, "a model that runs gets a cost");
		assert.ok(cost.fixedUs >= 0 && cost.perRowUs >= 0);
		const rows = new Set(seen.map((i) => i[0]?.shape[0]));
		assert.deepEqual([...rows], [1, 32]);
		const t = seen.at(-1)?.[0] as Tensor;
		assert.deepEqual(t.shape, [32, 3]);
		assert.ok(t.data instanceof Float32Array && t.data.every((v) => v === 0));
	});

	it("a model that refuses the synthetic rows gets no cost (auto then acts as false)", async () => {
		const cost = await calibrateInline(
			SIG,
			async () => {
				throw new Error("unknown category ''");
			},
			1000,
		);
		assert.equal(cost, undefined);
	});

	it("a string input gets no cost: categories cannot be made up (a strict encoder would fail and log)", async () => {
		const strings: Signature = {
			inputs: [
				SIG.inputs[0] as Signature["inputs"][number],
				{ name: "city", datatype: "BYTES", shape: [-1, 1] },
			],
			outputs: SIG.outputs,
		};
		let calls = 0;
		const cost = await calibrateInline(
			strings,
			async () => {
				calls++;
			},
			1000,
		);
		assert.equal(cost, undefined);
		assert.equal(calls, 0, "not run at all");
	});

	it("a fixed batch dimension gets no cost: there is no batch to size", async () => {
		const fixed: Signature = {
			inputs: [{ name: "x", datatype: "FP32", shape: [1, 3] }],
			outputs: SIG.outputs,
		};
		assert.equal(await calibrateInline(fixed, async () => {}, 1000), undefined);
	});

	it("a slow model is timed briefly and never inlined when a pool can take it (the event loop stays free)", async () => {
		const rows: number[] = [];
		const cost = await calibrateInline(
			SIG,
			async (inputs) => {
				rows.push(inputs[0]?.shape[0] as number);
				await new Promise((r) => setTimeout(r, 3));
			},
			100,
		);
		assert.ok(cost);
		assert.ok(!rows.includes(32), "no 32-row batch once one row is too dear");
		assert.ok(rows.length <= 8, `bounded: ${rows.length} runs`);
		const p = new InlinePolicy("auto", 64, 100, cost);
		assert.ok(cost.fixedUs >= 1000, `one row costs ≥ 3 ms: ${cost.fixedUs}`);
		assert.equal(p.inline(1, false), false, "even an idle one-row batch");
	});
});

describe("onnx executor.inline", () => {
	const onnx = () => runtime("onnx");
	const fixture = "breast-cancer-gbdt";

	async function inputsOf(): Promise<{
		bundle: Awaited<ReturnType<typeof readBundle>>;
		inputs: Tensor[];
	}> {
		const bundle = await readBundle(bundleDir(fixture));
		const { tensors, errors } = encodeRecords(
			planTable(bundle.manifest),
			golden(fixture).records,
		);
		assert.deepEqual(errors, []);
		return { bundle, inputs: tensors };
	}

	it("auto (the default) measures the model at load and keeps golden outputs whether batches run inline or in the pool", async () => {
		const { bundle, inputs } = await inputsOf();
		const rt = await onnx();
		for (const inlineMaxUs of [0, 1e9]) {
			const m = await rt.load(bundle, {
				mode: "auto",
				workers: 1,
				inlineMaxUs,
			});
			try {
				const p = policyOf(m);
				assert.equal(p.setting, "auto");
				assert.ok(p.cost && p.cost.fixedUs > 0, "measured at load");
				// inline_max_us 0: every batch goes to the pool; 1e9: every batch up to inline_max_rows runs inline.
				assert.equal(p.inline(1, true), inlineMaxUs > 0);
				assertTensorsMatch(fixture, await m.predict(inputs, undefined, true));
				assertTensorsMatch(fixture, await m.predict(inputs, undefined, false));
			} finally {
				await m.unload();
			}
		}
	});

	it("the default inline_max_us is 40 µs, and the bundle's executor sets inline and inline_max_us", async () => {
		assert.equal(DEFAULT_INLINE_MAX_US, 40);
		const { bundle, inputs } = await inputsOf();
		const rt = await onnx();
		const def = await rt.load(bundle, { mode: "auto", workers: 1 });
		assert.equal(policyOf(def).maxUs, 40);
		await def.unload();
		for (const inline of [true, false] as const) {
			const b = {
				...bundle,
				manifest: {
					...bundle.manifest,
					executor: { workers: 1, inline, inline_max_us: 7 },
				},
			};
			const m = await rt.load(b);
			try {
				const p = policyOf(m);
				assert.equal(p.setting, inline);
				assert.equal(p.maxUs, 7);
				assert.equal(p.cost, undefined, "only auto measures");
				assert.equal(p.inline(1, true), inline);
				assertTensorsMatch(fixture, await m.predict(inputs, undefined, true));
			} finally {
				await m.unload();
			}
		}
	});

	it("every fixture loads in auto mode (measured or not) and answers its golden outputs when busy", async () => {
		const rt = await onnx();
		for (const f of FIXTURES) {
			const bundle = await readBundle(bundleDir(f));
			if (
				bundle.manifest.runtime !== undefined &&
				bundle.manifest.runtime !== "onnx"
			)
				continue;
			const { tensors, errors } = encodeRecords(
				planTable(bundle.manifest),
				golden(f).records,
			);
			assert.deepEqual(errors, []);
			const m = await rt.load(bundle, { mode: "auto", workers: 1 });
			try {
				assertTensorsMatch(f, await m.predict(tensors, undefined, true));
			} finally {
				await m.unload();
			}
		}
	});
});

describe("manifest executor.inline", () => {
	const base =
		"mlship: 1\nname: m\nruntime: onnx\nartifact: {path: model.onnx, sha256: 4a6f22e4ccfdd850a3251cbbaa83dd73e0409dcef150aa1a64efabb398eccfcf}\nsignature:\n  inputs: [{name: x, datatype: FP32, shape: [-1, 1]}]\n  outputs: [{name: y, datatype: FP32, shape: [-1, 1]}]\n";

	it("accepts auto, true and false, and a non-negative inline_max_us", () => {
		for (const v of ["auto", "true", "false"]) {
			const m = parseManifest(
				`${base}executor: {inline: ${v}, inline_max_us: 250}\n`,
			);
			assert.equal(m.executor?.inline, v === "auto" ? "auto" : v === "true");
			assert.equal(m.executor?.inline_max_us, 250);
		}
	});

	it("refuses other values, naming the field", () => {
		assert.throws(
			() => parseManifest(`${base}executor: {inline: sometimes}\n`),
			/inline/,
		);
		assert.throws(
			() => parseManifest(`${base}executor: {inline_max_us: -1}\n`),
			/inline_max_us/,
		);
	});
});
