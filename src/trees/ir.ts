// The tree/linear intermediate representation: what every reader (ONNX, PMML, XGBoost, LightGBM) produces and
// what the evaluator, TreeSHAP and a SQL compiler walk. Plain data: flat typed arrays per tree, no closures.
import { MlshipError } from "../protocol/errors.ts";
import type { Signature } from "../protocol/types.ts";

/** Split modes. A node sends a row LEFT when the test holds: x < t, x <= t, x == t, or x in the node's set. */
export const LT = 0;
export const LE = 1;
export const EQ = 2;
/** Categorical: left when the value (truncated to an integer) is one of the node's categories. */
export const IN = 3;
/** Set membership by exact value (ONNX BRANCH_MEMBER): left when the value equals one of the node's values. */
export const ISIN = 4;
export type SplitMode =
	| typeof LT
	| typeof LE
	| typeof EQ
	| typeof IN
	| typeof ISIN;

/**
 * One tree, nodes in flat arrays indexed by node id (root = 0). A leaf has `feature[i] = -1`.
 * Leaf values are `value[i * targets + t]`; internal nodes hold zeros there.
 */
export interface Tree {
	feature: Int32Array;
	threshold: Float64Array;
	mode: Uint8Array;
	left: Int32Array;
	right: Int32Array;
	/** 1: a missing value (NaN) goes left; 0: right. */
	missingLeft: Uint8Array;
	/** Categories of IN nodes: `cats[catStart[i] .. catStart[i] + catLen[i])`, sorted. */
	catStart: Int32Array;
	catLen: Int32Array;
	cats: Float64Array;
	value: Float64Array;
	/** Training weight (sample count or hessian sum) reaching each node; NaN when the format does not carry it. */
	cover: Float64Array;
}

/** How a model input column becomes one feature: preprocessing folded in per column. */
export interface Feature {
	/** Name, for explanations and messages. */
	name: string;
	/** Index of the signature input it reads. */
	input: number;
	/** Column of that input (last dimension). */
	column: number;
	/** The format evaluates this field in single precision (PMML dataType="float"): the value is rounded to float32 first. */
	round32?: boolean;
	/** One-hot indicator: the feature is 1 when the raw value equals this, else 0. */
	equals?: string | number;
	/** Replaces a missing (NaN) value, or a value equal to `imputeWhen` (ONNX Imputer). */
	impute?: number;
	imputeWhen?: number;
	/** Affine step after imputation: (x - offset) * scale (ONNX Scaler, PMML NormContinuous). */
	offset?: number;
	scale?: number;
}

export interface Ensemble {
	kind: "ensemble";
	trees: Tree[];
	/** sum: raw = base + Σ trees; average: raw = base + mean of trees. */
	aggregate: "sum" | "average";
}

export interface Linear {
	kind: "linear";
	/** Coefficients, row-major targets × features. */
	coef: Float64Array;
}

/** Applied to the raw scores: identity, logistic per target, softmax over targets, exp (log link). */
export type Link = "identity" | "logistic" | "softmax" | "exp";

/** What the model outputs after the link. */
export type Head =
	| { kind: "regression" }
	/**
	 * `labels`: the INT64 label of each class (probability column). When `targets` is 1 and there are 2 classes,
	 * the linked score is P(class 1) and P(class 0) = 1 − it.
	 */
	| { kind: "classification"; labels: number[] };

/** A model read into the representation. */
export interface TreeModel {
	/** Where it came from: "xgboost", "lightgbm", "onnx", "pmml". */
	format: string;
	features: Feature[];
	/** Number of raw scores (regression targets, or classes; 1 for a binary logistic model). */
	targets: number;
	body: Ensemble | Linear;
	/** Added to the raw score of each target (intercept or base score). */
	base: Float64Array;
	link: Link;
	head: Head;
	/** Signature of the model file: inputs (as features read them) and outputs (label/probabilities or variable). */
	signature: Signature;
}

/** Most outputs (classes, targets) per leaf, and most nodes × outputs per tree: a hostile file cannot make us allocate more. */
export const MAX_TARGETS = 65536;
export const MAX_TREE_VALUES = 1 << 26;

/** Collects nodes of one tree and freezes them into typed arrays. */
export class TreeBuilder {
	readonly targets: number;
	readonly #feature: number[] = [];
	readonly #threshold: number[] = [];
	readonly #mode: number[] = [];
	readonly #left: number[] = [];
	readonly #right: number[] = [];
	readonly #missingLeft: number[] = [];
	readonly #catStart: number[] = [];
	readonly #catLen: number[] = [];
	readonly #cats: number[] = [];
	readonly #value: number[] = [];
	readonly #cover: number[] = [];

