// Exact explanations on the tree representation: path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2,
// in the form of the reference implementation's tree_shap_recursive), per target, in raw-margin space.
import type { Profile } from "../monitor/profile/format.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import { ADD_COVERS } from "./covers.ts";
import { batchRows, featureMatrix } from "./eval.ts";
import {
	type Feature,
	goesLeft,
	type Linear,
	type Tree,
	type TreeModel,
	treeDepth,
} from "./ir.ts";

/**
 * SHAP values of a batch: `values[(r * targets + t) * features.length + j]`; for every row and target,
 * `base[t] + Σ_j values` equals the model's raw score (margin, before the link).
 */
export interface Explanation {
	rows: number;
	targets: number;
	features: string[];
	base: Float64Array;
	values: Float64Array;
	/** How the values were computed: "tree_path_dependent" (exact TreeSHAP) or "linear" (exact, independent features). */
	method: string;
}

function explanation(
	model: TreeModel,
	rows: number,
	base: Float64Array,
	values: Float64Array,
	method: string,
): Explanation {
	const features = model.features.map((f) => f.name);
	return { rows, targets: model.targets, features, base, values, method };
}

/** What to tell a user whose linear model has no reference profile to take the feature means from. */
const ADD_REFERENCE =
	"add a reference profile of the training data to the bundle: mlship bundle init DIR --reference TRAINING.csv";

/** The profile column a feature reads: its own name, or "column" of a one-hot feature named "column=value". */
function columnOf(f: Feature): string {
	if (f.equals === undefined) return f.name;
	const suffix = `=${String(f.equals)}`;
	return f.name.endsWith(suffix) ? f.name.slice(0, -suffix.length) : f.name;
}

/** E[f(x)] of one feature over the profiled data, with its preprocessing (one-hot, imputation, scaling) applied. */
function featureMean(f: Feature, profile: Profile, where: string): number {
	const col = columnOf(f);
	const c = profile.features[col];
	const refuse = (why: string): never => {
		throw new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`${where}: cannot take the mean of feature '${f.name}' from the reference profile: ${why}; ${ADD_REFERENCE}`,
		);
	};
	if (!c) return refuse(`the profile has no column '${col}'`);
	const all = c.count + c.nulls;
	if (all === 0) return refuse(`column '${col}' has no values`);
	let m: number;
	if (f.equals !== undefined) {
		// A one-hot indicator's mean is the share of rows holding that value.
		const want = String(f.equals);
		let hits: number | undefined;
		if (c.kind === "categorical") {
			hits = c.top.find(([v]) => v === want)?.[1];
			if (hits === undefined && c.other === 0) hits = 0;
		} else if (c.distinct)
			hits = c.distinct.find(([v]) => String(v) === want)?.[1] ?? 0;
		if (hits === undefined)
			return refuse(
				`column '${col}' does not count value '${want}' (too many distinct values)`,
			);
		m = hits / all;
	} else {
		let sum: number;
		if (c.kind === "numeric") sum = c.sum;
		else {
			if (c.other > 0 || c.top.some(([v]) => Number.isNaN(Number(v))))
				return refuse(`column '${col}' was profiled as categorical`);
			sum = c.top.reduce((a, [v, n]) => a + Number(v) * n, 0);
		}
		if (c.nulls > 0 && f.impute === undefined)
			return refuse(
				`column '${col}' has missing values the model does not impute`,
			);
		// A sentinel value the model imputes (ONNX Imputer's replaced_value) counts as the imputed value.
		const when = f.imputeWhen;
		if (f.impute !== undefined && when !== undefined && !Number.isNaN(when)) {
			if (c.kind === "numeric" && !c.distinct)
				return refuse(
					`the model imputes the value ${when} of column '${col}', and the profile does not count it (too many distinct values)`,
				);
			const hits =
				c.kind === "numeric"
					? (c.distinct?.find(([v]) => v === when)?.[1] ?? 0)
					: (c.top.find(([v]) => Number(v) === when)?.[1] ?? 0);
			sum += hits * (f.impute - when);
		}
		// Missing values take the imputed value; the rest count as they are.
		m = (sum + c.nulls * (f.impute ?? 0)) / all;
	}
	if (f.offset !== undefined) m -= f.offset;
	if (f.scale !== undefined) m *= f.scale;
	return m;
}

/**
 * The mean of every feature of `model` (as the model sees it: after one-hot, imputation and scaling) over the data
 * a reference profile describes, for exact explanations of linear models. Refuses, saying what to do, when the
 * profile lacks a column or cannot give its mean.
 */
