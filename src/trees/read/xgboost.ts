// Reads an XGBoost JSON model (Booster.save_model("m.json")) into the tree representation, categorical splits included.
import { IN, type Link, LT, TreeBuilder, type TreeModel } from "../ir.ts";
import {
	checkTargets,
	floatInputSignature,
	MAX_FEATURES,
	refuse,
} from "./common.ts";

interface XgbTree {
	left_children: number[];
	right_children: number[];
	split_indices: number[];
	split_conditions: number[];
	default_left: (number | boolean)[];
	split_type?: number[];
	sum_hessian?: number[];
	categories?: number[];
	categories_nodes?: number[];
	categories_segments?: number[];
	categories_sizes?: number[];
	tree_param?: { size_leaf_vector?: string };
}

/** Objectives by link; anything else is refused by name. */
const LINKS: Record<string, Link> = {
	"reg:squarederror": "identity",
	"reg:squaredlogerror": "identity",
	"reg:pseudohubererror": "identity",
	"reg:absoluteerror": "identity",
	"reg:quantileerror": "identity",
	"reg:linear": "identity",
	"binary:logitraw": "identity",
	"reg:logistic": "logistic",
	"binary:logistic": "logistic",
	"multi:softprob": "softmax",
	"multi:softmax": "softmax",
	"count:poisson": "exp",
	"reg:gamma": "exp",
	"reg:tweedie": "exp",
};

function numbers(s: unknown, where: string): number[] {
	const text = String(s ?? "").trim();
	const inner = text.startsWith("[") ? text.slice(1, -1) : text;
	const out = inner
		.split(",")
		.filter((x) => x.trim() !== "")
		.map(Number);
	if (out.some((x) => !Number.isFinite(x)))
		refuse(where, `'${text}' is not a number or list of numbers`);
	return out;
}