	constructor(targets: number) {
		if (!Number.isInteger(targets) || targets < 1 || targets > MAX_TARGETS)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`a model with ${targets} outputs per leaf (from 1 to ${MAX_TARGETS} are supported)`,
			);
		this.targets = targets;
	}

	get size(): number {
		return this.#feature.length;
	}

	/** Adds a node (a leaf until `split` is called on it) and returns its id. */
	node(cover = Number.NaN): number {
		if ((this.#feature.length + 1) * this.targets > MAX_TREE_VALUES)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`a tree with more than ${MAX_TREE_VALUES} leaf values (nodes × outputs)`,
			);
		this.#feature.push(-1);
		this.#threshold.push(0);
		this.#mode.push(LE);
		this.#left.push(-1);
		this.#right.push(-1);
		this.#missingLeft.push(0);
		this.#catStart.push(0);
		this.#catLen.push(0);
		this.#cover.push(cover);
		for (let t = 0; t < this.targets; t++) this.#value.push(0);
		return this.#feature.length - 1;
	}

	split(
		id: number,
		feature: number,
		mode: SplitMode,
		threshold: number,
		left: number,
		right: number,
		missingLeft: boolean,
		cats?: readonly number[],
	): void {
		this.#feature[id] = feature;
		this.#mode[id] = mode;
		this.#threshold[id] = threshold;
		this.#left[id] = left;
		this.#right[id] = right;
		this.#missingLeft[id] = missingLeft ? 1 : 0;
		if (cats) {
			this.#catStart[id] = this.#cats.length;
			this.#catLen[id] = cats.length;
			this.#cats.push(...[...cats].sort((a, b) => a - b));
		}
	}

	/** Adds `v` to leaf `id`'s value for `target`. */
	addValue(id: number, target: number, v: number): void {
		const k = id * this.targets + target;
		this.#value[k] = (this.#value[k] as number) + v;
	}

	setCover(id: number, cover: number): void {
		this.#cover[id] = cover;
	}

	build(where: string): Tree {
		const n = this.#feature.length;
		if (n === 0) throw new Error(`${where}: a tree without nodes`);
		for (let i = 0; i < n; i++) {
			if ((this.#feature[i] as number) < 0) continue;
			const l = this.#left[i] as number;
			const r = this.#right[i] as number;
			if (l <= i || r <= i || l >= n || r >= n)
				throw new Error(
					`${where}: node ${i} has children ${l}/${r} that are not later nodes of the tree`,
				);
		}
		return {
			feature: Int32Array.from(this.#feature),
			threshold: Float64Array.from(this.#threshold),
			mode: Uint8Array.from(this.#mode),
			left: Int32Array.from(this.#left),
			right: Int32Array.from(this.#right),
			missingLeft: Uint8Array.from(this.#missingLeft),
			catStart: Int32Array.from(this.#catStart),
			catLen: Int32Array.from(this.#catLen),
			cats: Float64Array.from(this.#cats),
			value: Float64Array.from(this.#value),
			cover: Float64Array.from(this.#cover),
		};
	}
}

/** Whether node `n` of `tree` sends value `v` left. */
export function goesLeft(tree: Tree, n: number, v: number): boolean {
	if (Number.isNaN(v)) return tree.missingLeft[n] === 1;
	const t = tree.threshold[n] as number;
	switch (tree.mode[n]) {
		case LT:
			return v < t;
		case LE:
			return v <= t;
		case EQ:
			return v === t;
		case ISIN:
			return inSet(tree, n, v, false);
		default:
			return inSet(tree, n, v, true);
	}
}

function inSet(tree: Tree, n: number, v: number, truncate: boolean): boolean {
	const c = truncate ? Math.trunc(v) : v;
	let lo = tree.catStart[n] as number;
	let hi = lo + (tree.catLen[n] as number) - 1;
	while (lo <= hi) {
		const mid = (lo + hi) >> 1;
		const m = tree.cats[mid] as number;
		if (m === c) return true;
		if (m < c) lo = mid + 1;
		else hi = mid - 1;
	}
	return false;
}

/** Depth of the deepest leaf (root = 0), for size limits of compilers. */
export function treeDepth(tree: Tree): number {
	const depth = new Int32Array(tree.feature.length);
	let max = 0;
	for (let i = 0; i < tree.feature.length; i++) {
		if ((tree.feature[i] as number) < 0) continue;
		const d = (depth[i] as number) + 1;
		depth[tree.left[i] as number] = d;
		depth[tree.right[i] as number] = d;
		if (d > max) max = d;
	}
	return max;
}

/** The OIP platform of models on the native `trees` runtime (the one that explains exactly). */
export const TREES_PLATFORM = "mlship_trees";
