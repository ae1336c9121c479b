// Readers: what they cannot represent is refused naming the node or element; hostile files fail cleanly; a
// hand-written PMML (majority vote, set predicates, missing-value strategies) gives outputs worked out by hand.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Tensor } from "../../src/protocol/types.ts";
import { predictTree } from "../../src/trees/eval.ts";
import { readTreeModel } from "../../src/trees/read/index.ts";
import { bundleDir } from "../helpers/fixtures.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const refused = (
	bytes: Uint8Array,
	pattern: RegExp,
	code = "MLSHIP_UNSUPPORTED_MODEL",
) =>
	assert.throws(
		() => readTreeModel(bytes, "m"),
		(e: { code?: string; message: string }) => {
			assert.equal(e.code, code, e.message);
			assert.match(e.message, pattern);
			return true;
		},
	);

const pmml = (
	body: string,
	dict = '<DataField name="a" optype="continuous" dataType="double"/>',
) =>
	utf8(`<?xml version="1.0"?><PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4"><DataDictionary>
<DataField name="y" optype="continuous" dataType="double"/>${dict}</DataDictionary>${body}</PMML>`);

describe("readers refuse what they cannot represent, naming it", () => {
	it("ONNX: a neural network's first unsupported node", () => {
		refused(
			readFileSync(`${bundleDir("digits-mlp")}/model.onnx`),
			/node 'MatMul' \(MatMul\): operator MatMul is not supported/,
		);
	});
	it("PMML GeneralRegressionModel: other model types, links, interactions, exponents, trials", () => {
		const grm = (attrs: string, body = "") =>
			pmml(
				`<GeneralRegressionModel ${attrs}><MiningSchema><MiningField name="y" usageType="target"/><MiningField name="a"/></MiningSchema>
<ParameterList><Parameter name="p0"/><Parameter name="p1"/></ParameterList><CovariateList><Predictor name="a"/></CovariateList>
<PPMatrix>${body || '<PPCell value="1" predictorName="a" parameterName="p1"/>'}</PPMatrix>
<ParamMatrix><PCell parameterName="p0" beta="1"/><PCell parameterName="p1" beta="2"/></ParamMatrix></GeneralRegressionModel>`,
			);
		refused(
			grm('modelType="ordinalMultinomial" functionName="regression"'),
			/GeneralRegressionModel modelType="ordinalMultinomial": not supported \(regression, generalLinear, generalizedLinear, multinomialLogistic are\)/,
		);
		refused(
			grm('modelType="CoxRegression" functionName="regression"'),
			/modelType="CoxRegression": not supported/,
		);
		refused(
			grm(
				'modelType="generalizedLinear" functionName="regression" linkFunction="probit"',
			),
			/GeneralRegressionModel linkFunction="probit": not supported \(identity, log, logit are\)/,
		);
		refused(
			grm(
				'modelType="generalizedLinear" functionName="regression" linkFunction="log" trialsVariable="a"',
			),
			/GeneralRegressionModel trialsVariable: binomial trials are not supported/,
		);
		refused(
			grm(
				'modelType="regression" functionName="regression"',
				'<PPCell value="2" predictorName="a" parameterName="p1"/>',
			),
			/parameter 'p1' PPCell 'a': exponent 2 is not supported/,
		);
		refused(
			grm(
				'modelType="regression" functionName="regression"',
				'<PPCell value="1" predictorName="a" parameterName="p1"/><PPCell value="1" predictorName="a" parameterName="p1"/>',
			),
			/parameter 'p1': an interaction of 'a' × 'a' is not supported/,
		);
		refused(
			grm(
				'modelType="generalizedLinear" functionName="regression" linkFunction="logit"',
			),
			/not supported for functionName="regression" \(classification needs multinomialLogistic or a logit link\)/,
		);
	});
	it("PMML: NeuralNetwork, weighted segmentations, derived fields", () => {
		refused(
			pmml(
				'<NeuralNetwork functionName="regression"><MiningSchema/></NeuralNetwork>',
			),
			/NeuralNetwork: not supported/,
		);
		refused(
			pmml(
				'<MiningModel functionName="regression"><MiningSchema><MiningField name="a"/></MiningSchema><Segmentation multipleModelMethod="weightedAverage"/></MiningModel>',
			),
			/multipleModelMethod="weightedAverage"/,
		);
		refused(
			pmml(
				'<TransformationDictionary><DerivedField name="b" optype="continuous" dataType="double"/></TransformationDictionary><TreeModel functionName="regression"><MiningSchema/><Node score="1"><True/></Node></TreeModel>',
			),
			/TransformationDictionary: derived fields/,
		);
	});
	it("XGBoost: dart boosters, unknown objectives", () => {
		const doc = (booster: string, objective: string) =>
			utf8(
				JSON.stringify({
					learner: {
						gradient_booster: { name: booster, model: { trees: [] } },
						learner_model_param: {
							base_score: "5E-1",
							num_feature: "2",
							num_class: "0",
						},
						objective: { name: objective },
					},
				}),
			);
		refused(doc("dart", "reg:squarederror"), /gradient_booster 'dart'/);
		const tree = {
			left_children: [1, -1, -1],
			right_children: [2, -1],
			split_indices: [0, 0, 0],
			split_conditions: [1, 2, 3],
			default_left: [0, 0, 0],
		};
		const hostile = (param: Record<string, string>, trees: unknown[]) =>
			utf8(
				JSON.stringify({
					learner: {
						gradient_booster: {
							name: "gbtree",
							model: { trees, tree_info: trees.map(() => 0) },
						},
						learner_model_param: {
							base_score: "0",
							num_feature: "2",
							...param,
						},
						objective: { name: "reg:squarederror" },
					},
				}),
			);
		refused(
			hostile({}, [tree]),
			/tree 0: 'right_children' has 2 entries for 3 nodes/,
		);
		refused(hostile({ num_feature: "x" }, []), /num_feature 'x'/);
		refused(
			hostile({ num_class: "1000000000" }, []),
			/num_class '1000000000': 1000000000 outputs \(from 1 to 65536/,
		);
		refused(doc("gbtree", "rank:ndcg"), /objective 'rank:ndcg': not supported/);
	});
	const lgbm = (tree: string) =>
		utf8(
			`tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=1\nobjective=regression\n\nTree=0\n${tree}\nend of trees\n`,
		);
	it("LightGBM: linear trees, zero-as-missing splits, child links that loop", () => {
		refused(
			lgbm("num_leaves=1\nleaf_value=1\nis_linear=1\n"),
			/Tree=0: linear trees/,
		);
		refused(
			lgbm(
				"num_leaves=2\nsplit_feature=0\nthreshold=1\ndecision_type=4\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n",
			),
			/zero-as-missing/,
		);
		refused(
			lgbm(
				"num_leaves=3\nsplit_feature=0 1\nthreshold=1 1\ndecision_type=2 2\nleft_child=1 0\nright_child=-1 -2\nleaf_value=1 2 3\n",
			),
			/cycle/,
		);
	});
	it("bytes in no known format, and empty files, are MLSHIP_INVALID_BUNDLE", () => {
		refused(
			utf8("hello"),
			/not an XGBoost JSON, LightGBM text, PMML or ONNX model/,
			"MLSHIP_INVALID_BUNDLE",
		);
		refused(new Uint8Array(0), /is empty/, "MLSHIP_INVALID_BUNDLE");
	});
});

describe("a hand-written PMML with outputs worked out by hand", () => {
	// Three classification trees voting (majorityVote): tree 1 sends a missing 'a' to its defaultChild, tree 2
	// tests set membership and falls back to its own score, tree 3 tests set non-membership.
	const doc =
		utf8(`<PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4"><DataDictionary>
<DataField name="y" optype="categorical" dataType="integer"><Value value="0"/><Value value="1"/><Value value="2"/></DataField>
<DataField name="a" optype="continuous" dataType="double"/><DataField name="c" optype="categorical" dataType="integer"/>
</DataDictionary><MiningModel functionName="classification"><MiningSchema><MiningField name="y" usageType="target"/>
<MiningField name="a"/><MiningField name="c"/></MiningSchema><Segmentation multipleModelMethod="majorityVote">
<Segment id="1"><True/><TreeModel functionName="classification" missingValueStrategy="defaultChild"><MiningSchema/>
 <Node score="0" defaultChild="n2"><True/><Node id="n1" score="1"><SimplePredicate field="a" operator="greaterThan" value="5"/></Node>
 <Node id="n2" score="2"><True/></Node></Node></TreeModel></Segment>
<Segment id="2"><True/><TreeModel functionName="classification" noTrueChildStrategy="returnLastPrediction"><MiningSchema/>
 <Node score="0"><True/><Node score="2"><SimpleSetPredicate field="c" booleanOperator="isIn"><Array type="int" n="2">3 7</Array></SimpleSetPredicate></Node>
 <Node score="1"><SimplePredicate field="a" operator="lessOrEqual" value="2"/></Node></Node></TreeModel></Segment>
<Segment id="3"><True/><TreeModel functionName="classification" noTrueChildStrategy="returnLastPrediction"><MiningSchema/>
 <Node score="1"><True/><Node score="2"><SimpleSetPredicate field="c" booleanOperator="isNotIn"><Array type="int" n="1">7</Array></SimpleSetPredicate></Node>
 </Node></TreeModel></Segment></Segmentation></MiningModel></PMML>`);
	it("votes, labels and missing values", () => {
		const m = readTreeModel(doc, "vote.pmml");
		const a = [6, 1, 3, 10, Number.NaN];
		const c = [3, 7, 5, 7, 1];
		const col = (name: string, v: number[]): Tensor => ({
			name,
			datatype: "FP64",
			shape: [v.length, 1],
			data: Float64Array.from(v),
		});
		const [label, probs] = predictTree(
			m,
			[col("a", a), col("c", c)],
			["label", "probabilities"],
		);
		// votes per row (tree 1, 2, 3): (1,2,2) (2,2,1) (2,0,2) (1,2,1) (2,0,2)
		const third = 1 / 3;
		const want = [
			[0, third, 2 * third],
			[0, third, 2 * third],
			[third, 0, 2 * third],
			[0, 2 * third, third],
			[third, 0, 2 * third],
		];
		assert.deepEqual(Array.from(label?.data as BigInt64Array), [
			2n,
			2n,
			2n,
			1n,
			2n,
		]);
		Array.from(probs?.data as Float32Array).forEach((p, i) => {
			assert.ok(
				Math.abs(p - (want[Math.floor(i / 3)]?.[i % 3] as number)) < 1e-6,
				`probabilities[${i}] = ${p}`,
			);
		});
	});
});

describe("a hand-written PMML GeneralRegressionModel with outputs worked out by hand", () => {
	const col = (name: string, v: number[]): Tensor => ({
		name,
		datatype: "FP64",
		shape: [v.length, 1],
		data: Float64Array.from(v),
	});
	const dict = `<DataField name="a" optype="continuous" dataType="double"/>
<DataField name="c" optype="categorical" dataType="double"><Value value="1"/><Value value="2"/></DataField>
<DataField name="o" optype="continuous" dataType="double"/>`;
	it("generalizedLinear, log link: a covariate, a factor level, an offset field and an offset value", () => {
		// μ = exp(0.5 + 0.2·a + 0.3·[c = 2] + o + 1.5)
		const m = readTreeModel(
			pmml(
				`<GeneralRegressionModel modelType="generalizedLinear" functionName="regression" linkFunction="log" offsetVariable="o" offsetValue="1.5">
<MiningSchema><MiningField name="y" usageType="target"/><MiningField name="a"/><MiningField name="c"/><MiningField name="o"/></MiningSchema>
<ParameterList><Parameter name="p0" label="(intercept)"/><Parameter name="p1"/><Parameter name="p2"/></ParameterList>
<FactorList><Predictor name="c"/></FactorList><CovariateList><Predictor name="a"/></CovariateList>
<PPMatrix><PPCell value="1" predictorName="a" parameterName="p1"/><PPCell value="2" predictorName="c" parameterName="p2"/></PPMatrix>
<ParamMatrix><PCell parameterName="p0" beta="0.5"/><PCell parameterName="p1" beta="0.2"/><PCell parameterName="p2" beta="0.3"/></ParamMatrix>
</GeneralRegressionModel>`,
				dict,
			),
			"glm.pmml",
		);
		assert.equal(m.link, "exp");
		assert.equal(m.body.kind, "linear");
		const a = [0, 1, -2];
		const c = [1, 2, 2];
		const o = [0, -1, 0.25];
		const [y] = predictTree(
			m,
			[col("a", a), col("c", c), col("o", o)],
			["variable"],
		);
		const want = a.map((ai, r) =>
			Math.exp(
				0.5 + 0.2 * ai + (c[r] === 2 ? 0.3 : 0) + (o[r] as number) + 1.5,
			),
		);
		Array.from(y?.data as Float32Array).forEach((v, r) => {
			assert.ok(
				Math.abs(v - (want[r] as number)) <= 1e-6 * (want[r] as number),
				`row ${r}: ${v} vs ${want[r]}`,
			);
		});
	});
	it("multinomialLogistic: softmax over the classes, the reference category's predictor 0", () => {
		// η0 = 1 + 2a, η1 = −1 + 0.5·[c = 1], η2 = 0 (targetReferenceCategory)
		const m = readTreeModel(
			utf8(
				`<PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4"><DataDictionary>
<DataField name="y" optype="categorical" dataType="integer"><Value value="0"/><Value value="1"/><Value value="2"/></DataField>
${dict}</DataDictionary><GeneralRegressionModel modelType="multinomialLogistic" functionName="classification" targetReferenceCategory="2">
<MiningSchema><MiningField name="y" usageType="target"/><MiningField name="a"/><MiningField name="c"/></MiningSchema>
<ParameterList><Parameter name="p0"/><Parameter name="p1"/><Parameter name="p2"/></ParameterList>
<FactorList><Predictor name="c"/></FactorList><CovariateList><Predictor name="a"/></CovariateList>
<PPMatrix><PPCell value="1" predictorName="a" parameterName="p1"/><PPCell value="1" predictorName="c" parameterName="p2"/></PPMatrix>
<ParamMatrix><PCell targetCategory="0" parameterName="p0" beta="1"/><PCell targetCategory="0" parameterName="p1" beta="2"/>
<PCell targetCategory="1" parameterName="p0" beta="-1"/><PCell targetCategory="1" parameterName="p2" beta="0.5"/></ParamMatrix>
</GeneralRegressionModel></PMML>`,
			),
			"mnl.pmml",
		);
		assert.equal(m.link, "softmax");
		const a = [0.5, -1];
		const c = [1, 2];
		const [label, probs] = predictTree(
			m,
			[col("a", a), col("c", c)],
			["label", "probabilities"],
		);
		const want = a.map((ai, r) => {
			const z = [1 + 2 * ai, -1 + (c[r] === 1 ? 0.5 : 0), 0].map(Math.exp);
			const s = z.reduce((x, y) => x + y, 0);
			return z.map((v) => v / s);
		});
		assert.deepEqual(Array.from(label?.data as BigInt64Array), [0n, 2n]);
		Array.from(probs?.data as Float32Array).forEach((p, i) => {
			const w = want[Math.floor(i / 3)]?.[i % 3] as number;
			assert.ok(Math.abs(p - w) < 1e-6, `probabilities[${i}] = ${p} vs ${w}`);
		});
	});
});

describe("ONNX ai.onnx.ml opset 5 TreeEnsemble", () => {
	it("every split mode, member sets and missing tracking give onnxruntime's outputs", () => {
		const dir = fileURLToPath(new URL("../fixtures/onnx", import.meta.url));
		const m = readTreeModel(
			readFileSync(`${dir}/tree-ensemble-v5.onnx`),
			"tree-ensemble-v5.onnx",
		);
		const g = JSON.parse(
			readFileSync(`${dir}/tree-ensemble-v5.json`, "utf8"),
		) as {
			X: (number | null)[][];
			Y: number[][];
		};
		const X: Tensor = {
			name: "X",
			datatype: "FP32",
			shape: [g.X.length, 3],
			data: Float32Array.from(
				g.X.flat().map((v) => (v === null ? Number.NaN : v)),
			),
		};
		const [y] = predictTree(m, [X], ["Y"]);
		const got = Array.from(y?.data as Float32Array);
		const want = g.Y.flat();
		assert.equal(got.length, want.length);
		got.forEach((v, i) => {
			assert.ok(
				Math.abs(v - (want[i] as number)) < 1e-6,
				`Y[${Math.floor(i / 2)}][${i % 2}] = ${v}, onnxruntime ${want[i]} (X ${JSON.stringify(g.X[Math.floor(i / 2)])})`,
			);
		});
	});
});
