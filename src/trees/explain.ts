// Exact explanations on the tree representation: path-dependent TreeSHAP (Lundberg, Erion & Lee 2018), per target,
// in raw-margin space. The same values as Algorithm 2; each leaf's Shapley weights are computed as an integral
// with Gauss–Legendre quadrature (see `leaf`) instead of by extending and unwinding path weights at every node.
import type { Profile } from "../monitor/profile/format.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import { ADD_COVERS } from "./covers.ts";
import { batchRows, featureMatrix, soleTarget } from "./eval.ts";
import {
	type Feature,
	goesLeft,
	LE,
	type Linear,
	LT,
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

/**
 * Gauss–Legendre rules on [0, 1], made on first use: `x[n]` and `w[n]` hold the n nodes and weights of the n-point
 * rule, exact for polynomials of degree up to 2n − 1 (nodes by Newton's method on the Legendre polynomial P_n).
 */
interface Quadrature {
	x: Float64Array[];
	w: Float64Array[];
}

function rule(q: Quadrature, n: number): void {
	if (q.x[n]) return;
	const x = new Float64Array(n);
	const w = new Float64Array(n);
	for (let i = 0; i < n; i++) {
		let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
		let dp = 1;
		for (let it = 0; it < 100; it++) {
			let p1 = 1;
			let p2 = 0;
			for (let j = 1; j <= n; j++) {
				const p3 = p2;
				p2 = p1;
				p1 = ((2 * j - 1) * z * p2 - (j - 1) * p3) / j;
			}
			dp = (n * (z * p1 - p2)) / (z * z - 1);
			const dz = p1 / dp;
			z -= dz;
			if (Math.abs(dz) <= 1e-15) break;
		}
		// From [−1, 1] to [0, 1].
		x[i] = (1 - z) / 2;
		w[i] = 1 / ((1 - z * z) * dp * dp);
	}
	q.x[n] = x;
	q.w[n] = w;
}

/**
 * The unique path of the node being visited, one element per feature split on above it: the share of training rows
 * that follow the path at that feature's splits (zero fraction) and whether the explained row does (one fraction,
 * 0 or 1). Elements 0 .. len − 1; a child changes one element or appends one, and puts it back on return. Also the
 * scratch space of the leaf sums.
 */
interface Paths {
	feature: Int32Array;
	zero: Float64Array;
	one: Float64Array;
	/** Per leaf: each element's factor at a node, the prefix products, and its accumulated integral. */
	factor: Float64Array;
	prefix: Float64Array;
	acc: Float64Array;
	quad: Quadrature;
}

/**
 * One tree and what the walks read, in one reused object (no closure per row and tree); `xo`/`po` (the row's
 * features and values) serve the row-by-row walk, the block walk has its own rows.
 */
interface Walk {
	tree: Tree;
	targets: number;
	/** The one target the tree's leaves add to, or -1 (see soleTarget). */
	only: number;
	nf: number;
	X: Float64Array;
	xo: number;
	phi: Float64Array;
	po: number;
	scale: number;
	p: Paths;
}

/**
 * Each path element's contribution per unit of leaf value, into `p.acc`: (o_j − z_j) ∫ G / f_j. With the path's
 * D unique features, z_j the share of training rows that follow the path at j's splits and o_j whether the row does
 * (`p.zero`, `p.one`), Algorithm 2's weight of feature i is
 * Σ_S |S|!(D−|S|−1)!/D! Π_{j∈S} o_j Π_{j∉S, j≠i} z_j = ∫₀¹ Π_{j≠i} (z_j(1−x) + o_j x) dx (a Beta integral), so
 * φ_i += v · (o_i − z_i) · that integral. The integrand is a polynomial of degree D − 1, which the ⌈D/2⌉-point
 * Gauss–Legendre rule integrates exactly: about D²/2 independent multiply-adds per leaf instead of the reference
 * implementation's D serial unwinds of D steps, and no path weights to extend or unwind at every node (the idea
 * of Linear TreeSHAP, Yu et al. 2022). The product does not depend on the order of the elements.
 */
function integrals(p: Paths, D: number): void {
	const n = (D + 1) >> 1;
	rule(p.quad, n);
	const xs = p.quad.x[n] as Float64Array;
	const ws = p.quad.w[n] as Float64Array;
	const { factor, prefix, acc, zero, one } = p;
	for (let j = 0; j < D; j++) acc[j] = 0;
	for (let q = 0; q < n; q++) {
		const x = xs[q] as number;
		const y = 1 - x;
		let pre = 1;
		for (let j = 0; j < D; j++) {
			const f = (zero[j] as number) * y + (one[j] as number) * x;
			factor[j] = f;
			prefix[j] = pre;
			pre *= f;
		}
		let suffix = ws[q] as number;
		for (let j = D - 1; j >= 0; j--) {
			acc[j] = (acc[j] as number) + (prefix[j] as number) * suffix;
			suffix *= factor[j] as number;
		}
	}
	for (let j = 0; j < D; j++)
		acc[j] = (acc[j] as number) * ((one[j] as number) - (zero[j] as number));
}

/**
 * Adds a leaf's contributions `c[at + j]` (per unit of leaf value, path element j) times its value to the row whose
 * values start at `po`.
 */
function addLeaf(
	s: Walk,
	node: number,
	D: number,
	c: Float64Array,
	at: number,
	po: number,
): void {
	const p = s.p;
	const T = s.targets;
	const nf = s.nf;
	const only = s.only;
	const phi = s.phi;
	const value = s.tree.value;
	if (only >= 0) {
		const v = (value[node * T + only] as number) * s.scale;
		const o = po + only * nf;
		for (let j = 0; j < D; j++) {
			const k = o + (p.feature[j] as number);
			phi[k] = (phi[k] as number) + (c[at + j] as number) * v;
		}
		return;
	}
	for (let j = 0; j < D; j++) {
		const f = p.feature[j] as number;
		const cj = (c[at + j] as number) * s.scale;
		for (let t = 0; t < T; t++)
			phi[po + t * nf + f] =
				(phi[po + t * nf + f] as number) + cj * (value[node * T + t] as number);
	}
}

/** Adds one leaf's contributions for the row being walked (see `integrals`). */
function leaf(s: Walk, node: number, D: number): void {
	if (D === 0) return;
	// An element with both fractions 0 (a node no reference row reached, on a side this row does not take) makes
	// every term 0: the leaf adds nothing, whatever its value (a PMML null prediction is NaN).
	for (let j = 0; j < D; j++) if (s.p.zero[j] === 0 && s.p.one[j] === 0) return;
	integrals(s.p, D);
	addLeaf(s, node, D, s.p.acc, 0, s.po);
}

/** Walks the tree under `node` (its unique path has `len` elements) and adds each leaf's contributions to `phi`. */
function recurse(s: Walk, node: number, len: number): void {
	const tree = s.tree;
	const split = tree.feature[node] as number;
	if (split < 0) {
		leaf(s, node, len);
		return;
	}
	const p = s.p;
	const left = tree.left[node] as number;
	const right = tree.right[node] as number;
	// Threshold splits inline; the rest (and NaN) as goesLeft defines them.
	const v = s.X[s.xo + split] as number;
	const mode = tree.mode[node];
	const goLeft =
		mode === LE && !Number.isNaN(v)
			? v <= (tree.threshold[node] as number)
			: mode === LT && !Number.isNaN(v)
				? v < (tree.threshold[node] as number)
				: goesLeft(tree, node, v);
	const hot = goLeft ? left : right;
	const cold = hot === left ? right : left;
	// Covers counted from reference data can be 0 (no reference row reached the node): its share is 0.
	const w = tree.cover[node] as number;
	const toHot = w > 0 ? (tree.cover[hot] as number) / w : 0;
	const toCold = w > 0 ? (tree.cover[cold] as number) / w : 0;
	let k = 0;
	while (k < len && p.feature[k] !== split) k++;
	if (k < len) {
		// Split on above: its element's fractions carry on (the row follows the path only if it did there too).
		const z = p.zero[k] as number;
		const o = p.one[k] as number;
		p.zero[k] = z * toHot;
		recurse(s, hot, len);
		p.zero[k] = z * toCold;
		p.one[k] = 0;
		recurse(s, cold, len);
		p.zero[k] = z;
		p.one[k] = o;
		return;
	}
	p.feature[len] = split;
	p.zero[len] = toHot;
	p.one[len] = 1;
	recurse(s, hot, len + 1);
	p.feature[len] = split;
	p.zero[len] = toCold;
	p.one[len] = 0;
	recurse(s, cold, len + 1);
}

/** Deepest tree explained: the walks recurse once per level (and real models stay far below). */
export const MAX_EXPLAIN_DEPTH = 1000;
/** Rows explained together by one walk of each tree (see `walkBlock`). */
const BLOCK_ROWS = 256;
/** Paths up to this many elements keep a memo of contributions per pattern (2^12 patterns × 12 values). */
const MEMO_BITS = 12;
/** Longest path the block walk handles (a row's pattern is an int32 bit mask); longer ones go row by row. */
const MAX_BLOCK_PATH = 30;

/**
 * The block walk: what is shared by the rows of a block (the unique path's features and zero fractions, which
 * depend on the tree only), what is per row (the one fractions, as a bit mask per row and recursion level), and a
 * memo of each leaf's contributions per bit mask.
 */
interface Block {
	s: Walk;
	r0: number;
	rows: number;
	/** `mask[level * BLOCK_ROWS + r]`: bit j set when row r follows the path at element j's splits (level 0, the root: none, never written). */
	mask: Int32Array;
	/** `left[level * BLOCK_ROWS + r]`: 1 when row r goes left at the node of that level. */
	left: Uint8Array;
	/** The leaf visit each memo entry belongs to, and its values (`memo[mask * MEMO_BITS + j]`). */
	stamp: Float64Array;
	memo: Float64Array;
	visit: number;
}

/**
 * Walks the tree under `node` once for all rows of the block. Every row visits every node in path-dependent
 * TreeSHAP (the cold branch too), so the per-node work is done once and each row only carries its bit mask; at a
 * leaf, rows with the same mask (the same one fractions) share one computation of the contributions.
 */
function walkBlock(b: Block, node: number, len: number, lvl: number): void {
	const s = b.s;
	const tree = s.tree;
	const split = tree.feature[node] as number;
	const R = b.rows;
	const m0 = lvl * BLOCK_ROWS;
	if (split < 0) {
		leafBlock(b, node, len, m0);
		return;
	}
	const p = s.p;
	const X = s.X;
	const nf = s.nf;
	const M = b.mask;
	const L = b.left;
	const mode = tree.mode[node];
	const t = tree.threshold[node] as number;
	for (let r = 0; r < R; r++) {
		const v = X[(b.r0 + r) * nf + split] as number;
		L[m0 + r] = (
			mode === LE && !Number.isNaN(v)
				? v <= t
				: mode === LT && !Number.isNaN(v)
					? v < t
					: goesLeft(tree, node, v)
		)
			? 1
			: 0;
	}
	let k = 0;
	while (k < len && p.feature[k] !== split) k++;
	const dup = k < len;
	const zOld = dup ? (p.zero[k] as number) : 1;
	const bit = 1 << k;
	const m1 = m0 + BLOCK_ROWS;
	const cover = tree.cover[node] as number;
	for (let side = 1; side >= 0; side--) {
		const child =
			side === 1 ? (tree.left[node] as number) : (tree.right[node] as number);
		p.feature[k] = split;
		p.zero[k] = cover > 0 ? zOld * ((tree.cover[child] as number) / cover) : 0;
		// A row follows the new element when it goes this way and (for a feature split on above) followed it there.
		if (dup)
			for (let r = 0; r < R; r++) {
				const m = M[m0 + r] as number;
				M[m1 + r] = L[m0 + r] === side ? m : m & ~bit;
			}
		else
			for (let r = 0; r < R; r++) {
				const m = M[m0 + r] as number;
				M[m1 + r] = L[m0 + r] === side ? m | bit : m;
			}
		walkBlock(b, child, dup ? len : len + 1, lvl + 1);
	}
	p.zero[k] = zOld;
}

/** Adds one leaf's contributions to every row of the block, computed once per distinct one-fraction pattern. */
function leafBlock(b: Block, node: number, D: number, m0: number): void {
	if (D === 0) return;
	const s = b.s;
	const p = s.p;
	const memo = D <= MEMO_BITS;
	// Elements whose zero fraction is 0: a row that does not follow one of them gets nothing from this leaf (see `leaf`).
	let zeroMask = 0;
	for (let j = 0; j < D; j++) if (p.zero[j] === 0) zeroMask |= 1 << j;
	b.visit++;
	const visit = b.visit;
	for (let r = 0; r < b.rows; r++) {
		const mask = b.mask[m0 + r] as number;
		if ((zeroMask & ~mask) !== 0) continue;
		const po = (b.r0 + r) * s.targets * s.nf;
		if (memo && b.stamp[mask] === visit) {
			addLeaf(s, node, D, b.memo, mask * MEMO_BITS, po);
			continue;
		}
		for (let j = 0; j < D; j++) p.one[j] = (mask >> j) & 1;
		integrals(p, D);
		if (memo) {
			b.stamp[mask] = visit;
			b.memo.set(p.acc.subarray(0, D), mask * MEMO_BITS);
		}
		addLeaf(s, node, D, p.acc, 0, po);
	}
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
	body.trees.forEach((tr, k) => {
		const d = treeDepth(tr);
		if (d > MAX_EXPLAIN_DEPTH)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`tree ${k} of the ${model.format} model is ${d} levels deep; TreeSHAP explains trees of at most ${MAX_EXPLAIN_DEPTH} levels`,
			);
		depth = Math.max(depth, d);
	});
	const paths: Paths = {
		feature: new Int32Array(depth + 1),
		zero: new Float64Array(depth + 1),
		one: new Float64Array(depth + 1),
		factor: new Float64Array(depth + 1),
		prefix: new Float64Array(depth + 1),
		acc: new Float64Array(depth + 1),
		quad: { x: [], w: [] },
	};
	const trees = body.trees;
	const only = trees.map((tr) => soleTarget(tr, T));
	const s: Walk = {
		tree: trees[0] as Tree,
		targets: T,
		only: 0,
		nf,
		X,
		xo: 0,
		phi: values,
		po: 0,
		scale,
		p: paths,
	};
	if (Math.min(depth, nf) <= MAX_BLOCK_PATH) {
		const levels = depth + 1;
		const b: Block = {
			s,
			r0: 0,
			rows: 0,
			mask: new Int32Array(levels * BLOCK_ROWS),
			left: new Uint8Array(levels * BLOCK_ROWS),
			stamp: new Float64Array(1 << Math.min(MEMO_BITS, depth)),
			memo: new Float64Array((1 << Math.min(MEMO_BITS, depth)) * MEMO_BITS),
			visit: 0,
		};
		for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
			b.r0 = r0;
			b.rows = Math.min(BLOCK_ROWS, rows - r0);
			for (let k = 0; k < trees.length; k++) {
				s.tree = trees[k] as Tree;
				s.only = only[k] as number;
				walkBlock(b, 0, 0, 0);
			}
		}
	} else
		for (let r = 0; r < rows; r++) {
			s.xo = r * nf;
			s.po = r * T * nf;
			for (let k = 0; k < trees.length; k++) {
				s.tree = trees[k] as Tree;
				s.only = only[k] as number;
				recurse(s, 0, 0);
			}
		}
	return explanation(model, rows, base, values, "tree_path_dependent");
}
