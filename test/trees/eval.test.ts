// The batch evaluator (level-by-level over blocks of rows, thresholds folded into one `v > gt` test) walks every
// tree exactly as the representation defines a split (`goesLeft`): on rows that sit on each split's threshold, one
// double or float32 step either side, NaN, ±∞ and each category, for every tree fixture; and on ONNX fixtures it
// answers as onnxruntime does on those rows.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { Tensor } from "../../src/protocol/types.ts";
import { runtime } from "../../src/runtime/registry.ts";
import type { LoadedModel } from "../../src/runtime/types.ts";
import {
	batchRows,
	featureMatrix,
	predictTree,
	rawScores,
} from "../../src/trees/eval.ts";
import {
	EQ,
	goesLeft,
	IN,
	ISIN,
	LE,
	LT,
	type SplitMode,
	type Tree,
	TreeBuilder,
	type TreeModel,
} from "../../src/trees/ir.ts";
import { readTreeModel } from "../../src/trees/read/index.ts";
import {
	assertClose,
	bundleDir,
	ONNX_TREE_FIXTURES,
	TREE_FIXTURES,
} from "../helpers/fixtures.ts";
import { treeFixture } from "../helpers/trees.ts";

/** The definition: one row at a time, one node at a time, `goesLeft` at every split; summed in tree order. */
function reference(
	model: TreeModel,
	X: Float64Array,
	rows: number,
): Float64Array {
	const body = model.body;
	if (body.kind !== "ensemble") throw new Error("not an ensemble");
	const T = model.targets;
	const nf = model.features.length;
	const out = new Float64Array(rows * T);
	for (const tree of body.trees)
		for (let r = 0; r < rows; r++) {
			let n = 0;
			while ((tree.feature[n] as number) >= 0) {
				const v = X[r * nf + (tree.feature[n] as number)] as number;
				n = goesLeft(tree, n, v)
					? (tree.left[n] as number)
					: (tree.right[n] as number);
			}
			for (let t = 0; t < T; t++)
				out[r * T + t] =
					(out[r * T + t] as number) + (tree.value[n * T + t] as number);
		}
	const div = body.aggregate === "average" ? body.trees.length : 1;
	for (let r = 0; r < rows; r++)
		for (let t = 0; t < T; t++)
			out[r * T + t] =
				(out[r * T + t] as number) / div + (model.base[t] as number);
	return out;
}

const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);
const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);
/** The next double (dir +1) or the previous one (dir −1). */
function step64(x: number, dir: 1 | -1): number {
	if (!Number.isFinite(x)) return x;
	if (x === 0) return dir * Number.MIN_VALUE;
	f64[0] = x;
	i64[0] = (i64[0] as bigint) + (x > 0 === dir > 0 ? 1n : -1n);
	return f64[0] as number;
}
/** The next float32 (dir +1) or the previous one (dir −1) from x rounded to float32. */
function step32(x: number, dir: 1 | -1): number {
	const r = Math.fround(x);
	if (!Number.isFinite(r)) return r;
	if (r === 0) return dir * 2 ** -149;
	f32[0] = r;
	i32[0] = (i32[0] as number) + (r > 0 === dir > 0 ? 1 : -1);
	return f32[0] as number;
}

/** Values that test split `n` of `tree` at its edges. */
function edgeValues(tree: Tree, n: number): number[] {
	const t = tree.threshold[n] as number;
	const m = tree.mode[n];
	if (m === IN || m === ISIN) {
		const cats = tree.cats.subarray(
			tree.catStart[n] as number,
			(tree.catStart[n] as number) + (tree.catLen[n] as number),
		);
		return [...cats].flatMap((c) => [c, c + 0.5, c - 0.5, c + 1, -c - 1]);
	}
	return [
		t,
		step64(t, 1),
		step64(t, -1),
		Math.fround(t),
		step32(t, 1),
		step32(t, -1),
		-t,
	];
}

/**
 * Rows built on `base` (rows × nf, cycled): one row per edge value of every split, then rows of ±∞, then rows with
 * one feature (then all) NaN, last, so that blocks without and with NaN are both scored.
 */
