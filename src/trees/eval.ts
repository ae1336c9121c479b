// Batch evaluation of the tree/linear representation on typed arrays: features → raw scores → link → outputs.
import { allocate } from "../protocol/datatypes.ts";
import { invalidInput } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import {
	type Feature,
	goesLeft,
	LE,
	LT,
	type Tree,
	type TreeModel,
	treeDepth,
} from "./ir.ts";

/** Rows of a batch: the first dimension of the first input. */
export function batchRows(inputs: readonly Tensor[]): number {
	return inputs[0]?.shape[0] ?? 0;
}

/** A feature that reads its column as it is. */
function plain(f: Feature): boolean {
	return (
		f.equals === undefined &&
		f.impute === undefined &&
		f.offset === undefined &&
		f.scale === undefined
	);
}

/**
 * The input data that already is the feature matrix, when there is one: a single float input whose columns are the
 * features in order, with no preprocessing (float32 data needs no rounding to float32). Most GBDT models take this.
 */
function directInput(
	model: TreeModel,
	byName: ReadonlyMap<string, Tensor>,
	rows: number,
): Float32Array | Float64Array | undefined {
	const fs = model.features;
	const first = fs[0];
	if (!first) return undefined;
	const t = byName.get(model.signature.inputs[first.input]?.name ?? "");
	if (t?.shape.length !== 2 || t.shape[1] !== fs.length) return undefined;
	const d = t.data;
	const f32 = d instanceof Float32Array;
	if ((!f32 && !(d instanceof Float64Array)) || d.length !== rows * fs.length)
		return undefined;
	for (let j = 0; j < fs.length; j++) {
		const f = fs[j] as Feature;
		if (f.input !== first.input || f.column !== j || !plain(f))
			return undefined;
		if (f.round32 && !f32) return undefined;
	}
	return d;
}

/**
 * The feature matrix (rows × features, row-major, float64) of a batch: each feature reads its input column and
 * applies its folded preprocessing (one-hot, imputation, scaling).
 */
