// Reads PMML 4.x TreeModel, MiningModel (sum, average, majorityVote, modelChain), RegressionModel and
// GeneralRegressionModel into the tree representation, with fast-xml-parser. Each named input field is one [-1, 1]
// input; an element the representation cannot hold is refused by name.
import { XMLParser } from "fast-xml-parser";
import type { TensorSpec } from "../../protocol/types.ts";
import {
	EQ,
	type Feature,
	IN,
	LE,
	type Link,
	LT,
	type SplitMode,
	type Tree,
	TreeBuilder,
	type TreeModel,
} from "../ir.ts";
import { refuse } from "./common.ts";

/** An XML element: tag, attributes, child elements in document order. */
interface El {
	tag: string;
	attrs: Record<string, string>;
	children: El[];
}

type Ordered = Record<string, unknown> & { ":@"?: Record<string, string> };

function toEl(node: Ordered): El | undefined {
	const tag = Object.keys(node).find((k) => k !== ":@");
	if (!tag || tag.startsWith("#") || tag.startsWith("?")) return undefined;
	const kids = (node[tag] as Ordered[] | undefined) ?? [];
	return {
		tag,
		attrs: node[":@"] ?? {},
		children: kids.map(toEl).filter((e): e is El => e !== undefined),
	};
}

const child = (e: El, tag: string): El | undefined =>
	e.children.find((c) => c.tag === tag);
const kids = (e: El, tag: string): El[] =>
	e.children.filter((c) => c.tag === tag);

const MODEL_TAGS = new Set([
	"TreeModel",
	"MiningModel",
	"RegressionModel",
	"GeneralRegressionModel",
	"NeuralNetwork",
	"SupportVectorMachineModel",
	"NaiveBayesModel",
	"ClusteringModel",
	"RuleSetModel",
	"Scorecard",
	"NearestNeighborModel",
	"TextModel",
	"TimeSeriesModel",
	"BayesianNetworkModel",
	"GaussianProcessModel",
	"AssociationModel",
	"SequenceModel",
	"BaselineModel",
	"AnomalyDetectionModel",
]);

/** Scores summed per target: trees (leaf values per target), a linear part, and a constant. */
interface Part {
	targets: number;
	trees: Tree[];
	base: number[];
	coef?: Float64Array;
}

function num(v: string | undefined, where: string): number {
	const x = Number(v);
	if (v === undefined || v.trim() === "" || Number.isNaN(x))
		refuse(where, `'${v}' is not a number`);
	return x;
}

class Reader {
	readonly source: string;
	/** Input fields by name: feature index of the raw value, and whether PMML evaluates it as a float. */
	readonly fields = new Map<string, { feature: number; float: boolean }>();
	readonly features: Feature[] = [];
	readonly inputs: TensorSpec[] = [];
	/** Outputs of earlier segments of a modelChain, by OutputField name. */
	readonly chained = new Map<string, Part>();
	#nf = 0;

	constructor(source: string) {
		this.source = source;
	}

	addInput(name: string, float: boolean): void {
		const i = this.inputs.length;
		this.inputs.push({ name, datatype: "FP64", shape: [-1, 1] });
		this.features.push({
			name,
			input: i,
			column: 0,
			...(float ? { round32: true } : {}),
		});
		this.fields.set(name, { feature: this.features.length - 1, float });
	}

	/** Feature index of a one-hot indicator `field == value`, added on first use. */
	oneHot(field: string, value: string, where: string): number {
		const f = this.fieldOf(field, where);
		const base = this.features[f.feature] as Feature;
		const v = Number(value);
		if (Number.isNaN(v))
			refuse(
				where,
				`category '${value}' of '${field}' is not numeric (numeric categories are supported)`,
			);
		const name = `${field}=${value}`;
		const at = this.features.findIndex((x) => x.name === name);
		if (at >= 0) return at;
		this.features.push({ name, input: base.input, column: 0, equals: v });
		return this.features.length - 1;
	}

	fieldOf(name: string, where: string): { feature: number; float: boolean } {
		const f = this.fields.get(name);
		if (!f)
			refuse(
				where,
				`field '${name}' is not an input field of the model (derived fields are not supported)`,
			);
		return f;
	}