function edgeRows(model: TreeModel, base: Float64Array): Float64Array {
	const nf = model.features.length;
	const nb = base.length / nf;
	const rows: number[][] = [];
	let k = 0;
	const row = (): number[] => [
		...base.subarray((k % nb) * nf, (k++ % nb) * nf + nf),
	];
	if (model.body.kind !== "ensemble") throw new Error("not an ensemble");
	for (const tree of model.body.trees)
		for (let n = 0; n < tree.feature.length; n++) {
			const f = tree.feature[n] as number;
			if (f < 0) continue;
			for (const v of edgeValues(tree, n)) {
				const r = row();
				r[f] = v;
				rows.push(r);
			}
		}
	// Small models: repeat their edges until they fill more than two blocks of rows.
	for (let i = 0; rows.length < 600; i++) rows.push([...(rows[i] as number[])]);
	for (let j = 0; j < nf; j++)
		for (const v of [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
			const r = row();
			r[j] = v;
			rows.push(r);
		}
	for (let j = 0; j < nf; j++) {
		const r = row();
		r[j] = Number.NaN;
		rows.push(r);
	}
	rows.push(new Array(nf).fill(Number.NaN));
	return Float64Array.from(rows.flat());
}

/** Each fixture's model file (model.onnx, .json, .txt or .pmml) read into the representation. */
function fixtureModel(name: string): TreeModel {
	const dir = bundleDir(name);
	const file = readdirSync(dir).find((f) => f.startsWith("model."));
	if (!file) throw new Error(`${name}: no model file`);
	return readTreeModel(new Uint8Array(readFileSync(`${dir}/${file}`)), name);
}

const ENSEMBLES = [...TREE_FIXTURES, ...ONNX_TREE_FIXTURES].filter(
	(f) => fixtureModel(f).body.kind === "ensemble",
);

describe("the batch evaluator walks every tree as goesLeft defines", () => {
	it("covers the tree-ensemble fixtures of every format", () => {
		assert.ok(ENSEMBLES.length >= 12, ENSEMBLES.join(", "));
		for (const kind of ["xgboost", "lightgbm", "onnx", "pmml"])
			assert.ok(
				ENSEMBLES.some((f) => fixtureModel(f).format === kind),
				`a ${kind} ensemble among ${ENSEMBLES.join(", ")}`,
			);
	});
	for (const f of ENSEMBLES)
		it(`${f}: threshold edges, ±∞, NaN and categories, bit for bit`, async () => {
			const { model, tensors } = await treeFixture(f);
			const X = edgeRows(model, featureMatrix(model, tensors));
			const rows = X.length / model.features.length;
			assert.ok(rows > 300, `${f}: ${rows} edge rows span several blocks`);
			assert.deepEqual(rawScores(model, X, rows), reference(model, X, rows));
		});
});

interface Split {
	mode: SplitMode;
	t: number;
	nanLeft: boolean;
	cats?: number[];
}

/** A one-feature model whose trees are given splits, each leaf worth a distinct power of two. */
function stumps(splits: Split[]): TreeModel {
	const trees = splits.map((s, k) => {
		const b = new TreeBuilder(1);
		const root = b.node();
		const l = b.node();
		const r = b.node();
		b.split(root, 0, s.mode, s.t, l, r, s.nanLeft, s.cats);
		b.addValue(l, 0, 2 ** (2 * k));
		b.addValue(r, 0, 2 ** (2 * k + 1));
		return b.build("stumps");
	});
	// A tree that is a single leaf: every row takes zero steps.
	const leaf = new TreeBuilder(1);
	leaf.addValue(leaf.node(), 0, 2 ** 40);
	trees.push(leaf.build("leaf"));
	return {
		format: "test",
		features: [{ name: "x", input: 0, column: 0 }],
		targets: 1,
		body: { kind: "ensemble", trees, aggregate: "sum" },
		base: new Float64Array(1),
		link: "identity",
		head: { kind: "regression" },
		signature: {
			inputs: [{ name: "x", datatype: "FP64", shape: [-1, 1] }],
			outputs: [{ name: "variable", datatype: "FP64", shape: [-1, 1] }],
		},
	};
}

describe("splits at the ends of the number line", () => {
	const inf = Number.POSITIVE_INFINITY;
	const splits: Split[] = ([LT, LE] as SplitMode[]).flatMap((mode) =>
		[-inf, inf, Number.NaN, 0, -0, Number.MIN_VALUE, -1.5].flatMap((t) =>
			[true, false].map((nanLeft) => ({ mode, t, nanLeft })),
		),
	);
	splits.push(
		{ mode: EQ, t: 2, nanLeft: false },
		{ mode: IN, t: 0, nanLeft: true, cats: [1, 3] },
		{ mode: ISIN, t: 0, nanLeft: false, cats: [1.5, -2] },
	);
	const values = [
		-inf,
		inf,
		Number.NaN,
		0,
		-0,
		Number.MIN_VALUE,
		-Number.MIN_VALUE,
		-1.5,
		step64(-1.5, 1),
		step64(-1.5, -1),
		1,
		1.5,
		2,
		3.7,
		-2,
	];
	const check = (s: Split[], label: string) =>
		it(label, () => {
			const model = stumps(s);
			// Many rows (several blocks), every value in every block.
			const X = Float64Array.from(
				{ length: 700 },
				(_, i) => values[i % values.length] as number,
			);
			const got = rawScores(model, X, X.length);
			const want = reference(model, X, X.length);
			for (let r = 0; r < X.length; r++)
				assert.equal(got[r], want[r], `x = ${X[r]}`);
		});
	check(
		splits.filter((s) => s.mode === LT || s.mode === LE),
		"< and <= against −∞, +∞, NaN, ±0, the smallest double; NaN either way",
	);
	check(splits, "with equality and category splits in the same model");
	it("a batch of no rows, and of one", () => {
		const model = stumps(splits);
		assert.deepEqual(
			rawScores(model, new Float64Array(0), 0),
			new Float64Array(0),
		);
		const one = Float64Array.of(-1.5);
		assert.deepEqual(rawScores(model, one, 1), reference(model, one, 1));
	});
});

/** The ONNX tree ensembles onnxruntime also runs. */
const ONNX_ENSEMBLES = ONNX_TREE_FIXTURES.filter((f) => ENSEMBLES.includes(f));

describe("on threshold edges the trees runtime answers as onnxruntime does", () => {
	const onnx: LoadedModel[] = [];
	before(() => assert.ok(ONNX_ENSEMBLES.length >= 4, ONNX_ENSEMBLES.join()));
	after(async () => {
		for (const m of onnx) await m.unload();
	});
	for (const f of ONNX_ENSEMBLES)
		it(f, async () => {
			const { bundle: b, model, tensors } = await treeFixture(f);
			assert.equal(tensors.length, 1);
			const input = tensors[0] as Tensor;
			assert.equal(input.datatype, "FP32");
			// Rows in float32, as the model takes them: ONNX thresholds are float32, so t and one float32 step
			// either side are the edges.
			const X = Float32Array.from(
				edgeRows(model, featureMatrix(model, tensors)),
			);
			const rows = X.length / model.features.length;
			const edges: Tensor = {
				name: input.name,
				datatype: "FP32",
				shape: [rows, model.features.length],
				data: X,
			};
			const ort = await (await runtime("onnx")).load(b, { mode: "inline" });
			onnx.push(ort);
			const names = b.manifest.signature.outputs.map((o) => o.name);
			const want = await ort.predict([edges], names);
			const got = predictTree(model, [edges], names);
			assert.equal(batchRows(got), rows);
			for (let k = 0; k < names.length; k++) {
				const g = got[k]?.data as ArrayLike<number | bigint>;
				const w = want[k]?.data as ArrayLike<number | bigint>;
				assert.equal(g.length, w.length, `${f}/${names[k]}: length`);
				for (let i = 0; i < g.length; i++)
					if (names[k] === "label")
						assert.equal(g[i], w[i], `${f}/label[${i}]`);
					else
						assertClose(Number(g[i]), Number(w[i]), `${f}/${names[k]}[${i}]`);
			}
		});
});
