// Runtimes by name: a manifest's `runtime` picks a registered runtime, unknown names fail clearly, and the core
// imports no runtime library until a model of that runtime is loaded.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { loadBundle } from "../../src/model.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import {
	registerRuntime,
	runtime,
	runtimeNames,
} from "../../src/runtime/registry.ts";
import type { LoadedModel, Runtime } from "../../src/runtime/types.ts";
import { bundleDir, REPO } from "../helpers/fixtures.ts";

/** A runtime written in the test: every output is the sum of each row's inputs. */
const calls: string[] = [];
const sumRuntime: Runtime = {
	name: "sum",
	platform: "sum_v1",
	async load(bundle): Promise<LoadedModel> {
		calls.push(bundle.manifest.name);
		let closed = false;
		return {
			signature: bundle.manifest.signature,
			concurrency: 1,
			bytes: 1,
			async predict(inputs: Tensor[], outputs?: readonly string[]) {
				if (closed) throw new Error("closed");
				const x = inputs[0] as Tensor;
				const rows = x.shape[0] as number;
				const width = x.data.length / rows;
				const sums = new Float32Array(rows);
				for (let r = 0; r < rows; r++) {
					let sum = 0;
					for (let j = 0; j < width; j++)
						sum += (x.data as Float32Array)[r * width + j] as number;
					sums[r] = sum;
				}
				return (
					outputs ?? bundle.manifest.signature.outputs.map((o) => o.name)
				).map((name) => ({
					name,
					datatype: "FP32",
					shape: [rows, 1],
					data: sums,
				}));
			},
			async unload() {
				closed = true;
			},
		};
	},
};

after(() => {
	// Leave the registry as the other tests in this process expect it.
	registerRuntime({
		name: "sum",
		extensions: [],
		load: () => Promise.reject(new Error("gone")),
	});
});

it("onnx is registered by default", async () => {
	assert.ok(runtimeNames().includes("onnx"));
	const rt = await runtime("onnx");
	assert.equal(rt.name, "onnx");
	assert.equal(rt.platform, "onnx_onnxv1");
});

it("an unknown runtime name is MLSHIP_UNSUPPORTED_MODEL, naming the registered runtimes", async () => {
	await assert.rejects(runtime("xgboost"), (e: unknown) => {
		assert.equal((e as { code?: string }).code, "MLSHIP_UNSUPPORTED_MODEL");
		assert.match(
			(e as Error).message,
			/no runtime 'xgboost' is registered \(registered: onnx/,
		);
		return true;
	});
	const b = await readBundle(bundleDir("iris-logreg"));
	b.manifest = { ...b.manifest, runtime: "xgboost" };
	await assert.rejects(loadBundle(b), /no runtime 'xgboost' is registered/);
});

it("manifest.runtime selects the registered runtime; the instance's platform is that runtime's", async () => {
	registerRuntime({
		name: "sum",
		extensions: [],
		load: async () => sumRuntime,
	});
	const b = await readBundle(bundleDir("iris-logreg"));
	b.manifest = {
		...b.manifest,
		name: "summer",
		runtime: "sum",
		signature: {
			inputs: [{ name: "input", datatype: "FP32", shape: [-1, 4] }],
			outputs: [{ name: "total", datatype: "FP32", shape: [-1, 1] }],
		},
	};
	delete b.manifest.labels;
	delete b.manifest.features;
	delete b.manifest.examples;
	const m = await loadBundle(b);
	try {
		assert.deepEqual(calls, ["summer"]);
		assert.equal(m.platform, "sum_v1");
		const [out] = await m.predict([
			{
				name: "input",
				datatype: "FP32",
				shape: [2, 4],
				data: new Float32Array([1, 2, 3, 4, 0.5, 0.5, 0.5, 0.5]),
			},
		]);
		assert.deepEqual(Array.from(out?.data as Float32Array), [10, 2]);
		// The instance validates before the runtime sees anything.
		await assert.rejects(
			m.predict([
				{
					name: "input",
					datatype: "FP32",
					shape: [1, 3],
					data: new Float32Array(3),
				},
			]),
			(e: unknown) => (e as { code?: string }).code === "MLSHIP_INVALID_INPUT",
		);
	} finally {
		await m.close();
	}
});

it("importing the core and the embedded API loads no runtime library (onnxruntime-node comes with the first ONNX model)", () => {
	const script = `
		import { registerHooks } from "node:module";
		const seen = [];
		registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.push(r.url); return r; } });
		const onnx = () => seen.filter((u) => u.includes("onnxruntime-node") || u.includes("/runtime/onnx/"));
		await import("./src/model.ts");
		await import("./src/dataplane/dataplane.ts");
		await import("./src/sql/models.ts");
		const before = onnx();
		const { loadModel } = await import("./src/model.ts");
		const m = await loadModel("test/fixtures/models/iris-logreg", { mode: "inline" });
		await m.close();
		console.log(JSON.stringify({ before, after: onnx().length }));
	`;
	const out = execFileSync(
		process.execPath,
		["--input-type=module", "-e", script],
		{
			cwd: REPO,
			encoding: "utf8",
		},
	);
	const r = JSON.parse(out.trim().split("\n").pop() as string) as {
		before: string[];
		after: number;
	};
	assert.deepEqual(
		r.before,
		[],
		"nothing of the onnx runtime before a model loads",
	);
	assert.ok(
		r.after > 0,
		"the onnx runtime is imported when an ONNX model loads",
	);
});