export function featureMeans(
	model: TreeModel,
	profile: Profile,
	where = "reference profile",
): Float64Array {
	return Float64Array.from(model.features, (f) =>
		featureMean(f, profile, where),
	);
}

/**
 * Exact SHAP values of a linear model (features taken as independent, as shap's LinearExplainer does):
 * contribution_j = w_j · (x_j − E[x_j]) per target, in raw-margin space; the base is the raw output at the means.
 */
function explainLinear(
	model: TreeModel,
	body: Linear,
	inputs: readonly Tensor[],
	means: Float64Array,
): Explanation {
	const nf = model.features.length;
	const T = model.targets;
	if (means.length !== nf)
		throw new MlshipError(
			"MLSHIP_INTERNAL",
			`${means.length} feature means for ${nf} features`,
		);
	const rows = batchRows(inputs);
	const X = featureMatrix(model, inputs);
	const base = Float64Array.from(model.base);
	for (let t = 0; t < T; t++)
		for (let j = 0; j < nf; j++)
			base[t] =
				(base[t] as number) +
				(body.coef[t * nf + j] as number) * (means[j] as number);
	const values = new Float64Array(rows * T * nf);
	for (let r = 0; r < rows; r++)
		for (let t = 0; t < T; t++)
			for (let j = 0; j < nf; j++)
				values[(r * T + t) * nf + j] =
					(body.coef[t * nf + j] as number) *
					((X[r * nf + j] as number) - (means[j] as number));
	return explanation(model, rows, base, values, "linear");
}

/** Scratch space for one tree's unique paths (one segment per recursion depth). */
interface Paths {
	feature: Int32Array;
	zero: Float64Array;
	one: Float64Array;
	weight: Float64Array;
}

function extend(
	p: Paths,
	at: number,
	depth: number,
	zero: number,
	one: number,
	feature: number,
): void {
	p.feature[at + depth] = feature;
	p.zero[at + depth] = zero;
	p.one[at + depth] = one;
	p.weight[at + depth] = depth === 0 ? 1 : 0;
	for (let i = depth - 1; i >= 0; i--) {
		p.weight[at + i + 1] =
			(p.weight[at + i + 1] as number) +
			(one * (p.weight[at + i] as number) * (i + 1)) / (depth + 1);
		p.weight[at + i] =
			(zero * (p.weight[at + i] as number) * (depth - i)) / (depth + 1);
	}
}

function unwind(p: Paths, at: number, depth: number, index: number): void {
	const one = p.one[at + index] as number;
	const zero = p.zero[at + index] as number;
	let next = p.weight[at + depth] as number;
	for (let i = depth - 1; i >= 0; i--) {
		if (one !== 0) {
			const tmp = p.weight[at + i] as number;
			p.weight[at + i] = (next * (depth + 1)) / ((i + 1) * one);
			next =
				tmp - ((p.weight[at + i] as number) * zero * (depth - i)) / (depth + 1);
		} else
			p.weight[at + i] =
				((p.weight[at + i] as number) * (depth + 1)) / (zero * (depth - i));
	}
	for (let i = index; i < depth; i++) {
		p.feature[at + i] = p.feature[at + i + 1] as number;
		p.zero[at + i] = p.zero[at + i + 1] as number;
		p.one[at + i] = p.one[at + i + 1] as number;
	}
}

function unwoundSum(
	p: Paths,
	at: number,
	depth: number,
	index: number,
): number {
	const one = p.one[at + index] as number;
	const zero = p.zero[at + index] as number;
	let next = p.weight[at + depth] as number;
	let total = 0;
	if (one !== 0)
		for (let i = depth - 1; i >= 0; i--) {
			const tmp = next / ((i + 1) * one);
			total += tmp;
			next = (p.weight[at + i] as number) - tmp * zero * (depth - i);
		}
	else
		for (let i = depth - 1; i >= 0; i--)
			total += (p.weight[at + i] as number) / (zero * (depth - i));
	return total * (depth + 1);
}

