// KernelSHAP against the reference profile's background row: on a linear model it equals the exact linear
// explanation (the game is additive), on ONNX models (no exact method) base + contributions = the served
// probability per class, the coalition count is stated, and the same seed gives the same values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadModel } from "../../src/model.ts";
import { golden } from "../helpers/fixtures.ts";
import { withReference } from "../helpers/reference-bundle.ts";
import { startRest } from "../helpers/server.ts";

describe("KernelSHAP", () => {
	it("on a linear model equals the exact explanation, with every coalition and with a seeded sample", async () => {
		const rows = golden("trees/diabetes-linreg-pmml").records;
		const m = await loadModel(
			withReference("trees/diabetes-linreg-pmml", rows.slice(0, 80)),
			{ mode: "inline" },
		);
		try {
			const x = rows.slice(80, 83);
			const exact = await m.explain(x);
			assert.equal(exact.method, "linear");
			for (const samples of [undefined, 300]) {
				const k = await m.explain(x, { method: "kernel", samples });
				assert.equal(k.method, "kernel");
				assert.equal(k.space, "output");
				// 10 features: 1022 coalitions fit the default 2048; 300 are drawn.
				assert.equal(k.samples, samples ?? 1022);
				k.explanations.forEach((row, r) => {
					const e = exact.explanations[r]?.[0];
					const t = row[0];
					assert.ok(e && t);
					// The output is float32: agreement to its precision.
					assert.ok(Math.abs(t.base - e.base) <= 1e-3);
					for (const [n, v] of Object.entries(e.values))
						assert.ok(
							Math.abs((t.values[n] as number) - v) <= 5e-3 * (1 + Math.abs(v)),
							`samples ${samples} row ${r} ${n}: ${t.values[n]} vs ${v}`,
						);
				});
			}
		} finally {
			await m.close();
		}
	});

	it("an ONNX model with a reference profile is explained by default: per class, base + contributions = the probability", async () => {
		const g = golden("iris-logreg");
		const m = await loadModel(withReference("iris-logreg", g.records), {
			mode: "inline",
		});
		try {
			const x = g.records.slice(0, 4);
			const [e, p] = await Promise.all([
				m.explain(x, { top: 2 }),
				m.predict(x),
			]);
			assert.equal(e.method, "kernel");
			assert.equal(e.samples, 14);
			e.explanations.forEach((row, r) => {
				assert.deepEqual(
					row.map((t) => t.target),
					["setosa", "versicolor", "virginica"],
				);
				const probs = (p[r] as { probabilities: number[] }).probabilities;
				row.forEach((t, c) => {
					const sum = Object.values(t.values).reduce((a, b) => a + b, t.base);
					assert.ok(Math.abs(sum - (probs[c] as number)) <= 1e-6);
					assert.equal(t.top.length, 2);
				});
			});
		} finally {
			await m.close();
		}
	});

	it("sampled coalitions (13 features, 8190 > 500) are reproducible by seed; samples out of range are refused", async () => {
		const g = golden("wine-xgb");
		const m = await loadModel(withReference("wine-xgb", g.records), {
			mode: "inline",
		});
		try {
			const x = g.records.slice(0, 2);
			const a = await m.explain(x, { method: "kernel", samples: 500, seed: 7 });
			const b = await m.explain(x, { method: "kernel", samples: 500, seed: 7 });
			const c = await m.explain(x, { method: "kernel", samples: 500, seed: 8 });
			assert.equal(a.samples, 500);
			assert.deepEqual(a, b);
			assert.notDeepEqual(a, c);
			const p = await m.predict(x);
			a.explanations.forEach((row, r) => {
				const probs = (p[r] as { probabilities: number[] }).probabilities;
				row.forEach((t, k) => {
					const sum = Object.values(t.values).reduce((s, v) => s + v, t.base);
					assert.ok(Math.abs(sum - (probs[k] as number)) <= 1e-6);
				});
			});
			await assert.rejects(
				m.explain(x, { method: "kernel", samples: 1 }),
				/samples must be an integer from 2 to 100000/,
			);
		} finally {
			await m.close();
		}
	});
});

describe("KernelSHAP over REST /explain", () => {
	it("method, samples and seed from the body; a bad method is a 400; method exact on an ONNX model is a 422", async () => {
		const g = golden("wine-xgb");
		const srv = await startRest(
			{},
			{},
			{
				models: [
					{ name: "wine", source: withReference("wine-xgb", g.records) },
				],
			},
		);
		const post = async (body: object) => {
			const res = await fetch(`${srv.url}/v2/models/wine/explain`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ instances: g.records.slice(0, 2), ...body }),
			});
			return {
				status: res.status,
				body: (await res.json()) as Record<string, unknown>,
			};
		};
		try {
			const a = await post({ samples: 300, seed: 3, top: 2 });
			assert.equal(a.status, 200, JSON.stringify(a.body));
			assert.equal(a.body.method, "kernel");
			assert.equal(a.body.samples, 300);
			const m = await loadModel(withReference("wine-xgb", g.records), {
				mode: "inline",
			});
			const want = await m.explain(g.records.slice(0, 2), {
				method: "kernel",
				samples: 300,
				seed: 3,
				top: 2,
			});
			await m.close();
			assert.deepEqual(a.body.explanations, want.explanations);
			const bad = await post({ method: "shapley" });
			assert.equal(bad.status, 400);
			assert.match(
				String(bad.body.error),
				/method must be "exact" or "kernel"/,
			);
			const exact = await post({ method: "exact" });
			assert.equal(exact.status, 422);
			assert.match(String(exact.body.error), /runtime: trees/);
		} finally {
			await srv.close();
		}
	});
});
