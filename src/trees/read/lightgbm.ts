// Reads a LightGBM text model (Booster.save_model("m.txt")): numerical and categorical (bitset) splits, missing-value
// directions, sum (gbdt) or average (rf) of trees.
import { IN, LE, type Link, TreeBuilder, type TreeModel } from "../ir.ts";
import {
	checkTargets,
	floatInputSignature,
	MAX_FEATURES,
	refuse,
} from "./common.ts";

/** Largest number of values one `key=v v v` line may hold (a hostile file cannot make us allocate more). */
const MAX_VALUES = 1 << 24;

function linkOf(
	objective: string,
	where: string,
): { link: Link; classify: boolean } {
	const [name = "", ...params] = objective.split(/\s+/);
	const sigmoid = params.find((p) => p.startsWith("sigmoid:"));
	if (sigmoid && Number(sigmoid.slice(8)) !== 1)
		refuse(
			`${where}: objective '${objective}'`,
			"a sigmoid other than 1 is not supported",
		);
	switch (name) {
		case "regression":
		case "regression_l1":
		case "huber":
		case "fair":
		case "quantile":
		case "mape":
			return { link: "identity", classify: false };
		case "poisson":
		case "gamma":
		case "tweedie":
			return { link: "exp", classify: false };
		case "binary":
			return { link: "logistic", classify: true };
		case "cross_entropy":
			return { link: "logistic", classify: false };
		case "multiclass":
			return { link: "softmax", classify: true };
		default:
			return refuse(
				`${where}: objective '${objective}'`,
				"not supported (regression, regression_l1, huber, fair, quantile, mape, poisson, gamma, tweedie, binary, cross_entropy, multiclass are)",
			);
	}
}

/** Splits `key=value` lines of one block into a map. */
function block(lines: string[]): Map<string, string> {
	const m = new Map<string, string>();
	for (const line of lines) {
		const i = line.indexOf("=");
		if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
	}
	return m;
}

function nums(
	m: Map<string, string>,
	key: string,
	where: string,
	n: number,
): number[] {
	const v = m.get(key);
	if (v === undefined) {
		if (n === 0) return [];
		refuse(where, `'${key}' is missing`);
	}
	const parts = v.trim() === "" ? [] : v.trim().split(" ");
	if (parts.length > MAX_VALUES || parts.length !== n)
		refuse(where, `'${key}' has ${parts.length} values, expected ${n}`);
	const out = parts.map(Number);
	if (out.some((x) => Number.isNaN(x)))
		refuse(where, `'${key}' holds a value that is not a number`);
	return out;
}

