// Exact SHAP of linear models: contribution_j = w_j · (x_j − E[x_j]) with E[x] from the bundle's reference profile.
// Checked against values computed independently here (weights by finite differences of predict, means of the
// training rows), base + contributions = raw output, and a clear refusal without a profile.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadModel } from "../../src/model.ts";
import { referenceProfile } from "../../src/monitor/profile/build.ts";
import { featureMeans } from "../../src/trees/explain.ts";
import type { TreeModel } from "../../src/trees/ir.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { withReference } from "../helpers/reference-bundle.ts";

type Row = Record<string, number>;
const mean = (rows: Row[], k: string) =>
	rows.reduce((a, r) => a + (r[k] as number), 0) / rows.length;

describe("exact explanations of linear models", () => {
	it("a linear regression: w·(x − mean) per feature, base + contributions = the prediction", async () => {
		const rows = golden("trees/diabetes-linreg-pmml").records as Row[];
		const train = rows.slice(0, 80);
		const m = await loadModel(
			withReference("trees/diabetes-linreg-pmml", train),
			{ mode: "inline" },
		);
		try {
			const names = Object.keys(rows[0] as Row);
			const x = rows.slice(80, 84);
			const e = await m.explain(x, { top: 3 });
			assert.equal(e.method, "linear");
			const pred = (await m.predict(x)) as { variable: number }[];
			// Each weight independently: the change of the prediction when one feature moves by 1000, over 1000
			// (a large step: the output is float32).
			const origin = Object.fromEntries(names.map((n) => [n, 0]));
			const [p0, ...pj] = (await m.predict([
				origin,
				...names.map((n) => ({ ...origin, [n]: 1000 })),
			])) as { variable: number }[];
			const w = pj.map((p) => (p.variable - (p0?.variable as number)) / 1000);
			e.explanations.forEach((row, r) => {
				const t = row[0];
				assert.ok(t);
				names.forEach((n, j) => {
					const want =
						(w[j] as number) * ((x[r]?.[n] as number) - mean(train, n));
					assert.ok(
						Math.abs((t.values[n] as number) - want) <=
							1e-4 * (1 + Math.abs(want)),
						`row ${r} ${n}: ${t.values[n]} vs ${want}`,
					);
				});
				const sum = Object.values(t.values).reduce((a, b) => a + b, t.base);
				assert.ok(Math.abs(sum - (pred[r]?.variable as number)) <= 1e-4);
				assert.ok(Math.abs(t.output - (pred[r]?.variable as number)) <= 1e-4);
				assert.equal(t.top.length, 3);
			});
			// The base is the prediction at the training means.
			const [atMeans] = (await m.predict([
				Object.fromEntries(names.map((n) => [n, mean(train, n)])),
			])) as { variable: number }[];
			assert.ok(
				Math.abs(
					(e.explanations[0]?.[0]?.base as number) -
						(atMeans?.variable as number),
				) <= 1e-4,
			);
		} finally {
			await m.close();
		}
	});

	it("a multinomial logistic regression: per class in margin space; softmax of the outputs is predict's", async () => {
		const rows = golden("trees/iris-logreg-pmml").records as Row[];
		const m = await loadModel(withReference("trees/iris-logreg-pmml", rows), {
			mode: "pool",
			workers: 1,
		});
		try {
			const x = rows.slice(0, 3);
			const [e, p] = await Promise.all([m.explain(x), m.predict(x)]);
			assert.equal(e.method, "linear");
			e.explanations.forEach((row, r) => {
				assert.deepEqual(
					row.map((t) => t.target),
					["setosa", "versicolor", "virginica"],
				);
				for (const t of row) {
					const sum = Object.values(t.values).reduce((a, b) => a + b, t.base);
					assert.ok(Math.abs(sum - t.output) <= 1e-9);
				}
				const z = row.map((t) => Math.exp(t.output));
				const s = z.reduce((a, b) => a + b, 0);
				const probs = (p[r] as { probabilities: number[] }).probabilities;
				for (const [k, v] of z.entries())
					assert.ok(Math.abs(v / s - (probs[k] as number)) <= 1e-5);
			});
		} finally {
			await m.close();
		}
	});

	it("GeneralRegressionModel GLMs: Poisson (log link, a factor) and binomial (logit) in margin space, w·(x − mean) checked independently", async () => {
		// Poisson: the margin is log(prediction); sex is a factor (its level 2 one-hot, mean = share of 2s)
		const rows = golden("trees/diabetes-glm-poisson-pmml").records as Row[];
		const train = rows.slice(0, 80);
		const m = await loadModel(
			withReference("trees/diabetes-glm-poisson-pmml", train),
			{ mode: "inline" },
		);
		try {
			const x = rows.slice(80, 84);
			const e = await m.explain(x);
			assert.equal(e.method, "linear");
			const pred = (await m.predict(x)) as { variable: number }[];
			const names = Object.keys(rows[0] as Row);
			// each weight independently: the change of log(prediction) for a unit step of one column
			const origin = Object.fromEntries(names.map((n) => [n, 1]));
			const [p0, ...pj] = (await m.predict([
				origin,
				...names.map((n) => ({ ...origin, [n]: 2 })),
			])) as { variable: number }[];
			const w = pj.map((p) => Math.log(p.variable / (p0?.variable as number)));
			e.explanations.forEach((row, r) => {
				const t = row[0];
				assert.ok(t);
				const sum = Object.values(t.values).reduce((a, b) => a + b, t.base);
				assert.ok(Math.abs(sum - t.output) <= 1e-9);
				assert.ok(
					Math.abs(Math.exp(t.output) - (pred[r]?.variable as number)) <=
						1e-5 * (pred[r]?.variable as number),
				);
				names.forEach((n, j) => {
					// sex: 1 → 2 is the factor level's coefficient; its mean is the share of 2s
					const mean =
						n === "sex"
							? train.filter((q) => q.sex === 2).length / train.length
							: train.reduce((a, q) => a + (q[n] as number), 0) / train.length;
					const xv =
						n === "sex" ? (x[r]?.sex === 2 ? 1 : 0) : (x[r]?.[n] as number);
					const key = n === "sex" ? "sex=2" : n;
					const want = (w[j] as number) * (xv - mean);
					assert.ok(
						Math.abs((t.values[key] as number) - want) <=
							1e-4 * (1 + Math.abs(want)),
						`row ${r} ${key}: ${t.values[key]} vs ${want}`,
					);
				});
			});
		} finally {
			await m.close();
		}
		// Binomial logit classifier: explains the positive class; logistic(output) is P(class 1)
		const b = golden("trees/breast-cancer-glm-logit-pmml").records as Row[];
		const c = await loadModel(
			withReference("trees/breast-cancer-glm-logit-pmml", b),
			{ mode: "inline" },
		);
		try {
			const x = b.slice(0, 3);
			const [e, p] = await Promise.all([c.explain(x), c.predict(x)]);
			e.explanations.forEach((row, r) => {
				assert.equal(row.length, 1);
				const t = row[0];
				assert.ok(t);
				const sum = Object.values(t.values).reduce((a, v) => a + v, t.base);
				assert.ok(Math.abs(sum - t.output) <= 1e-9);
				const p1 = (p[r] as { probabilities: number[] }).probabilities[1];
				assert.ok(
					Math.abs(1 / (1 + Math.exp(-t.output)) - (p1 as number)) <= 1e-6,
				);
			});
		} finally {
			await c.close();
		}
	});

	it("without a reference profile the model predicts but explain says how to add one", async () => {
		const m = await loadModel(bundleDir("trees/diabetes-linreg-pmml"), {
			mode: "inline",
		});
		try {
			const x = golden("trees/diabetes-linreg-pmml").records.slice(0, 1);
			assert.equal((await m.predict(x)).length, 1);
			await assert.rejects(
				m.explain(x),
				(err: { code?: string; message: string }) =>
					err.code === "MLSHIP_UNSUPPORTED_MODEL" &&
					/bundle init .*--reference/.test(err.message),
			);
		} finally {
			await m.close();
		}
	});

	it("a profile missing a feature's column is refused naming it", async () => {
		const rows = (golden("trees/diabetes-linreg-pmml").records as Row[]).map(
			({ s6: _, ...r }) => r as Row,
		);
		const m = await loadModel(
			withReference("trees/diabetes-linreg-pmml", rows),
			{ mode: "inline" },
		);
		try {
			await assert.rejects(
				m.explain(golden("trees/diabetes-linreg-pmml").records.slice(0, 1)),
				/feature 's6'.*no column 's6'.*--reference/,
			);
		} finally {
			await m.close();
		}
	});
});