export function featureMatrix(
	model: TreeModel,
	inputs: readonly Tensor[],
	into?: (n: number) => Float64Array,
): Float64Array {
	const rows = batchRows(inputs);
	const nf = model.features.length;
	const byName = new Map(inputs.map((t) => [t.name, t]));
	// Every element is written below (the direct copy or the loop over every feature of every row).
	const X = into ? into(rows * nf) : new Float64Array(rows * nf);
	const direct = directInput(model, byName, rows);
	if (direct) {
		X.set(direct);
		return X;
	}
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
 * All trees of an ensemble in one set of flat arrays, laid out for level-by-level evaluation of a block of rows.
 * Each tree is breadth-first with a node's two children side by side (right = left + 1), so a step is
 * `n = left[n] + goRight`. Every threshold test becomes "go right when v > gt[n]": `v <= t` keeps t, `v < t` takes
 * the largest double below t (the same test for every non-NaN double v). A NaN goes where `nanRight[n]` says. A leaf
 * is its own child (`left[leaf] = leaf`, `gt = NaN`: no value is greater, and a NaN stays too), so every row of a
 * block takes the same number of steps through a tree, its depth, with no "reached a leaf?" test. Built once per model.
 */
interface Flat {
	roots: Int32Array;
	/** Steps from each tree's root to its deepest leaf. */
	depth: Int32Array;
	feature: Int32Array;
	gt: Float64Array;
	left: Int32Array;
	/** 1 when a NaN goes right. */
	nanRight: Uint8Array;
	/** 1 for a node `v > gt` cannot express (EQ, IN, ISIN, a NaN threshold, `< −∞`): `goesLeft` on its tree decides. */
	general: Uint8Array;
	value: Float64Array;
	/** Each flat node's tree and its id there, for the general test. */
	tree: Int32Array;
	node: Int32Array;
	/** The one target a tree's leaves add to (XGBoost's one tree per class), or -1 when they add to several. */
	target: Int32Array;
	/** Every split is a threshold (`<` or `<=`) test. */
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

/**
 * The only target with non-zero leaf values in `tree` (XGBoost and LightGBM grow one tree per class), or -1 when
 * several have them; 0 for a single-target model.
 */
export function soleTarget(tree: Tree, T: number): number {
	if (T === 1) return 0;
	let only = -1;
	for (let n = 0; n < tree.feature.length; n++)
		for (let t = 0; t < T; t++)
			if ((tree.value[n * T + t] as number) !== 0) {
				if (only >= 0 && only !== t) return -1;
				only = t;
			}
	return Math.max(only, 0);
}

function flatten(model: TreeModel, trees: readonly Tree[]): Flat {
	const cached = flats.get(model);
	if (cached) return cached;
	const T = model.targets;
	const n = trees.reduce((a, t) => a + t.feature.length, 0);
	const f: Flat = {
		roots: new Int32Array(trees.length),
		depth: new Int32Array(trees.length),
		feature: new Int32Array(n),
		gt: new Float64Array(n),
		left: new Int32Array(n),
		nanRight: new Uint8Array(n),
		general: new Uint8Array(n),
		value: new Float64Array(n * T),
		tree: new Int32Array(n),
		node: new Int32Array(n),
		target: new Int32Array(trees.length),
		simple: true,
	};
	let o = 0;
	trees.forEach((t, k) => {
		f.roots[k] = o;
		f.depth[k] = treeDepth(t);
		f.target[k] = soleTarget(t, T);
		const queue = [0];
		const at = new Int32Array(t.feature.length);
		at[0] = o;
		let next = o + 1;
		for (let q = 0; q < queue.length; q++) {
			const i = queue[q] as number;
			const j = at[i] as number;
			f.tree[j] = k;
			f.node[j] = i;
			for (let c = 0; c < T; c++)
				f.value[j * T + c] = t.value[i * T + c] as number;
			const feat = t.feature[i] as number;
			if (feat < 0) {
				// A leaf: stays where it is whatever the value (feature 0 is read and ignored).
				f.feature[j] = 0;
				f.gt[j] = Number.NaN;
				f.left[j] = j;
				continue;
			}
			const m = t.mode[i];
			const th = t.threshold[i] as number;
			f.feature[j] = feat;
			f.nanRight[j] = t.missingLeft[i] === 1 ? 0 : 1;
			// `v > gt` cannot say "never left" (x < −∞) or "never left, NaN threshold" (x <= NaN): goesLeft decides.
			const threshold =
				(m === LE || m === LT) &&
				!Number.isNaN(th) &&
				!(m === LT && th === Number.NEGATIVE_INFINITY);
			if (threshold) f.gt[j] = m === LE ? th : nextDown(th);
			else {
				f.general[j] = 1;
				f.simple = false;
			}
			const l = t.left[i] as number;
			const r = t.right[i] as number;
			at[l] = next;
			at[r] = next + 1;
			f.left[j] = next;
			next += 2;
			queue.push(l, r);
		}
		o += t.feature.length;
	});
	flats.set(model, f);
	return f;
}

/**
 * Rows scored together: each tree walks the whole block level by level, so its nodes and the block's features stay
 * in cache, and the steps of different rows do not wait on each other.
 */
const BLOCK = 256;

/**
 * Adds every tree's leaf values for rows `[r0, r0 + nb)` of `X` into `out`. `nan`: the block may hold NaN values;
 * `general`: the model has non-threshold splits. Four copies of one loop so each stays small and monomorphic.
 */
function scoreBlock(
	fl: Flat,
	trees: readonly Tree[],
	X: Float64Array,
	r0: number,
	nb: number,
	nf: number,
	T: number,
	out: Float64Array,
	idx: Int32Array,
	nan: boolean,
): void {
	const { feature, gt, left, nanRight, value, roots, depth, target } = fl;
	const general = fl.simple ? undefined : fl.general;
	for (let k = 0; k < roots.length; k++) {
		const root = roots[k] as number;
		const D = depth[k] as number;
		if (general || nan || D === 0) for (let i = 0; i < nb; i++) idx[i] = root;
		else {
			// The first step of every row leaves the same node: its test read once.
			const f0 = feature[root] as number;
			const t0 = gt[root] as number;
			const l0 = left[root] as number;
			for (let i = 0; i < nb; i++)
				idx[i] = l0 + Number((X[(r0 + i) * nf + f0] as number) > t0);
		}
		if (general) {
			for (let d = 0; d < D; d++)
				for (let i = 0; i < nb; i++) {
					const n = idx[i] as number;
					const v = X[(r0 + i) * nf + (feature[n] as number)] as number;
					let right: number;
					if (general[n] === 1) {
						const t = fl.tree[n] as number;
						right = goesLeft(trees[t] as Tree, fl.node[n] as number, v) ? 0 : 1;
					} else
						right =
							v > (gt[n] as number)
								? 1
								: !Number.isNaN(v)
									? 0
									: (nanRight[n] as number);
					idx[i] = (left[n] as number) + right;
				}
		} else if (nan) {
			for (let d = 0; d < D; d++)
				for (let i = 0; i < nb; i++) {
					const n = idx[i] as number;
					const v = X[(r0 + i) * nf + (feature[n] as number)] as number;
					idx[i] =
						(left[n] as number) +
						(v > (gt[n] as number)
							? 1
							: !Number.isNaN(v)
								? 0
								: (nanRight[n] as number));
				}
		} else {
			for (let d = 1; d < D; d++)
				for (let i = 0; i < nb; i++) {
					const n = idx[i] as number;
					idx[i] =
						(left[n] as number) +
						Number(
							(X[(r0 + i) * nf + (feature[n] as number)] as number) >
								(gt[n] as number),
						);
				}
		}
		const only = target[k] as number;
		if (only >= 0)
			for (let i = 0; i < nb; i++) {
				const o = (r0 + i) * T + only;
				out[o] =
					(out[o] as number) + (value[(idx[i] as number) * T + only] as number);
			}
		else
			for (let i = 0; i < nb; i++) {
				const n = idx[i] as number;
				for (let t = 0; t < T; t++)
					out[(r0 + i) * T + t] =
						(out[(r0 + i) * T + t] as number) + (value[n * T + t] as number);
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
	const idx = new Int32Array(Math.min(BLOCK, rows));
	for (let r0 = 0; r0 < rows; r0 += BLOCK) {
		const nb = Math.min(BLOCK, rows - r0);
		let nan = false;
		for (let i = r0 * nf, e = (r0 + nb) * nf; i < e && !nan; i++)
			nan = Number.isNaN(X[i]);
		scoreBlock(fl, trees, X, r0, nb, nf, T, out, idx, nan);
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

let scratchBuf = new Float64Array(0);

/**
 * The feature matrix's memory, reused from batch to batch (predictTree runs synchronously and the matrix does not
 * outlive it): a fresh 8 MB matrix per 32k-row batch made V8 run a full mark-compact every few batches for the
 * external memory alone, on the worker threads' GC helpers.
 */
function scratch(n: number): Float64Array {
	if (scratchBuf.length < n) scratchBuf = new Float64Array(n);
	return scratchBuf.subarray(0, n);
}

/** Runs the model on a batch and returns the outputs named in `wanted`, in that order. */
export function predictTree(
	model: TreeModel,
	inputs: readonly Tensor[],
	wanted: readonly string[],
): Tensor[] {
	const rows = batchRows(inputs);
	const X = featureMatrix(model, inputs, scratch);
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
		// The labels as bigints once: BigInt() per row allocated a heap object per row (garbage the size of the batch).
		const big = head.labels.map((l) => BigInt(l as number));
		for (let r = 0; r < rows; r++) {
			let best = 0;
			for (let k = 1; k < K; k++)
				if ((probs[r * K + k] as number) > (probs[r * K + best] as number))
					best = k;
			labels[r] = big[best] as bigint;
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
