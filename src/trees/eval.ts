// Batch evaluation of the tree/linear representation on typed arrays: features → raw scores → link → outputs.
import { allocate } from "../protocol/datatypes.ts";
import { invalidInput } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import { goesLeft, LE, LT, type Tree, type TreeModel } from "./ir.ts";

/** Rows of a batch: the first dimension of the first input. */
export function batchRows(inputs: readonly Tensor[]): number {
	return inputs[0]?.shape[0] ?? 0;
}

/**
 * The feature matrix (rows × features, row-major, float64) of a batch: each feature reads its input column and
 * applies its folded preprocessing (one-hot, imputation, scaling).
 */
export function featureMatrix(
	model: TreeModel,
	inputs: readonly Tensor[],
): Float64Array {
	const rows = batchRows(inputs);
	const nf = model.features.length;
	const byName = new Map(inputs.map((t) => [t.name, t]));
	const X = new Float64Array(rows * nf);
	for (let j = 0; j < nf; j++) {
		const f = model.features[j] as TreeModel["features"][number];
		const spec = model.signature.inputs[f.input];
		const t = spec && byName.get(spec.name);
		if (!t)
			throw invalidInput(
				`input '${spec?.name ?? f.input}' is missing (feature '${f.name}')`,
			);
		const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
		if (f.column >= width)
			throw invalidInput(
				`input '${t.name}' has ${width} columns; feature '${f.name}' reads column ${f.column}`,
			);
		const data = t.data;
		const strings = Array.isArray(data);
		for (let r = 0; r < rows; r++) {
			const raw = data[r * width + f.column];
			let v: number;
			if (f.equals !== undefined) {
				v = (
					strings || typeof f.equals === "string"
						? String(raw) === String(f.equals)
						: Number(raw) === f.equals
				)
					? 1
					: 0;
			} else {
				v = typeof raw === "bigint" ? Number(raw) : (raw as number);
				if (strings) v = Number(raw);
			}
			if (f.round32) v = Math.fround(v);
			if (
				f.impute !== undefined &&
				(Number.isNaN(v) || (f.imputeWhen !== undefined && v === f.imputeWhen))
			)
				v = f.impute;
			if (f.offset !== undefined) v -= f.offset;
			if (f.scale !== undefined) v *= f.scale;
			X[r * nf + j] = v;
		}
	}
	return X;
}

/**
 * All trees of an ensemble in one set of flat arrays (node ids offset per tree), with the missing-value direction
 * folded into the comparison where it can be: `v <= t` is false for NaN, so a node that sends NaN right needs no
 * check, and one that sends it left becomes `!(v > t)`. Built once per model.
 */
interface Flat {
	roots: Int32Array;
	feature: Int32Array;
	threshold: Float64Array;
	/** 0: v < t, 1: v <= t, 2: !(v >= t), 3: !(v > t) (NaN left), 4: the general test (EQ, IN). */
	op: Uint8Array;
	left: Int32Array;
	right: Int32Array;
	value: Float64Array;
	/** Index of each flat node's tree, for the general test. */
	tree: Int32Array;
	base: Int32Array;
	/** Each flat node's id in its tree, for the general test. */
	node: Int32Array;
	/** Thresholds as `v <= t` tests (a `<` test's threshold is the next double down), for batches without NaN. */
	le: Float64Array;
	/** Every split is a `<` or `<=` test: batches without NaN take the one-comparison loop. */
	simple: boolean;
}

const bits = new Float64Array(1);
const bitsInt = new BigInt64Array(bits.buffer);
/** The largest double below `x` (so `v < x` ⟺ `v <= nextDown(x)` for every non-NaN double v). */
function nextDown(x: number): number {
	if (Number.isNaN(x) || x === Number.NEGATIVE_INFINITY) return x;
	if (x === 0) return -Number.MIN_VALUE;
	bits[0] = x;
	bitsInt[0] = (bitsInt[0] as bigint) + (x > 0 ? -1n : 1n);
	return bits[0] as number;
}

const flats = new WeakMap<TreeModel, Flat>();