	get nf(): number {
		return Math.max(this.#nf, this.features.length);
	}

	freeze(): void {
		this.#nf = this.features.length;
	}
}

/** Widens a part's trees/coefficients to `n` features (one-hot features added after it was read). */
function widen(p: Part, from: number, to: number): Part {
	if (!p.coef || from === to) return p;
	const c = new Float64Array(p.targets * to);
	for (let t = 0; t < p.targets; t++)
		for (let j = 0; j < from; j++)
			c[t * to + j] = p.coef[t * from + j] as number;
	return { ...p, coef: c };
}

function scalePart(p: Part, k: number, add = 0): Part {
	return {
		targets: p.targets,
		trees: p.trees.map((t) => ({ ...t, value: t.value.map((v) => v * k) })),
		base: p.base.map((b) => b * k + add),
		...(p.coef ? { coef: p.coef.map((c) => c * k) } : {}),
	};
}

/** A one-target part moved to target `k` of `K`. */
function retarget(p: Part, k: number, K: number, nf: number): Part {
	if (p.targets !== 1)
		refuse(
			"modelChain",
			"a segment with several outputs feeding the final model",
		);
	const trees = p.trees.map((t) => {
		const value = new Float64Array(t.feature.length * K);
		for (let n = 0; n < t.feature.length; n++)
			value[n * K + k] = t.value[n] as number;
		return { ...t, value };
	});
	const base = new Array<number>(K).fill(0);
	base[k] = p.base[0] as number;
	let coef: Float64Array | undefined;
	if (p.coef) {
		coef = new Float64Array(K * nf);
		for (let j = 0; j < nf; j++) coef[k * nf + j] = p.coef[j] ?? 0;
	}
	return { targets: K, trees, base, ...(coef ? { coef } : {}) };
}

function merge(parts: Part[], targets: number, nf: number): Part {
	const base = new Array<number>(targets).fill(0);
	let coef: Float64Array | undefined;
	const trees: Tree[] = [];
	for (const p of parts) {
		if (p.targets !== targets)
			refuse("Segmentation", "segments with different numbers of outputs");
		p.base.forEach((b, t) => {
			base[t] = (base[t] as number) + b;
		});
		trees.push(...p.trees);
		if (p.coef) {
			coef ??= new Float64Array(targets * nf);
			const w = p.coef.length / targets;
			for (let t = 0; t < targets; t++)
				for (let j = 0; j < w; j++)
					coef[t * nf + j] =
						(coef[t * nf + j] as number) + (p.coef[t * w + j] as number);
		}
	}
	return { targets, trees, base, ...(coef ? { coef } : {}) };
}

/** Class labels of the target field (numeric values as given; others by position). */
function classesOf(
	dict: Map<string, El>,
	target: string | undefined,
	where: string,
): string[] {
	const f = target ? dict.get(target) : undefined;
	const values = f ? kids(f, "Value").map((v) => v.attrs.value ?? "") : [];
	if (values.length < 2)
		refuse(
			where,
			`the target field '${target}' lists ${values.length} categories`,
		);
	return values;
}

interface Ctx {
	r: Reader;
	dict: Map<string, El>;
	classes: string[] | undefined;
}

function targetsRescale(model: El, p: Part, where: string): Part {
	const t = child(model, "Targets");
	if (!t) return p;
	const target = kids(t, "Target");
	if (target.length !== 1)
		refuse(`${where} Targets`, `${target.length} Target elements`);
	const a = (target[0] as El).attrs;
	if (a.castInteger || a.min || a.max)
		refuse(`${where} Target`, "castInteger/min/max are not supported");
	return scalePart(
		p,
		a.rescaleFactor ? num(a.rescaleFactor, where) : 1,
		a.rescaleConstant ? num(a.rescaleConstant, where) : 0,
	);
}

function readTree(model: El, ctx: Ctx, where: string): Part {
	const classify = model.attrs.functionName === "classification";
	const classes = ctx.classes;
	if (classify && !classes)
		refuse(where, "a classification tree without class categories");
	const K = classify ? (classes as string[]).length : 1;
	const missing = model.attrs.missingValueStrategy ?? "none";
	if (
		!["none", "nullPrediction", "lastPrediction", "defaultChild"].includes(
			missing,
		)
	)
		refuse(
			`${where} missingValueStrategy="${missing}"`,
			"not supported (none, nullPrediction, lastPrediction, defaultChild are)",
		);
	const noTrue = model.attrs.noTrueChildStrategy ?? "returnNullPrediction";
	const b = new TreeBuilder(K);
	const root = child(model, "Node");
	if (!root) refuse(where, "a TreeModel without a Node");
	const leafValues = (node: El): number[] => {
		if (!classify) {
			const s = node.attrs.score;
			return [s === undefined ? Number.NaN : num(s, `${where} Node score`)];
		}
		const dist = kids(node, "ScoreDistribution");
		const out = new Array<number>(K).fill(0);
		if (dist.length === 0) {
			const k = (classes as string[]).indexOf(node.attrs.score ?? "");
			if (k < 0) return out.fill(Number.NaN);
			out[k] = 1;
			return out;
		}
		const total = dist.reduce(
			(s, d) => s + Number(d.attrs.recordCount ?? 0),
			0,
		);
		for (const d of dist) {
			const k = (classes as string[]).indexOf(d.attrs.value ?? "");
			if (k < 0)
				refuse(
					`${where} ScoreDistribution`,
					`class '${d.attrs.value}' is not a target category`,
				);
			out[k] =
				d.attrs.probability !== undefined
					? num(d.attrs.probability, where)
					: Number(d.attrs.recordCount ?? 0) / total;
		}
		return out;
	};
	const leaf = (values: number[]): number => {
		const id = b.node();
		values.forEach((v, t) => {
			b.addValue(id, t, v);
		});
		return id;
	};
	const nanLeaf = () => leaf(new Array<number>(K).fill(Number.NaN));
	interface Test {
		feature: number;
		mode: SplitMode;
		threshold: number;
		swap: boolean;
		cats?: number[];
	}
	const predicate = (node: El): Test | boolean => {
		const p = node.children.find(
			(c) =>
				c.tag !== "Node" &&
				c.tag !== "ScoreDistribution" &&
				c.tag !== "Extension" &&
				c.tag !== "Partition",
		);
		if (!p) refuse(`${where} Node`, "a Node without a predicate");
		if (p.tag === "True") return true;
		if (p.tag === "False") return false;
		const pw = `${where} ${p.tag} on '${p.attrs.field}'`;
		if (p.tag === "SimplePredicate") {
			const f = ctx.r.fieldOf(p.attrs.field ?? "", pw);
			const op = p.attrs.operator ?? "";
			let t = num(p.attrs.value, pw);
			if (f.float) t = Math.fround(t);
			const ops: Record<string, [SplitMode, boolean]> = {
				lessOrEqual: [LE, false],
				lessThan: [LT, false],
				greaterThan: [LE, true],
				greaterOrEqual: [LT, true],
				equal: [EQ, false],
				notEqual: [EQ, true],
			};
			const m = ops[op];
			if (!m) refuse(pw, `operator '${op}' is not supported`);
			return { feature: f.feature, mode: m[0], threshold: t, swap: m[1] };
		}
		if (p.tag === "SimpleSetPredicate") {
			const f = ctx.r.fieldOf(p.attrs.field ?? "", pw);
			const arr = child(p, "Array");
			const values = (arr?.attrs["#text"] ?? "")
				.trim()
				.split(/\s+/)
				.filter((s) => s !== "")
				.map((s) => num(s.replace(/^"|"$/g, ""), pw));
			return {
				feature: f.feature,
				mode: IN,
				threshold: 0,
				swap: p.attrs.booleanOperator === "isNotIn",
				cats: values,
			};
		}
		return refuse(
			pw,
			`predicate ${p.tag} is not supported (True, False, SimplePredicate, SimpleSetPredicate are)`,
		);
	};
	const complement = (a: Test, c: Test | boolean): boolean =>
		c === true ||
		(typeof c === "object" &&
			c.feature === a.feature &&
			c.mode === a.mode &&
			c.threshold === a.threshold &&
			c.swap !== a.swap &&
			a.mode !== IN);
	// A node: its children are tried in order; the first whose predicate holds is taken, none: the node's own score.
	const build = (node: El): number => {
		const children = kids(node, "Node");
		const own = leafValues(node);
		if (children.length === 0) return leaf(own);
		const defaultChild = node.attrs.defaultChild;
		const chain = (i: number): number => {
			if (i >= children.length)
				return noTrue === "returnLastPrediction" ? leaf(own) : nanLeaf();
			const c = children[i] as El;
			const p = predicate(c);
			if (p === false) return chain(i + 1);
			if (p === true) return build(c);
			// missing: per strategy, a guard node sends NaN to a null (or the last) prediction before the test
			let guard = -1;
			if (missing === "nullPrediction" || missing === "lastPrediction")
				guard = b.node();
			const id = b.node();
			const last =
				i === children.length - 2 &&
				complement(p, predicate(children[i + 1] as El));
			const yes = build(c);
			const no = last ? build(children[i + 1] as El) : chain(i + 1);
			const toChild =
				missing === "defaultChild" &&
				defaultChild !== undefined &&
				c.attrs.id === defaultChild;
			// "left when the test holds": a swapped test holds when the PMML predicate does not
			if (p.swap)
				b.split(id, p.feature, p.mode, p.threshold, no, yes, !toChild, p.cats);
			else
				b.split(id, p.feature, p.mode, p.threshold, yes, no, toChild, p.cats);
			if (guard >= 0) {
				const miss = missing === "nullPrediction" ? nanLeaf() : leaf(own);
				b.split(
					guard,
					p.feature,
					LE,
					Number.POSITIVE_INFINITY,
					id,
					miss,
					false,
				);
			}
			return guard >= 0 ? guard : id;
		};
		return chain(0);
	};
	const p = predicate(root);
	if (p !== true)
		refuse(`${where} Node`, "the root Node's predicate must be True");
	build(root);
	return {
		targets: K,
		trees: [b.build(where)],
		base: new Array<number>(K).fill(0),
	};
}

function readRegression(
	model: El,
	ctx: Ctx,
	where: string,
): { part: Part; link: Link } {
	const classify = model.attrs.functionName === "classification";
	const norm = model.attrs.normalizationMethod ?? "none";
	const tables = kids(model, "RegressionTable");
	const r = ctx.r;
	const tableParts = (t: El, tw: string): Part => {
		const parts: Part[] = [];
		const coef = new Map<number, number>();
		for (const c of t.children) {
			const cw = `${tw} ${c.tag} '${c.attrs.name}'`;
			if (c.tag === "NumericPredictor") {
				if ((c.attrs.exponent ?? "1") !== "1")
					refuse(cw, "exponents other than 1 are not supported");
				const k = num(c.attrs.coefficient, cw);
				const chained = r.chained.get(c.attrs.name ?? "");
				if (chained) parts.push(scalePart(chained, k));
				else {
					const f = r.fieldOf(c.attrs.name ?? "", cw).feature;
					coef.set(f, (coef.get(f) ?? 0) + k);
				}
			} else if (c.tag === "CategoricalPredictor") {
				const f = r.oneHot(c.attrs.name ?? "", c.attrs.value ?? "", cw);
				coef.set(f, (coef.get(f) ?? 0) + num(c.attrs.coefficient, cw));
			} else if (c.tag !== "Extension")
				refuse(
					cw,
					"not supported (NumericPredictor and CategoricalPredictor are)",
				);
		}
		const nf = r.nf;
		const lin = new Float64Array(nf);
		for (const [f, k] of coef) lin[f] = k;
		parts.push({
			targets: 1,
			trees: [],
			base: [num(t.attrs.intercept ?? "0", tw)],
			...(coef.size ? { coef: lin } : {}),
		});
		return merge(
			parts.map((p) => widen(p, p.coef ? p.coef.length : nf, nf)),
			1,
			nf,
		);
	};
	if (!classify) {
		if (tables.length !== 1)
			refuse(where, `a regression with ${tables.length} RegressionTables`);
		if (norm !== "none")
			refuse(where, `normalizationMethod '${norm}' for a regression`);
		return {
			part: targetsRescale(
				model,
				tableParts(tables[0] as El, `${where} RegressionTable`),
				where,
			),
			link: "identity",
		};
	}
	const classes = ctx.classes as string[];
	const byCat = new Map(tables.map((t) => [t.attrs.targetCategory ?? "", t]));
	const K = classes.length;
	if (K === 2 && (norm === "logit" || norm === "none")) {
		// binary: the second class's table scores it; the first class's table is empty (intercept 0)
		const pos = byCat.get(classes[1] as string);
		const negT = byCat.get(classes[0] as string);
		if (
			!pos ||
			(negT &&
				(negT.children.length > 0 || Number(negT.attrs.intercept ?? 0) !== 0))
		)
			refuse(
				where,
				"a binary RegressionModel whose first class's table is not empty",
			);
		if (norm !== "logit")
			refuse(where, "a binary classifier without logit normalization");
		return {
			part: tableParts(pos, `${where} RegressionTable`),
			link: "logistic",
		};
	}
	if (norm !== "softmax")
		refuse(
			where,
			`normalizationMethod '${norm}' for ${K} classes (softmax is supported)`,
		);
	const nf = r.nf;
	const parts = classes.map((c, k) => {
		const t = byCat.get(c);
		if (!t) refuse(where, `no RegressionTable for class '${c}'`);
		return retarget(
			tableParts(t, `${where} RegressionTable[${c}]`),
			k,
			K,
			r.nf,
		);
	});
	return {
		part: merge(
			parts.map((p) => widen(p, p.coef ? p.coef.length / K : nf, r.nf)),
			K,
			r.nf,
		),
		link: "softmax",
	};
}

/** GeneralRegressionModel link functions the representation holds: the inverse link applied to the linear predictor. */
const GLM_LINKS: Record<string, Link> = {
	identity: "identity",
	log: "exp",
	logit: "logistic",
};

/**
 * GeneralRegressionModel: regression, generalLinear, generalizedLinear (identity, log, logit links) and
 * multinomialLogistic, read into a linear part. Each Parameter's term is one PPMatrix cell: a covariate (exponent 1)
 * or a factor level (one-hot); a Parameter without cells is the intercept. Offsets (offsetValue, offsetVariable)
 * join the linear predictor. Interactions, exponents other than 1, trials and cumulative models are refused by name.
 */
function readGeneral(
	model: El,
	ctx: Ctx,
	where: string,
): { part: Part; link: Link } {
	const r = ctx.r;
	const a = model.attrs;
	const type = a.modelType ?? "";
	const classify = a.functionName === "classification";
	const TYPES = [
		"regression",
		"generalLinear",
		"generalizedLinear",
		"multinomialLogistic",
	];
	if (!TYPES.includes(type))
		refuse(
			`${where} modelType="${type}"`,
			`not supported (${TYPES.join(", ")} are)`,
		);
	for (const attr of ["trialsValue", "trialsVariable"])
		if (a[attr] !== undefined)
			refuse(
				`${where} ${attr}`,
				"binomial trials are not supported (the model must predict a probability or a mean per row)",
			);
	let inverse: Link = "identity";
	if (type === "generalizedLinear") {
		const lf = a.linkFunction ?? "";
		const l = GLM_LINKS[lf];
		if (!l)
			refuse(
				`${where} linkFunction="${lf}"`,
				`not supported (${Object.keys(GLM_LINKS).join(", ")} are)`,
			);
		inverse = l;
	}
	if (classify !== (type === "multinomialLogistic" || inverse === "logistic"))
		refuse(
			`${where} modelType="${type}"${a.linkFunction ? ` linkFunction="${a.linkFunction}"` : ""}`,
			`not supported for functionName="${a.functionName}" (classification needs multinomialLogistic or a logit link)`,
		);
	if (!classify && child(model, "Targets") && inverse !== "identity")
		refuse(
			`${where} Targets`,
			"rescaling the output of a non-identity link is not supported",
		);
	const params = new Set(
		kids(
			child(model, "ParameterList") ?? { tag: "", attrs: {}, children: [] },
			"Parameter",
		).map((p) => p.attrs.name ?? ""),
	);
	const predictors = (list: string) => {
		const out = new Set<string>();
		for (const p of kids(
			child(model, list) ?? { tag: "", attrs: {}, children: [] },
			"Predictor",
		)) {
			if (p.attrs.contrastMatrixType !== undefined || p.children.length > 0)
				refuse(
					`${where} ${list} Predictor '${p.attrs.name}'`,
					"contrast matrices and category lists are not supported",
				);
			out.add(p.attrs.name ?? "");
		}
		return out;
	};
	const factors = predictors("FactorList");
	const covariates = predictors("CovariateList");
	// The feature of each parameter's term (-1: the intercept, a constant 1).
	const cells = new Map<string, El[]>();
	for (const c of kids(
		child(model, "PPMatrix") ?? { tag: "", attrs: {}, children: [] },
		"PPCell",
	)) {
		const p = c.attrs.parameterName ?? "";
		cells.set(p, [...(cells.get(p) ?? []), c]);
	}
	const termOf = new Map<string, number>();
	for (const p of params) {
		const cs = cells.get(p) ?? [];
		const pw = `${where} PPMatrix parameter '${p}'`;
		if (cs.length === 0) termOf.set(p, -1);
		else if (cs.length > 1)
			refuse(
				pw,
				`an interaction of ${cs.map((c) => `'${c.attrs.predictorName}'`).join(" × ")} is not supported (one predictor per parameter is)`,
			);
		else {
			const c = cs[0] as El;
			const name = c.attrs.predictorName ?? "";
			const cw = `${pw} PPCell '${name}'`;
			if (factors.has(name))
				termOf.set(p, r.oneHot(name, c.attrs.value ?? "", cw));
			else if (covariates.has(name)) {
				if (num(c.attrs.value, cw) !== 1)
					refuse(
						cw,
						`exponent ${c.attrs.value} is not supported (exponent 1 is)`,
					);
				termOf.set(p, r.fieldOf(name, cw).feature);
			} else
				refuse(cw, "the predictor is in neither FactorList nor CovariateList");
		}
	}
	for (const p of cells.keys())
		if (!params.has(p))
			refuse(
				`${where} PPMatrix parameter '${p}'`,
				"is not in the ParameterList",
			);
	// Linear predictor per target category ("" for a regression): intercept and coefficients by feature.
	const eta = new Map<string, { base: number; coef: Map<number, number> }>();
	for (const c of kids(
		child(model, "ParamMatrix") ?? { tag: "", attrs: {}, children: [] },
		"PCell",
	)) {
		const p = c.attrs.parameterName ?? "";
		const cw = `${where} ParamMatrix PCell '${p}'`;
		const term = termOf.get(p);
		if (term === undefined)
			refuse(cw, "the parameter is not in the ParameterList");
		const cat = classify ? (c.attrs.targetCategory ?? "") : "";
		if (classify && !(ctx.classes as string[]).includes(cat))
			refuse(cw, `targetCategory '${cat}' is not a category of the target`);
		const e = eta.get(cat) ?? { base: 0, coef: new Map<number, number>() };
		eta.set(cat, e);
		const beta = num(c.attrs.beta, cw);
		if (term < 0) e.base += beta;
		else e.coef.set(term, (e.coef.get(term) ?? 0) + beta);
	}
	// Offsets: a constant, or a field's value with coefficient 1, added to every linear predictor that has cells.
	const offsetValue =
		a.offsetValue !== undefined
			? num(a.offsetValue, `${where} offsetValue`)
			: 0;
	const offsetField =
		a.offsetVariable !== undefined
			? r.fieldOf(a.offsetVariable, `${where} offsetVariable`).feature
			: -1;
	const nf = r.nf;
	const vector = (cat: string): { base: number; coef: Float64Array } => {
		const e = eta.get(cat);
		const coef = new Float64Array(nf);
		if (!e) return { base: 0, coef };
		for (const [f, k] of e.coef) coef[f] = k;
		if (offsetField >= 0) coef[offsetField] = (coef[offsetField] as number) + 1;
		return { base: e.base + offsetValue, coef };
	};
	if (!classify) {
		const v = vector("");
		const part: Part = { targets: 1, trees: [], base: [v.base], coef: v.coef };
		return {
			part: inverse === "identity" ? targetsRescale(model, part, where) : part,
			link: inverse,
		};
	}
	const classes = ctx.classes as string[];
	const K = classes.length;
	if (K === 2) {
		// P(second class) = logistic(η₁ − η₀); the reference category's η is 0 (it has no cells)
		const pos = vector(classes[1] as string);
		const neg = vector(classes[0] as string);
		return {
			part: {
				targets: 1,
				trees: [],
				base: [pos.base - neg.base],
				coef: pos.coef.map((c, j) => c - (neg.coef[j] as number)),
			},
			link: "logistic",
		};
	}
	if (type !== "multinomialLogistic")
		refuse(
			where,
			`a ${type} model of ${K} classes (multinomialLogistic is supported)`,
		);
	const coef = new Float64Array(K * nf);
	const base = classes.map((c, k) => {
		const v = vector(c);
		coef.set(v.coef, k * nf);
		return v.base;
	});
	return { part: { targets: K, trees: [], base, coef }, link: "softmax" };
}

/** Reads one model element into summed scores and the link that turns them into outputs. */
function readModel(
	model: El,
	ctx: Ctx,
	where: string,
): { part: Part; link: Link } {
	const w = `${where} ${model.tag}`;
	switch (model.tag) {
		case "TreeModel":
			return {
				part: targetsRescale(model, readTree(model, ctx, w), w),
				link: "identity",
			};
		case "RegressionModel":
			return readRegression(model, ctx, w);
		case "MiningModel":
			return readMining(model, ctx, w);
		case "GeneralRegressionModel":
			return readGeneral(model, ctx, w);
		default:
			return refuse(
				w,
				"not supported (TreeModel, MiningModel, RegressionModel, GeneralRegressionModel are)",
			);
	}
}

function readMining(
	model: El,
	ctx: Ctx,
	where: string,
): { part: Part; link: Link } {
	const seg = child(model, "Segmentation");
	if (!seg) refuse(where, "a MiningModel without Segmentation");
	const method = seg.attrs.multipleModelMethod ?? "";
	const segments = kids(seg, "Segment");
	const inner = (s: El): El => {
		const m = s.children.find((c) => MODEL_TAGS.has(c.tag));
		if (!m) refuse(`${where} Segment ${s.attrs.id}`, "no model");
		if (!child(s, "True"))
			refuse(
				`${where} Segment ${s.attrs.id}`,
				"a segment predicate other than True",
			);
		return m;
	};
	const nf = () => ctx.r.nf;
	if (method === "sum" || method === "average") {
		const parts = segments.map((s) => {
			const { part, link } = readModel(
				inner(s),
				ctx,
				`${where} Segment ${s.attrs.id}`,
			);
			if (link !== "identity")
				refuse(
					`${where} Segment ${s.attrs.id}`,
					`a ${method} over normalized outputs`,
				);
			return part;
		});
		const K = parts[0]?.targets ?? 1;
		let part = merge(parts, K, nf());
		if (method === "average")
			part = scalePart(part, 1 / Math.max(1, parts.length));
		return { part: targetsRescale(model, part, where), link: "identity" };
	}
	if (method === "majorityVote") {
		const parts = segments.map((s) => {
			const { part } = readModel(
				inner(s),
				ctx,
				`${where} Segment ${s.attrs.id}`,
			);
			// each tree votes for its most probable class
			const K = part.targets;
			for (const t of part.trees)
				for (let n = 0; n < t.feature.length; n++) {
					if ((t.feature[n] as number) >= 0) continue;
					let best = 0;
					for (let k = 1; k < K; k++)
						if (
							(t.value[n * K + k] as number) > (t.value[n * K + best] as number)
						)
							best = k;
					for (let k = 0; k < K; k++) t.value[n * K + k] = k === best ? 1 : 0;
				}
			return part;
		});
		return {
			part: scalePart(
				merge(parts, parts[0]?.targets ?? 1, nf()),
				1 / Math.max(1, parts.length),
			),
			link: "identity",
		};
	}
	if (method === "modelChain") {
		let last: { part: Part; link: Link } | undefined;
		segments.forEach((s, i) => {
			const m = inner(s);
			const res = readModel(m, ctx, `${where} Segment ${s.attrs.id}`);
			if (i === segments.length - 1) {
				last = res;
				return;
			}
			const outs = kids(
				child(m, "Output") ?? { tag: "", attrs: {}, children: [] },
				"OutputField",
			);
			if (outs.length !== 1 || res.link !== "identity")
				refuse(
					`${where} Segment ${s.attrs.id}`,
					"a chained segment must output one raw value (OutputField)",
				);
			ctx.r.chained.set((outs[0] as El).attrs.name ?? "", res.part);
		});
		if (!last) refuse(where, "an empty modelChain");
		return last;
	}
	return refuse(
		`${where} Segmentation multipleModelMethod="${method}"`,
		"not supported (sum, average, majorityVote, modelChain are)",
	);
}

/** Parses PMML text; `source` names the file in errors. */
export function readPmml(text: string, source: string): TreeModel {
	let doc: Ordered[];
	try {
		doc = new XMLParser({
			preserveOrder: true,
			ignoreAttributes: false,
			attributeNamePrefix: "",
			parseAttributeValue: false,
			parseTagValue: false,
			processEntities: false,
			textNodeName: "#text",
		}).parse(text) as Ordered[];
	} catch (err) {
		return refuse(source, `not well-formed XML: ${(err as Error).message}`);
	}
	const root = doc.map(toEl).find((e) => e?.tag === "PMML");
	if (!root) refuse(source, "no <PMML> root element: not a PMML document");
	// Array text content: preserveOrder keeps it as a #text child, which toEl drops; read it back here.
	const fillArrays = (node: Ordered[], el: El[]): void => {
		let k = 0;
		for (const n of node) {
			const tag = Object.keys(n).find((x) => x !== ":@");
			if (!tag || tag.startsWith("#") || tag.startsWith("?")) continue;
			const e = el[k++] as El;
			const ch = (n[tag] as Ordered[]) ?? [];
			if (tag === "Array")
				e.attrs["#text"] = ch.map((c) => String(c["#text"] ?? "")).join(" ");
			else fillArrays(ch, e.children);
		}
	};
	fillArrays(doc, [root]);
	const dd = child(root, "DataDictionary");
	const dict = new Map(
		(dd ? kids(dd, "DataField") : []).map((f) => [f.attrs.name ?? "", f]),
	);
	const model = root.children.find((c) => MODEL_TAGS.has(c.tag));
	if (!model) refuse(source, "no model element in the PMML document");
	if (child(root, "TransformationDictionary")?.children.length)
		refuse(
			`${source}: TransformationDictionary`,
			"derived fields are not supported",
		);
	if (child(model, "LocalTransformations")?.children.length)
		refuse(
			`${source}: ${model.tag} LocalTransformations`,
			"derived fields are not supported",
		);
	const schema = child(model, "MiningSchema");
	const r = new Reader(source);
	let target: string | undefined;
	for (const f of schema ? kids(schema, "MiningField") : []) {
		const name = f.attrs.name ?? "";
		const usage = f.attrs.usageType ?? "active";
		if (usage === "target" || usage === "predicted") target = name;
		else if (usage === "active") {
			const d = dict.get(name);
			if (!d)
				refuse(
					`${source}: MiningField '${name}'`,
					"is not in the DataDictionary",
				);
			if (d.attrs.optype === "categorical" && d.attrs.dataType === "string")
				refuse(
					`${source}: DataField '${name}'`,
					"string fields are not supported (numeric fields are)",
				);
			if (
				f.attrs.missingValueReplacement !== undefined ||
				f.attrs.invalidValueTreatment === "asMissing"
			)
				refuse(
					`${source}: MiningField '${name}'`,
					"missingValueReplacement/invalidValueTreatment are not supported",
				);
			r.addInput(name, d.attrs.dataType === "float");
		}
	}
	const classify = model.attrs.functionName === "classification";
	const classes = classify
		? classesOf(dict, target, `${source}: ${model.tag}`)
		: undefined;
	const { part, link } = readModel(model, { r, dict, classes }, source);
	const nf = r.features.length;
	const targets = part.targets;
	const K = classes?.length ?? 0;
	const labels = (classes ?? []).map((c, k) =>
		Number.isInteger(Number(c)) ? Number(c) : k,
	);
	const body: TreeModel["body"] =
		part.trees.length > 0
			? { kind: "ensemble", trees: part.trees, aggregate: "sum" }
			: {
					kind: "linear",
					coef:
						widen(part, (part.coef?.length ?? 0) / targets, nf).coef ??
						new Float64Array(targets * nf),
				};
	if (part.trees.length > 0 && part.coef)
		refuse(source, "a model mixing trees and linear terms");
	return {
		format: "pmml",
		features: r.features,
		targets,
		body,
		base: Float64Array.from(part.base),
		link,
		head: classify
			? { kind: "classification", labels }
			: { kind: "regression" },
		signature: {
			inputs: r.inputs,
			outputs: classify
				? [
						{ name: "label", datatype: "INT64", shape: [-1] },
						{ name: "probabilities", datatype: "FP32", shape: [-1, K] },
					]
				: [{ name: "variable", datatype: "FP32", shape: [-1, targets] }],
		},
	};
}