describe("feature means from a reference profile (the model's preprocessing applied)", () => {
	const profile = referenceProfile(
		6,
		[
			{ name: "x", kind: "numeric", values: [1, 2, 3, -1, Number.NaN, 9] },
			{
				name: "city",
				kind: "categorical",
				values: ["a", "b", "a", "c", "a", null],
			},
			{
				name: "many",
				kind: "numeric",
				values: Array.from({ length: 6 }, (_, i) => i),
			},
		],
		[],
	);
	const model = (features: TreeModel["features"]) =>
		({ features }) as unknown as TreeModel;
	it("imputes missing values and a sentinel, scales, and takes one-hot shares over all rows", () => {
		const m = featureMeans(
			model([
				// NaN → 4, the sentinel -1 → 4, then (x − 1) · 2: values 1,2,3,4,4,9 → mean 23/6.
				{
					name: "x",
					input: 0,
					column: 0,
					impute: 4,
					imputeWhen: -1,
					offset: 1,
					scale: 2,
				},
				{ name: "city=a", input: 1, column: 0, equals: "a" },
				{ name: "city=z", input: 1, column: 0, equals: "z" },
				{ name: "many", input: 2, column: 0 },
			]),
			profile,
		);
		assert.ok(Math.abs((m[0] as number) - (23 / 6 - 1) * 2) <= 1e-12);
		assert.equal(m[1], 3 / 6);
		assert.equal(m[2], 0);
		assert.equal(m[3], 2.5);
	});
	it("refuses what the profile cannot tell, naming the feature and how to fix it", () => {
		assert.throws(
			() => featureMeans(model([{ name: "x", input: 0, column: 0 }]), profile),
			/feature 'x'.*missing values the model does not impute.*--reference/,
		);
		assert.throws(
			() =>
				featureMeans(model([{ name: "city", input: 1, column: 0 }]), profile),
			/column 'city' was profiled as categorical/,
		);
	});
});