/** Adds one row's SHAP values of one tree to `phi` (targets × features, at offset `po`). */
function treeShap(
	tree: Tree,
	targets: number,
	nf: number,
	X: Float64Array,
	xo: number,
	phi: Float64Array,
	po: number,
	scale: number,
	p: Paths,
): void {
	const recurse = (
		node: number,
		depth: number,
		parentAt: number,
		zero: number,
		one: number,
		feature: number,
	): void => {
		const at = parentAt + depth + 1;
		for (let i = 0; i <= depth; i++) {
			p.feature[at + i] = p.feature[parentAt + i] as number;
			p.zero[at + i] = p.zero[parentAt + i] as number;
			p.one[at + i] = p.one[parentAt + i] as number;
			p.weight[at + i] = p.weight[parentAt + i] as number;
		}
		extend(p, at, depth, zero, one, feature);
		const split = tree.feature[node] as number;
		if (split < 0) {
			for (let i = 1; i <= depth; i++) {
				const w = unwoundSum(p, at, depth, i);
				const f = p.feature[at + i] as number;
				const s =
					w * ((p.one[at + i] as number) - (p.zero[at + i] as number)) * scale;
				for (let t = 0; t < targets; t++)
					phi[po + t * nf + f] =
						(phi[po + t * nf + f] as number) +
						s * (tree.value[node * targets + t] as number);
			}
			return;
		}
		const left = tree.left[node] as number;
		const right = tree.right[node] as number;
		const hot = goesLeft(tree, node, X[xo + split] as number) ? left : right;
		const cold = hot === left ? right : left;
		const w = tree.cover[node] as number;
		let inZero = 1;
		let inOne = 1;
		let d = depth;
		let k = 0;
		for (; k <= d; k++) if (p.feature[at + k] === split) break;
		if (k !== d + 1) {
			inZero = p.zero[at + k] as number;
			inOne = p.one[at + k] as number;
			unwind(p, at, d, k);
			d -= 1;
		}
		// Covers counted from reference data can be 0 (no reference row reached the node): its share is 0, and a
		// branch whose zero and one fractions are both 0 adds nothing (every term has one of them as a factor).
		const share = (n: number) => (w > 0 ? (tree.cover[n] as number) / w : 0);
		const hotZero = share(hot) * inZero;
		if (hotZero !== 0 || inOne !== 0)
			recurse(hot, d + 1, at, hotZero, inOne, split);
		const coldZero = share(cold) * inZero;
		if (coldZero !== 0) recurse(cold, d + 1, at, coldZero, 0, split);
	};
	recurse(0, 0, 0, 1, 1, -1);
}

/** Cover-weighted mean leaf value of a tree per target (its expected output over the training data). */
function expected(
	tree: Tree,
	targets: number,
	out: Float64Array,
	scale: number,
): void {
	const root = tree.cover[0] as number;
	for (let n = 0; n < tree.feature.length; n++) {
		if ((tree.feature[n] as number) >= 0) continue;
		const share = (tree.cover[n] as number) / root;
		// a leaf no reference row reaches (a PMML null prediction, say) weighs nothing, whatever its value
		if (share === 0) continue;
		for (let t = 0; t < targets; t++)
			out[t] =
				(out[t] as number) +
				share * (tree.value[n * targets + t] as number) * scale;
	}
}

/**
 * Exact SHAP values of a batch (raw margin): path-dependent TreeSHAP on a tree ensemble, w·(x − E[x]) on a linear
 * model, whose feature means (`featureMeans` of the bundle's reference profile) must be given. Tree models without node
 * weights (ONNX and sklearn2pmml do not store them; `withCovers` lays on counts from reference data) and linear models
 * without means are refused with what to do instead.
 */
export function explainTree(
	model: TreeModel,
	inputs: readonly Tensor[],
	means?: Float64Array,
): Explanation {
	const body = model.body;
	if (body.kind === "linear") {
		if (!means)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`exact explanations of a linear model need the mean of each feature over the training data, which the model file does not carry; ${ADD_REFERENCE}`,
			);
		return explainLinear(model, body, inputs, means);
	}
	for (const tr of body.trees)
		if (tr.cover.some((c) => Number.isNaN(c)))
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`the ${model.format} model file carries no node weights (training cover), which TreeSHAP needs; ${ADD_COVERS}, or bundle the XGBoost JSON or LightGBM text file`,
			);
	const rows = batchRows(inputs);
	const nf = model.features.length;
	const T = model.targets;
	const X = featureMatrix(model, inputs);
	const scale = body.aggregate === "average" ? 1 / body.trees.length : 1;
	const base = Float64Array.from(model.base);
	for (const tr of body.trees) expected(tr, T, base, scale);
	const values = new Float64Array(rows * T * nf);
	let depth = 0;
	for (const tr of body.trees) depth = Math.max(depth, treeDepth(tr));
	const size = ((depth + 3) * (depth + 4)) / 2;
	const paths: Paths = {
		feature: new Int32Array(size),
		zero: new Float64Array(size),
		one: new Float64Array(size),
		weight: new Float64Array(size),
	};
	for (let r = 0; r < rows; r++)
		for (const tr of body.trees)
			treeShap(tr, T, nf, X, r * nf, values, r * T * nf, scale, paths);
	return explanation(model, rows, base, values, "tree_path_dependent");
}
