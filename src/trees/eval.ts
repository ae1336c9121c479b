// Batch evaluation of the tree/linear representation on typed arrays: features → raw scores → link → outputs.
import { allocate } from "../protocol/datatypes.ts";
import { invalidInput } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import { IN, LE, LT, type TreeModel } from "./ir.ts";

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

/** Raw scores (rows × targets, before the link) of a feature matrix. */
export function rawScores(
	model: TreeModel,
	X: Float64Array,
	rows: number,
): Float64Array {
	const T = model.targets;
	const nf = model.features.length;
	const out = new Float64Array(rows * T);
	for (let r = 0; r < rows; r++)
		for (let t = 0; t < T; t++) out[r * T + t] = model.base[t] as number;
	const body = model.body;
	if (body.kind === "linear") {
		const coef = body.coef;
		for (let r = 0; r < rows; r++)
			for (let t = 0; t < T; t++) {
				let s = 0;
				for (let j = 0; j < nf; j++)
					s += (coef[t * nf + j] as number) * (X[r * nf + j] as number);
				out[r * T + t] = (out[r * T + t] as number) + s;
			}
		return out;
	}
	const trees = body.trees;
	const acc = new Float64Array(T);
	for (let r = 0; r < rows; r++) {
		acc.fill(0);
		const xo = r * nf;
		for (let k = 0; k < trees.length; k++) {
			const tr = trees[k] as (typeof trees)[number];
			const feature = tr.feature;
			const threshold = tr.threshold;
			const mode = tr.mode;
			let n = 0;
			let f = feature[0] as number;
			while (f >= 0) {
				const v = X[xo + f] as number;
				let left: boolean;
				if (Number.isNaN(v)) left = tr.missingLeft[n] === 1;
				else {
					const m = mode[n];
					const th = threshold[n] as number;
					if (m === LE) left = v <= th;
					else if (m === LT) left = v < th;
					else if (m === IN)
						left = inCats(tr.cats, tr.catStart, tr.catLen, n, v);
					else left = v === th;
				}
				n = left ? (tr.left[n] as number) : (tr.right[n] as number);
				f = feature[n] as number;
			}
			const vo = n * T;
			for (let t = 0; t < T; t++)
				acc[t] = (acc[t] as number) + (tr.value[vo + t] as number);
		}
		const div = body.aggregate === "average" ? trees.length : 1;
		for (let t = 0; t < T; t++)
			out[r * T + t] = (out[r * T + t] as number) + (acc[t] as number) / div;
	}
	return out;
}

function inCats(
	cats: Float64Array,
	start: Int32Array,
	len: Int32Array,
	n: number,
	v: number,
): boolean {
	const c = Math.trunc(v);
	let lo = start[n] as number;
	let hi = lo + (len[n] as number) - 1;
	while (lo <= hi) {
		const mid = (lo + hi) >> 1;
		const m = cats[mid] as number;
		if (m === c) return true;
		if (m < c) lo = mid + 1;
		else hi = mid - 1;
	}
	return false;
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