function flatten(model: TreeModel, trees: readonly Tree[]): Flat {
	const cached = flats.get(model);
	if (cached) return cached;
	const T = model.targets;
	const n = trees.reduce((a, t) => a + t.feature.length, 0);
	const f: Flat = {
		roots: new Int32Array(trees.length),
		feature: new Int32Array(n),
		threshold: new Float64Array(n),
		op: new Uint8Array(n),
		left: new Int32Array(n),
		right: new Int32Array(n),
		value: new Float64Array(n * T),
		tree: new Int32Array(n),
		base: new Int32Array(trees.length),
		node: new Int32Array(n),
		le: new Float64Array(n),
		simple: true,
	};
	let o = 0;
	trees.forEach((t, k) => {
		f.roots[k] = o;
		f.base[k] = o;
		// Breadth-first layout with the two children of a node side by side: right = left + 1.
		const queue = [0];
		const at = new Int32Array(t.feature.length);
		at[0] = o;
		let next = o + 1;
		for (let q = 0; q < queue.length; q++) {
			const i = queue[q] as number;
			const j = at[i] as number;
			f.feature[j] = t.feature[i] as number;
			f.threshold[j] = t.threshold[i] as number;
			f.tree[j] = k;
			f.node[j] = i;
			for (let c = 0; c < T; c++)
				f.value[j * T + c] = t.value[i * T + c] as number;
			if ((t.feature[i] as number) < 0) continue;
			const m = t.mode[i];
			const nanLeft = t.missingLeft[i] === 1;
			f.op[j] = m === LT ? (nanLeft ? 2 : 0) : m === LE ? (nanLeft ? 3 : 1) : 4;
			if (m !== LT && m !== LE) f.simple = false;
			f.le[j] =
				m === LT
					? nextDown(t.threshold[i] as number)
					: (t.threshold[i] as number);
			const l = t.left[i] as number;
			const r = t.right[i] as number;
			at[l] = next;
			at[r] = next + 1;
			f.left[j] = next;
			f.right[j] = next + 1;
			next += 2;
			queue.push(l, r);
		}
		o += t.feature.length;
	});
	flats.set(model, f);
	return f;
}

/** Rows scored together per tree: the block's features and the tree's nodes stay in cache. */
const BLOCK = 64;

/** Adds leaf `n`'s values to row `r` of the raw scores. */
function addLeaf(
	out: Float64Array,
	value: Float64Array,
	r: number,
	n: number,
	T: number,
): void {
	if (T === 1) out[r] = (out[r] as number) + (value[n] as number);
	else
		for (let t = 0; t < T; t++)
			out[r * T + t] =
				(out[r * T + t] as number) + (value[n * T + t] as number);
}

/** The one-comparison loop: every split is `v <= t` and no value is NaN. Adds leaf values into `out`. */
function scoreSimple(
	fl: Flat,
	X: Float64Array,
	rows: number,
	nf: number,
	T: number,
	out: Float64Array,
): void {
	const { feature, le, left, value, roots } = fl;
	for (let r0 = 0; r0 < rows; r0 += BLOCK) {
		const r1 = Math.min(rows, r0 + BLOCK);
		for (let k = 0; k < roots.length; k++) {
			const root = roots[k] as number;
			for (let r = r0; r < r1; r++) {
				const xo = r * nf;
				let n = root;
				let f = feature[n] as number;
				while (f >= 0) {
					n =
						(left[n] as number) +
						((X[xo + f] as number) <= (le[n] as number) ? 0 : 1);
					f = feature[n] as number;
				}
				addLeaf(out, value, r, n, T);
			}
		}
	}
}