/** Parses XGBoost JSON text; `source` names the file in errors. */
export function readXgboost(text: string, source: string): TreeModel {
	let doc: {
		learner?: {
			feature_names?: string[];
			learner_model_param?: Record<string, string>;
			objective?: { name?: string };
			gradient_booster?: {
				name?: string;
				model?: { trees?: XgbTree[]; tree_info?: number[] };
			};
		};
	};
	try {
		doc = JSON.parse(text);
	} catch (err) {
		return refuse(
			source,
			`not JSON: ${(err as Error).message}; give the file XGBoost's save_model("model.json") wrote`,
		);
	}
	const learner = doc.learner;
	if (!learner?.gradient_booster)
		refuse(
			source,
			`no 'learner.gradient_booster': not an XGBoost JSON model (save_model("model.json"))`,
		);
	const booster = learner.gradient_booster;
	if (booster.name !== "gbtree")
		refuse(
			`${source}: gradient_booster '${booster.name}'`,
			"only 'gbtree' boosters are supported (dart and gblinear are not)",
		);
	const param = learner.learner_model_param ?? {};
	const objective = learner.objective?.name ?? "";
	const link = LINKS[objective];
	if (!link)
		refuse(
			`${source}: objective '${objective}'`,
			`not supported (supported: ${Object.keys(LINKS).join(", ")})`,
		);
	const nFeatures = Number(param.num_feature);
	if (!Number.isInteger(nFeatures) || nFeatures < 1 || nFeatures > MAX_FEATURES)
		refuse(
			`${source}: num_feature '${param.num_feature}'`,
			`must be a whole number from 1 to ${MAX_FEATURES}`,
		);
	const numClass = Number(param.num_class ?? 0);
	if (Number(param.num_target ?? 1) > 1)
		refuse(
			`${source}: num_target ${param.num_target}`,
			"multi-target models are not supported",
		);
	const targets = checkTargets(
		Math.max(numClass || 1, 1),
		`${source}: num_class '${param.num_class}'`,
	);
	let base = numbers(param.base_score, `${source}: base_score`);
	if (base.length === 1 && targets > 1) base = new Array(targets).fill(base[0]);
	if (base.length !== targets)
		refuse(
			`${source}: base_score`,
			`has ${base.length} values for ${targets} targets`,
		);
	// base_score is stored in the objective's output space; the trees add to the margin.
	if (link === "logistic") base = base.map((p) => Math.log(p / (1 - p)));
	else if (link === "exp") base = base.map((p) => Math.log(p));
	const xgbTrees = booster.model?.trees ?? [];
	const info = booster.model?.tree_info ?? [];
	const trees = xgbTrees.map((t, k) => {
		const where = `${source}: tree ${k}`;
		if (Number(t.tree_param?.size_leaf_vector ?? 1) > 1)
			refuse(where, "vector leaves (multi_strategy) are not supported");
		const target = targets > 1 ? (info[k] ?? 0) : 0;
		const catsOf = new Map<number, number[]>();
		const nodes = t.categories_nodes ?? [];
		for (let i = 0; i < nodes.length; i++) {
			const start = t.categories_segments?.[i] ?? 0;
			const size = t.categories_sizes?.[i] ?? 0;
			catsOf.set(
				nodes[i] as number,
				(t.categories ?? []).slice(start, start + size),
			);
		}
		const b = new TreeBuilder(targets);
		const n = t.left_children?.length ?? 0;
		for (const key of [
			"right_children",
			"split_indices",
			"split_conditions",
			"default_left",
		] as const)
			if (t[key]?.length !== n)
				refuse(
					where,
					`'${key}' has ${t[key]?.length ?? 0} entries for ${n} nodes`,
				);
		if (t.sum_hessian && t.sum_hessian.length !== n)
			refuse(
				where,
				`'sum_hessian' has ${t.sum_hessian.length} entries for ${n} nodes`,
			);
		for (let i = 0; i < n; i++) b.node(t.sum_hessian?.[i] ?? Number.NaN);
		for (let i = 0; i < n; i++) {
			const l = t.left_children[i] as number;
			const r = t.right_children[i] as number;
			if (l < 0) {
				b.addValue(i, target, t.split_conditions[i] as number);
				continue;
			}
			const f = t.split_indices[i] as number;
			if (!Number.isInteger(f) || f < 0 || f >= nFeatures)
				refuse(`${where} node ${i}`, `splits on feature ${f} of ${nFeatures}`);
			const missingLeft = Boolean(t.default_left[i]);
			if ((t.split_type?.[i] ?? 0) === 1) {
				// XGBoost sends categories in the set right, others (and invalid ones) left: IN is "left", so swap.
				const cats = catsOf.get(i);
				if (!cats)
					refuse(
						`${where} node ${i}`,
						"a categorical split without categories",
					);
				b.split(i, f, IN, 0, r, l, !missingLeft, cats);
			} else
				b.split(
					i,
					f,
					LT,
					Math.fround(t.split_conditions[i] as number),
					l,
					r,
					missingLeft,
				);
		}
		return b.build(where);
	});
	const names = learner.feature_names?.length
		? learner.feature_names
		: Array.from({ length: nFeatures }, (_, j) => `f${j}`);
	const classification =
		(link === "logistic" && objective.startsWith("binary:")) ||
		link === "softmax";
	const classes = classification ? Math.max(2, numClass) : 0;
	return {
		format: "xgboost",
		// XGBoost compares in single precision, whatever the input's type
		features: names.map((name, j) => ({
			name,
			input: 0,
			column: j,
			round32: true,
		})),
		targets,
		body: { kind: "ensemble", trees, aggregate: "sum" },
		base: Float64Array.from(base),
		link,
		head: classification
			? {
					kind: "classification",
					labels: Array.from({ length: classes }, (_, k) => k),
				}
			: { kind: "regression" },
		signature: floatInputSignature(
			nFeatures,
			"FP32",
			classification ? classes : 0,
			targets,
		),
	};
}