/** Parses LightGBM model text; `source` names the file in errors. */
export function readLightgbm(text: string, source: string): TreeModel {
	const end = text.indexOf("end of trees");
	const body = (end >= 0 ? text.slice(0, end) : text).split(/\r?\n/);
	if (body[0]?.trim() !== "tree")
		refuse(
			source,
			"does not start with 'tree': not a LightGBM text model (save_model(\"model.txt\"))",
		);
	// Blocks are separated by "Tree=N" headers; the first block is the header.
	const blocks: string[][] = [[]];
	for (const line of body) {
		if (line.startsWith("Tree=")) blocks.push([]);
		(blocks[blocks.length - 1] as string[]).push(line.trim());
	}
	const header = block(blocks[0] as string[]);
	const nFeatures = Number(header.get("max_feature_idx")) + 1;
	const numClass = Number(header.get("num_class") ?? 1);
	const perIter = Number(header.get("num_tree_per_iteration") ?? 1);
	if (!(nFeatures > 0 && nFeatures <= MAX_FEATURES) || !(numClass >= 1))
		refuse(source, "header lacks max_feature_idx or num_class");
	const { link, classify } = linkOf(
		header.get("objective") ?? "regression",
		source,
	);
	const average = header.has("average_output");
	const targets = checkTargets(perIter, `${source}: num_tree_per_iteration`);
	const trees = blocks.slice(1).map((lines, k) => {
		const m = block(lines);
		const where = `${source}: Tree=${k}`;
		if (m.get("is_linear") === "1")
			refuse(where, "linear trees (linear_tree=true) are not supported");
		const leaves = Number(m.get("num_leaves"));
		if (!(leaves >= 1 && leaves <= MAX_VALUES)) refuse(where, "bad num_leaves");
		const target = k % perIter;
		const b = new TreeBuilder(targets);
		const leafValue = nums(m, "leaf_value", where, leaves);
		if (leaves === 1) {
			const id = b.node(Number(m.get("leaf_count") ?? Number.NaN));
			b.addValue(id, target, leafValue[0] as number);
			return b.build(where);
		}
		const inner = leaves - 1;
		const feature = nums(m, "split_feature", where, inner);
		const threshold = nums(m, "threshold", where, inner);
		const decision = nums(m, "decision_type", where, inner);
		const left = nums(m, "left_child", where, inner);
		const right = nums(m, "right_child", where, inner);
		const leafCount = m.has("leaf_count")
			? nums(m, "leaf_count", where, leaves)
			: [];
		const innerCount = m.has("internal_count")
			? nums(m, "internal_count", where, inner)
			: [];
		const numCat = Number(m.get("num_cat") ?? 0);
		const catBounds =
			numCat > 0 ? nums(m, "cat_boundaries", where, numCat + 1) : [];
		const catWords =
			numCat > 0
				? nums(m, "cat_threshold", where, catBounds[numCat] as number)
				: [];
		// LightGBM numbers internal nodes 0.. and leaves ~0..; lay them out in preorder so children follow parents.
		let visits = 0;
		const visit = (child: number): number => {
			if (++visits > 2 * leaves) refuse(where, "its child links form a cycle");
			if (child < 0) {
				const leaf = ~child;
				const id = b.node(leafCount[leaf] ?? Number.NaN);
				b.addValue(id, target, leafValue[leaf] as number);
				return id;
			}
			if (child >= inner)
				refuse(where, `child ${child} of ${inner} internal nodes`);
			const id = b.node(innerCount[child] ?? Number.NaN);
			const l = visit(left[child] as number);
			const r = visit(right[child] as number);
			const dt = decision[child] as number;
			const f = feature[child] as number;
			if (f < 0 || f >= nFeatures)
				refuse(`${where} node ${child}`, `splits on feature ${f}`);
			if (dt & 1) {
				const c = threshold[child] as number;
				const lo = catBounds[c] as number;
				const hi = catBounds[c + 1] as number;
				if (!(c >= 0 && c < numCat))
					refuse(`${where} node ${child}`, `category set ${c} of ${numCat}`);
				const cats: number[] = [];
				for (let w = lo; w < hi; w++) {
					const word = (catWords[w] as number) >>> 0;
					for (let bit = 0; bit < 32; bit++)
						if (word & (1 << bit)) cats.push((w - lo) * 32 + bit);
				}
				// NaN and negative values go right, as in LightGBM's CategoricalDecision.
				b.split(id, f, IN, 0, l, r, false, cats);
			} else {
				const missingType = (dt >> 2) & 3;
				const defaultLeft = (dt & 2) !== 0;
				const t = threshold[child] as number;
				if (missingType === 1)
					refuse(
						`${where} node ${child}`,
						"zero-as-missing splits (zero_as_missing=true) are not supported",
					);
				// missing type None: NaN is read as 0 and compared; NaN: it takes the default direction.
				b.split(id, f, LE, t, l, r, missingType === 2 ? defaultLeft : 0 <= t);
			}
			return id;
		};
		visit(0);
		return b.build(where);
	});
	if (trees.length % perIter !== 0)
		refuse(
			source,
			`${trees.length} trees is not a multiple of num_tree_per_iteration ${perIter}`,
		);
	const names = (header.get("feature_names") ?? "")
		.split(" ")
		.filter((s) => s !== "");
	const classes = classify ? Math.max(2, numClass) : 0;
	// average_output (boosting=rf) averages over iterations, i.e. over the trees of each target.
	return {
		format: "lightgbm",
		features: Array.from({ length: nFeatures }, (_, j) => ({
			name: names[j] ?? `Column_${j}`,
			input: 0,
			column: j,
		})),
		targets,
		body: {
			kind: "ensemble",
			trees: average
				? trees.map((t) => scaleLeaves(t, perIter / trees.length))
				: trees,
			aggregate: "sum",
		},
		base: new Float64Array(targets),
		link,
		head: classify
			? {
					kind: "classification",
					labels: Array.from({ length: classes }, (_, k) => k),
				}
			: { kind: "regression" },
		signature: floatInputSignature(nFeatures, "FP64", classes, targets),
	};
}

/** A copy of the tree with leaf values multiplied by `k` (an average over trees as a sum). */
function scaleLeaves<T extends { value: Float64Array }>(t: T, k: number): T {
	return { ...t, value: t.value.map((v) => v * k) };
}