/** Raw scores (rows × targets, before the link) of a feature matrix. */
export function rawScores(
	model: TreeModel,
	X: Float64Array,
	rows: number,
): Float64Array {
	const T = model.targets;
	const nf = model.features.length;
	const out = new Float64Array(rows * T);
	const body = model.body;
	if (body.kind === "linear") {
		const coef = body.coef;
		for (let r = 0; r < rows; r++)
			for (let t = 0; t < T; t++) {
				let s = model.base[t] as number;
				for (let j = 0; j < nf; j++)
					s += (coef[t * nf + j] as number) * (X[r * nf + j] as number);
				out[r * T + t] = s;
			}
		return out;
	}
	const trees = body.trees;
	const fl = flatten(model, trees);
	const { feature, threshold, op, left, value, roots } = fl;
	let nan = false;
	if (fl.simple)
		for (let i = 0; i < X.length && !nan; i++) nan = Number.isNaN(X[i]);
	if (fl.simple && !nan) scoreSimple(fl, X, rows, nf, T, out);
	else
		for (let r0 = 0; r0 < rows; r0 += BLOCK) {
			const r1 = Math.min(rows, r0 + BLOCK);
			for (let k = 0; k < roots.length; k++) {
				const root = roots[k] as number;
				for (let r = r0; r < r1; r++) {
					const xo = r * nf;
					let n = root;
					let f = feature[n] as number;
					while (f >= 0) {
						const v = X[xo + f] as number;
						const th = threshold[n] as number;
						const o = op[n];
						let goRight: number;
						if (o === 1) goRight = v <= th ? 0 : 1;
						else if (o === 0) goRight = v < th ? 0 : 1;
						else if (o === 3) goRight = v > th ? 1 : 0;
						else if (o === 2) goRight = v >= th ? 1 : 0;
						else {
							const k2 = fl.tree[n] as number;
							goRight = goesLeft(trees[k2] as Tree, fl.node[n] as number, v)
								? 0
								: 1;
						}
						n = (left[n] as number) + goRight;
						f = feature[n] as number;
					}
					addLeaf(out, value, r, n, T);
				}
			}
		}
	const div = body.aggregate === "average" ? trees.length : 1;
	for (let r = 0; r < rows; r++)
		for (let t = 0; t < T; t++)
			out[r * T + t] =
				(out[r * T + t] as number) / div + (model.base[t] as number);
	return out;
}

/** Applies the link in place to raw scores (rows × targets). */
export function applyLink(
	model: TreeModel,
	s: Float64Array,
	rows: number,
): Float64Array {
	const T = model.targets;
	switch (model.link) {
		case "identity":
			return s;
		case "logistic":
			for (let i = 0; i < s.length; i++)
				s[i] = 1 / (1 + Math.exp(-(s[i] as number)));
			return s;
		case "exp":
			for (let i = 0; i < s.length; i++) s[i] = Math.exp(s[i] as number);
			return s;
		case "softmax":
			for (let r = 0; r < rows; r++) {
				let max = Number.NEGATIVE_INFINITY;
				for (let t = 0; t < T; t++) max = Math.max(max, s[r * T + t] as number);
				let sum = 0;
				for (let t = 0; t < T; t++) {
					const e = Math.exp((s[r * T + t] as number) - max);
					s[r * T + t] = e;
					sum += e;
				}
				for (let t = 0; t < T; t++)
					s[r * T + t] = (s[r * T + t] as number) / sum;
			}
			return s;
	}
}

/** Runs the model on a batch and returns the outputs named in `wanted`, in that order. */
export function predictTree(
	model: TreeModel,
	inputs: readonly Tensor[],
	wanted: readonly string[],
): Tensor[] {
	const rows = batchRows(inputs);
	const X = featureMatrix(model, inputs);
	const s = applyLink(model, rawScores(model, X, rows), rows);
	const T = model.targets;
	const head = model.head;
	let probs: Float64Array | undefined;
	let labels: BigInt64Array | undefined;
	if (head.kind === "classification") {
		const K = head.labels.length;
		if (T === 1 && K === 2) {
			probs = new Float64Array(rows * 2);
			for (let r = 0; r < rows; r++) {
				const p = s[r] as number;
				probs[r * 2] = 1 - p;
				probs[r * 2 + 1] = p;
			}
		} else probs = s;
		labels = new BigInt64Array(rows);
		for (let r = 0; r < rows; r++) {
			let best = 0;
			for (let k = 1; k < K; k++)
				if ((probs[r * K + k] as number) > (probs[r * K + best] as number))
					best = k;
			labels[r] = BigInt(head.labels[best] as number);
		}
	}
	return wanted.map((name) => {
		const spec = model.signature.outputs.find((o) => o.name === name);
		if (!spec) throw invalidInput(`the model has no output '${name}'`);
		if (name === "label" && labels)
			return { name, datatype: spec.datatype, shape: [rows], data: labels };
		const src = probs ?? s;
		const width = src.length / Math.max(rows, 1);
		const data = allocate(spec.datatype, src.length) as Float32Array;
		data.set(src);
		return {
			name,
			datatype: spec.datatype,
			shape: rows === 0 ? [0, spec.shape[1] ?? 1] : [rows, width],
			data,
		};
	});
}
