// Reads ONNX-ML tree ensembles and linear models (with simple per-column preprocessing in front) into the tree
// representation. The graph is walked symbolically: each tensor is a list of column expressions (Feature) until the
// one estimator node, whose outputs become the model's label and scores.
import protobuf from "protobufjs";
import type { Datatype } from "../../protocol/datatypes.ts";
import { ONNX_PROTO } from "../../protocol/onnx-proto.ts";
import type { Signature, TensorSpec } from "../../protocol/types.ts";
import {
	EQ,
	type Feature,
	ISIN,
	LE,
	type Link,
	LT,
	type SplitMode,
	type Tree,
	TreeBuilder,
	type TreeModel,
} from "../ir.ts";
import { checkTargets, refuse } from "./common.ts";

interface TensorMsg {
	dims?: number[];
	data_type?: number;
	float_data?: number[];
	int32_data?: number[];
	int64_data?: number[];
	name?: string;
	raw_data?: Uint8Array;
	double_data?: number[];
}
interface AttrMsg {
	name: string;
	f?: number;
	i?: number;
	s?: Uint8Array;
	t?: TensorMsg;
	floats?: number[];
	ints?: number[];
	strings?: Uint8Array[];
}
interface NodeMsg {
	input?: string[];
	output?: string[];
	name?: string;
	op_type?: string;
	attribute?: AttrMsg[];
	domain?: string;
}
interface ValueInfo {
	name?: string;
	type?: {
		tensor_type?: {
			elem_type?: number;
			shape?: { dim?: { dim_value?: number; dim_param?: string }[] };
		};
	};
}
interface ModelMsg {
	graph?: {
		node?: NodeMsg[];
		initializer?: TensorMsg[];
		input?: ValueInfo[];
		output?: ValueInfo[];
	};
}

/** ONNX TensorProto.DataType → OIP datatype. */
const ELEM: Record<number, Datatype> = {
	1: "FP32",
	2: "UINT8",
	3: "INT8",
	4: "UINT16",
	5: "INT16",
	6: "INT32",
	7: "INT64",
	8: "BYTES",
	9: "BOOL",
	10: "FP16",
	11: "FP64",
	12: "UINT32",
	13: "UINT64",
};

let modelType: protobuf.Type | undefined;
function decode(bytes: Uint8Array, source: string): ModelMsg {
	modelType ??= protobuf
		.parse(ONNX_PROTO, { keepCase: true })
		.root.lookupType("onnx.ModelProto");
	try {
		return modelType.toObject(modelType.decode(bytes), {
			longs: Number,
			arrays: true,
		}) as ModelMsg;
	} catch (err) {
		return refuse(source, `not an ONNX model (${(err as Error).message})`);
	}
}

const text = (b: Uint8Array | undefined): string =>
	b ? new TextDecoder().decode(b) : "";

/** Numbers of a constant tensor (float, double, int32, int64; raw or typed fields). */
function tensorNumbers(t: TensorMsg): number[] {
	const raw = t.raw_data;
	if (raw && raw.byteLength > 0) {
		const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
		const out: number[] = [];
		switch (t.data_type) {
			case 1:
				for (let i = 0; i + 4 <= raw.byteLength; i += 4)
					out.push(view.getFloat32(i, true));
				return out;
			case 11:
				for (let i = 0; i + 8 <= raw.byteLength; i += 8)
					out.push(view.getFloat64(i, true));
				return out;
			case 6:
				for (let i = 0; i + 4 <= raw.byteLength; i += 4)
					out.push(view.getInt32(i, true));
				return out;
			case 7:
				for (let i = 0; i + 8 <= raw.byteLength; i += 8)
					out.push(Number(view.getBigInt64(i, true)));
				return out;
			case 2:
				for (let i = 0; i < raw.byteLength; i++) out.push(view.getUint8(i));
				return out;
			default:
				return [];
		}
	}
	return [
		...(t.float_data ?? []),
		...(t.double_data ?? []),
		...(t.int32_data ?? []),
		...(t.int64_data ?? []),
	];
}

class Attrs {
	readonly #m: Map<string, AttrMsg>;
	readonly #where: string;
	constructor(node: NodeMsg, where: string) {
		this.#m = new Map((node.attribute ?? []).map((a) => [a.name, a]));
		this.#where = where;
	}
	has(name: string): boolean {
		return this.#m.has(name);
	}
	int(name: string, dflt?: number): number {
		const a = this.#m.get(name);
		if (a === undefined) {
			if (dflt === undefined)
				refuse(this.#where, `attribute '${name}' is missing`);
			return dflt;
		}
		return Number(a.i ?? 0);
	}
	str(name: string, dflt = ""): string {
		const a = this.#m.get(name);
		return a ? text(a.s) : dflt;
	}
	ints(name: string): number[] {
		return (this.#m.get(name)?.ints ?? []).map(Number);
	}
	/** `name` as floats, or `name_as_tensor` (ai.onnx.ml opset 3 doubles). */
	floats(name: string): number[] {
		const a = this.#m.get(name);
		if (a?.floats?.length) return a.floats;
		const t = this.#m.get(`${name}_as_tensor`)?.t ?? a?.t;
		return t ? tensorNumbers(t) : [];
	}
	strings(name: string): string[] {
		return (this.#m.get(name)?.strings ?? []).map(text);
	}
}

/** What a tensor of the graph is: columns of features, or an output of the estimator. */
type Value =
	| { kind: "columns"; columns: Feature[]; integer: boolean }
	| { kind: "label" }
	| { kind: "scores"; normalized: boolean };

interface Estimator {
	targets: number;
	body: TreeModel["body"];
	base: Float64Array;
	link: Link;
	head: TreeModel["head"];
}

const POST: Record<string, Link | undefined> = {
	NONE: "identity",
	LOGISTIC: "logistic",
	SOFTMAX: "softmax",
};

function postTransform(a: Attrs, where: string): Link {
	const p = a.str("post_transform", "NONE");
	const link = POST[p];
	if (!link)
		refuse(
			where,
			`post_transform ${p} is not supported (NONE, LOGISTIC, SOFTMAX are)`,
		);
	return link;
}

/** Builds trees from the v1/v3 TreeEnsemble attributes; `leaf` lists (tree, node, target, weight). */
function buildTrees(
	a: Attrs,
	where: string,
	nFeatures: number,
	targets: number,
	leaf: { tree: number[]; node: number[]; target: number[]; weight: number[] },
): Tree[] {
	const treeIds = a.ints("nodes_treeids");
	const nodeIds = a.ints("nodes_nodeids");
	const featureIds = a.ints("nodes_featureids");
	const values = a.floats("nodes_values");
	const modes = a.strings("nodes_modes");
	const trueIds = a.ints("nodes_truenodeids");
	const falseIds = a.ints("nodes_falsenodeids");
	const tracks = a.ints("nodes_missing_value_tracks_true");
	const n = treeIds.length;
	if (
		[nodeIds, featureIds, values, modes, trueIds, falseIds].some(
			(x) => x.length !== n,
		)
	)
		refuse(where, "the nodes_* attributes differ in length");
	const byTree = new Map<number, Map<number, number>>();
	for (let i = 0; i < n; i++) {
		const t = treeIds[i] as number;
		let m = byTree.get(t);
		if (!m) {
			m = new Map();
			byTree.set(t, m);
		}
		m.set(nodeIds[i] as number, i);
	}
	const leaves = new Map<string, [number, number][]>();
	for (let i = 0; i < leaf.tree.length; i++) {
		const key = `${leaf.tree[i]}/${leaf.node[i]}`;
		let l = leaves.get(key);
		if (!l) {
			l = [];
			leaves.set(key, l);
		}
		const target = leaf.target[i] as number;
		if (target < 0 || target >= targets)
			refuse(where, `a leaf weight for target ${target} of ${targets}`);
		l.push([target, leaf.weight[i] as number]);
	}
	const trees: Tree[] = [];
	for (const [treeId, nodes] of [...byTree].sort((x, y) => x[0] - y[0])) {
		const tw = `${where} tree ${treeId}`;
		const b = new TreeBuilder(targets);
		const referenced = new Set<number>();
		for (const i of nodes.values())
			if (modes[i] !== "LEAF") {
				referenced.add(trueIds[i] as number);
				referenced.add(falseIds[i] as number);
			}
		const roots = [...nodes.keys()].filter((id) => !referenced.has(id));
		if (roots.length !== 1) refuse(tw, `has ${roots.length} root nodes`);
		let visits = 0;
		const visit = (nodeId: number): number => {
			const i = nodes.get(nodeId);
			if (i === undefined)
				refuse(tw, `refers to node ${nodeId}, which it does not hold`);
			if (++visits > nodes.size) refuse(tw, "its node links form a cycle");
			const id = b.node();
			const mode = modes[i] as string;
			if (mode === "LEAF") {
				for (const [t, w] of leaves.get(`${treeId}/${nodeId}`) ?? [])
					b.addValue(id, t, w);
				return id;
			}
			const f = featureIds[i] as number;
			if (f < 0 || f >= nFeatures)
				refuse(`${tw} node ${nodeId}`, `feature ${f} of ${nFeatures}`);
			const tr = visit(trueIds[i] as number);
			const fa = visit(falseIds[i] as number);
			const th = values[i] as number;
			const tracksTrue = tracks[i] === 1;
			// Normalise to "left when the test holds": >, >= and != swap the children of <=, < and ==.
			let m: SplitMode;
			let swap = false;
			if (mode === "BRANCH_LEQ") m = LE;
			else if (mode === "BRANCH_LT") m = LT;
			else if (mode === "BRANCH_GTE") [m, swap] = [LT, true];
			else if (mode === "BRANCH_GT") [m, swap] = [LE, true];
			else if (mode === "BRANCH_EQ") m = EQ;
			else if (mode === "BRANCH_NEQ") [m, swap] = [EQ, true];
			else
				return refuse(`${tw} node ${nodeId}`, `mode ${mode} is not supported`);
			// A NaN goes to the true branch only when tracked (NEQ is true for NaN in onnxruntime).
			const nanTrue = tracksTrue || mode === "BRANCH_NEQ";
			if (swap) b.split(id, f, m, th, fa, tr, !nanTrue);
			else b.split(id, f, m, th, tr, fa, nanTrue);
			return id;
		};
		visit(roots[0] as number);
		trees.push(b.build(tw));
	}
	return trees;
}

function treeRegressor(a: Attrs, where: string, nFeatures: number): Estimator {
	const targets = checkTargets(a.int("n_targets", 1), `${where} n_targets`);
	const trees = buildTrees(a, where, nFeatures, targets, {
		tree: a.ints("target_treeids"),
		node: a.ints("target_nodeids"),
		target: a.ints("target_ids"),
		weight: a.floats("target_weights"),
	});
	const agg = a.str("aggregate_function", "SUM");
	if (agg !== "SUM" && agg !== "AVERAGE")
		refuse(
			where,
			`aggregate_function ${agg} is not supported (SUM, AVERAGE are)`,
		);
	const base = a.floats("base_values");
	return {
		targets,
		body: {
			kind: "ensemble",
			trees,
			aggregate: agg === "SUM" ? "sum" : "average",
		},
		base: Float64Array.from({ length: targets }, (_, t) => base[t] ?? 0),
		link: postTransform(a, where),
		head: { kind: "regression" },
	};
}

function classLabels(a: Attrs, where: string, attr: string): number[] {
	if (a.strings("classlabels_strings").length > 0)
		refuse(where, "string class labels are not supported (integer labels are)");
	const labels = a.ints(attr);
	checkTargets(labels.length, `${where} ${attr}`);
	if (labels.length < 2)
		refuse(where, `'${attr}' lists ${labels.length} classes`);
	return labels;
}

function treeClassifier(a: Attrs, where: string, nFeatures: number): Estimator {
	const labels = classLabels(a, where, "classlabels_int64s");
	const ids = a.ints("class_ids");
	// One weight column for two classes is onnxruntime's binary case: the score of class 1.
	const binary = labels.length === 2 && new Set(ids).size === 1;
	const targets = binary ? 1 : labels.length;
	const trees = buildTrees(a, where, nFeatures, targets, {
		tree: a.ints("class_treeids"),
		node: a.ints("class_nodeids"),
		target: binary ? ids.map(() => 0) : ids,
		weight: a.floats("class_weights"),
	});
	const base = a.floats("base_values");
	const link = postTransform(a, where);
	if (binary && link !== "logistic")
		refuse(
			where,
			`a binary classifier with one score column and post_transform ${a.str("post_transform", "NONE")}`,
		);
	return {
		targets,
		body: { kind: "ensemble", trees, aggregate: "sum" },
		base: Float64Array.from({ length: targets }, (_, t) => base[t] ?? 0),
		link,
		head: { kind: "classification", labels },
	};
}

function linearRegressor(
	a: Attrs,
	where: string,
	nFeatures: number,
): Estimator {
	const targets = checkTargets(a.int("targets", 1), `${where} targets`);
	const coef = a.floats("coefficients");
	if (coef.length !== targets * nFeatures)
		refuse(
			where,
			`${coef.length} coefficients for ${targets} targets × ${nFeatures} features`,
		);
	const b = a.floats("intercepts");
	return {
		targets,
		body: { kind: "linear", coef: Float64Array.from(coef) },
		base: Float64Array.from({ length: targets }, (_, t) => b[t] ?? 0),
		link: postTransform(a, where),
		head: { kind: "regression" },
	};
}

function linearClassifier(
	a: Attrs,
	where: string,
	nFeatures: number,
): Estimator {
	const labels = classLabels(a, where, "classlabels_ints");
	const coef = a.floats("coefficients");
	const targets = coef.length / nFeatures;
	if (!(targets === labels.length || (targets === 1 && labels.length === 2)))
		refuse(
			where,
			`${coef.length} coefficients for ${labels.length} classes × ${nFeatures} features`,
		);
	const link = postTransform(a, where);
	if (targets === 1 && link !== "logistic")
		refuse(
			where,
			"a binary linear classifier without a LOGISTIC post_transform",
		);
	const b = a.floats("intercepts");
	return {
		targets,
		body: { kind: "linear", coef: Float64Array.from(coef) },
		base: Float64Array.from({ length: targets }, (_, t) => b[t] ?? 0),
		link,
		head: { kind: "classification", labels },
	};
}

/** ai.onnx.ml opset 5 TreeEnsemble: node and leaf arrays, split modes as a uint8 tensor, member sets. */
function treeEnsembleV5(a: Attrs, where: string, nFeatures: number): Estimator {
	const targets = checkTargets(a.int("n_targets"), `${where} n_targets`);
	const roots = a.ints("tree_roots");
	const feature = a.ints("nodes_featureids");
	const splits = a.floats("nodes_splits");
	const modes = a.floats("nodes_modes");
	const trueIds = a.ints("nodes_truenodeids");
	const trueLeaf = a.ints("nodes_trueleafs");
	const falseIds = a.ints("nodes_falsenodeids");
	const falseLeaf = a.ints("nodes_falseleafs");
	const tracks = a.ints("nodes_missing_value_tracks_true");
	const members = a.floats("membership_values");
	const leafTarget = a.ints("leaf_targetids");
	const leafWeight = a.floats("leaf_weights");
	const n = feature.length;
	if (
		[splits, modes, trueIds, trueLeaf, falseIds, falseLeaf].some(
			(x) => x.length !== n,
		)
	)
		refuse(where, "the nodes_* attributes differ in length");
	if (leafTarget.length !== leafWeight.length)
		refuse(where, "leaf_targetids and leaf_weights differ in length");
	// The member set of each BRANCH_MEMBER node, in node order, separated by NaN in membership_values.
	const sets = new Map<number, number[]>();
	let m = 0;
	for (let i = 0; i < n; i++) {
		if (modes[i] !== 6) continue;
		const set: number[] = [];
		while (m < members.length && !Number.isNaN(members[m]))
			set.push(members[m++] as number);
		m++;
		sets.set(i, set);
	}
	const trees = roots.map((root, k) => {
		const tw = `${where} tree ${k}`;
		const b = new TreeBuilder(targets);
		let visits = 0;
		const leaf = (j: number): number => {
			if (j < 0 || j >= leafWeight.length)
				refuse(tw, `leaf ${j} of ${leafWeight.length}`);
			const id = b.node();
			const t = leafTarget[j] as number;
			if (t < 0 || t >= targets)
				refuse(tw, `leaf ${j} writes target ${t} of ${targets}`);
			b.addValue(id, t, leafWeight[j] as number);
			return id;
		};
		const visit = (i: number): number => {
			if (i < 0 || i >= n) refuse(tw, `node ${i} of ${n}`);
			if (++visits > n) refuse(tw, "its node links form a cycle");
			const id = b.node();
			const f = feature[i] as number;
			if (f < 0 || f >= nFeatures)
				refuse(`${tw} node ${i}`, `feature ${f} of ${nFeatures}`);
			const tr = trueLeaf[i]
				? leaf(trueIds[i] as number)
				: visit(trueIds[i] as number);
			const fa = falseLeaf[i]
				? leaf(falseIds[i] as number)
				: visit(falseIds[i] as number);
			const mode = modes[i] as number;
			const th = splits[i] as number;
			// NaN != t holds, as in IEEE comparisons (onnxruntime sends it to the true branch)
			const nanTrue = tracks[i] === 1 || mode === 5;
			const table: [SplitMode, boolean][] = [
				[LE, false],
				[LT, false],
				[LT, true],
				[LE, true],
				[EQ, false],
				[EQ, true],
				[ISIN, false],
			];
			const op = table[mode];
			if (!op) refuse(`${tw} node ${i}`, `mode ${mode} is not supported`);
			const [sm, swap] = op;
			if (swap) b.split(id, f, sm, th, fa, tr, !nanTrue, sets.get(i));
			else b.split(id, f, sm, th, tr, fa, nanTrue, sets.get(i));
			return id;
		};
		visit(root);
		return b.build(tw);
	});
	const agg = a.int("aggregate_function", 1);
	if (agg !== 0 && agg !== 1)
		refuse(
			where,
			`aggregate_function ${agg} is not supported (AVERAGE, SUM are)`,
		);
	const post = a.int("post_transform", 0);
	const link =
		([undefined, "softmax", "logistic"] as const)[post] ??
		(post === 0 ? "identity" : undefined);
	if (!link)
		refuse(
			where,
			`post_transform ${post} is not supported (NONE, SOFTMAX, LOGISTIC are)`,
		);
	return {
		targets,
		body: { kind: "ensemble", trees, aggregate: agg === 1 ? "sum" : "average" },
		base: new Float64Array(targets),
		link,
		head: { kind: "regression" },
	};
}

const ESTIMATORS: Record<
	string,
	(a: Attrs, where: string, n: number) => Estimator
> = {
	TreeEnsembleRegressor: treeRegressor,
	TreeEnsembleClassifier: treeClassifier,
	LinearRegressor: linearRegressor,
	LinearClassifier: linearClassifier,
	TreeEnsemble: treeEnsembleV5,
};

function spec(v: ValueInfo, where: string): TensorSpec {
	const tt = v.type?.tensor_type;
	const datatype = ELEM[tt?.elem_type ?? 0];
	if (!datatype)
		refuse(
			`${where} '${v.name}'`,
			"is not a tensor of a supported element type",
		);
	return {
		name: v.name ?? "",
		datatype,
		shape: (tt?.shape?.dim ?? []).map((d) =>
			d.dim_value ? Number(d.dim_value) : -1,
		),
	};
}

/** Composes a Scaler step onto a column: ((x - o1)·s1 - o2)·s2 = (x - (o1 + o2/s1))·(s1·s2). */
function scaled(c: Feature, offset: number, scale: number): Feature {
	const s1 = c.scale ?? 1;
	const o1 = c.offset ?? 0;
	return { ...c, offset: o1 + offset / s1, scale: s1 * scale };
}

/** Reads an ONNX model holding one tree ensemble or linear estimator. */
export function readOnnx(bytes: Uint8Array, source: string): TreeModel {
	const graph = decode(bytes, source).graph;
	if (!graph?.node?.length) refuse(source, "an ONNX model without a graph");
	const initNames = new Set((graph.initializer ?? []).map((t) => t.name));
	const consts = new Map(
		(graph.initializer ?? []).map((t) => [t.name ?? "", t]),
	);
	const inputs = (graph.input ?? [])
		.filter((v) => !initNames.has(v.name))
		.map((v) => spec(v, `${source}: input`));
	const values = new Map<string, Value>();
	inputs.forEach((s, i) => {
		const width =
			s.shape.length >= 2 ? (s.shape[s.shape.length - 1] as number) : 1;
		if (width < 1 || s.shape.length > 2)
			refuse(
				`${source}: input '${s.name}'`,
				`shape [${s.shape}] (a [-1, n] tensor with fixed n is needed)`,
			);
		values.set(s.name, {
			kind: "columns",
			integer: s.datatype.includes("INT") || s.datatype === "BYTES",
			columns: Array.from({ length: width }, (_, c) => ({
				name: width === 1 ? s.name : `${s.name}[${c}]`,
				input: i,
				column: c,
			})),
		});
	});
	let est: (Estimator & { features: Feature[] }) | undefined;
	const cols = (name: string, where: string): Feature[] => {
		const v = values.get(name);
		if (v?.kind !== "columns")
			refuse(
				where,
				`input '${name}' is not a column tensor the reader can follow`,
			);
		return v.columns;
	};
	for (const node of graph.node) {
		const op = node.op_type ?? "";
		const where = `${source}: node '${node.name || op}' (${op})`;
		const a = new Attrs(node, where);
		const ins = node.input ?? [];
		const outs = node.output ?? [];
		const set = (v: Value, k = 0) => values.set(outs[k] ?? "", v);
		const make = ESTIMATORS[op];
		if (make) {
			if (est)
				refuse(
					where,
					"a second estimator (one tree ensemble or linear model per file)",
				);
			const features = cols(ins[0] ?? "", where);
			est = { ...make(a, where, features.length), features };
			if (op.endsWith("Classifier")) {
				set({ kind: "label" }, 0);
				set({ kind: "scores", normalized: false }, 1);
			} else set({ kind: "scores", normalized: false }, 0);
			continue;
		}
		switch (op) {
			case "Identity": {
				const v = values.get(ins[0] ?? "");
				if (!v) refuse(where, `input '${ins[0]}' is unknown`);
				set(v);
				break;
			}
			case "Cast": {
				const to = a.int("to");
				const v = values.get(ins[0] ?? "");
				if (v?.kind === "label" && to === 7) set(v);
				else if (
					v?.kind === "columns" &&
					(to === 1 || to === 11 || (to === 7 && v.integer))
				)
					set({ ...v, integer: to === 7 });
				else refuse(where, `a Cast to type ${to} the reader cannot fold`);
				break;
			}
			case "Concat": {
				const axis = a.int("axis", 1);
				if (axis !== 1 && axis !== -1)
					refuse(where, `axis ${axis} (1 is supported)`);
				const all = ins.map((n) => values.get(n));
				set({
					kind: "columns",
					integer: all.every((v) => v?.kind === "columns" && v.integer),
					columns: ins.flatMap((n) => cols(n, where)),
				});
				break;
			}
			case "Reshape": {
				const shape = tensorNumbers(consts.get(ins[1] ?? "") ?? {});
				const v = values.get(ins[0] ?? "");
				if (
					v?.kind !== "columns" ||
					shape.length !== 2 ||
					(shape[1] !== -1 && shape[1] !== v.columns.length)
				)
					refuse(where, `a Reshape to [${shape}] the reader cannot fold`);
				set(v);
				break;
			}
			case "Gather":
			case "ArrayFeatureExtractor": {
				const idx = tensorNumbers(consts.get(ins[1] ?? "") ?? {});
				const v = values.get(ins[0] ?? "");
				if (op === "Gather" && a.int("axis", 0) !== 1)
					refuse(where, "Gather on an axis other than 1");
				if (v?.kind !== "columns" || idx.length === 0)
					refuse(where, "column selection with non-constant indices");
				set({
					...v,
					columns: idx.map((k) => {
						const c = v.columns[k < 0 ? v.columns.length + k : k];
						if (!c) refuse(where, `index ${k} of ${v.columns.length} columns`);
						return c;
					}),
				});
				break;
			}
			case "Scaler": {
				const c = cols(ins[0] ?? "", where);
				const off = a.floats("offset");
				const sc = a.floats("scale");
				set({
					kind: "columns",
					integer: false,
					columns: c.map((f, j) => {
						const o = (off.length === 1 ? off[0] : off[j]) ?? 0;
						const s = (sc.length === 1 ? sc[0] : sc[j]) ?? 1;
						if (s === 0 && f.scale !== undefined)
							refuse(where, "a zero scale after another scale");
						return scaled(f, o, s);
					}),
				});
				break;
			}
			case "Imputer": {
				const c = cols(ins[0] ?? "", where);
				const fill = a.floats("imputed_value_floats");
				const when = a.has("replaced_value_float")
					? a.floats("replaced_value_float")[0]
					: undefined;
				set({
					kind: "columns",
					integer: false,
					columns: c.map((f, j) => {
						if (
							f.offset !== undefined ||
							f.equals !== undefined ||
							f.impute !== undefined
						)
							refuse(where, "an Imputer after scaling or encoding");
						const v = (fill.length === 1 ? fill[0] : fill[j]) ?? 0;
						return when === undefined || Number.isNaN(when)
							? { ...f, impute: v }
							: { ...f, impute: v, imputeWhen: when };
					}),
				});
				break;
			}
			case "OneHotEncoder": {
				const c = cols(ins[0] ?? "", where);
				const cats: (string | number)[] = a.strings("cats_strings").length
					? a.strings("cats_strings")
					: a.ints("cats_int64s");
				if (c.some((f) => f.equals !== undefined || f.offset !== undefined))
					refuse(where, "a OneHotEncoder on an encoded or scaled column");
				set({
					kind: "columns",
					integer: false,
					columns: c.flatMap((f) =>
						cats.map((cat) => ({
							...f,
							name: `${f.name}=${cat}`,
							equals: cat,
						})),
					),
				});
				break;
			}
			case "Normalizer": {
				const v = values.get(ins[0] ?? "");
				const norm = a.str("norm", "MAX");
				// L1 over probabilities that already sum to 1 (softmax, or averaged class shares) changes nothing.
				if (
					v?.kind === "scores" &&
					norm === "L1" &&
					est &&
					(est.link === "softmax" || est.targets === 1)
				)
					set({ kind: "scores", normalized: true });
				else
					refuse(
						where,
						`a Normalizer (${norm}) the reader cannot fold (only L1 over softmax probabilities)`,
					);
				break;
			}
			default:
				refuse(where, `operator ${op} is not supported by the trees runtime`);
		}
	}
	if (!est) refuse(source, "no TreeEnsemble or Linear estimator node");
	const outputs = (graph.output ?? []).map((v) => spec(v, `${source}: output`));
	for (const o of outputs) {
		const v = values.get(o.name);
		if (v?.kind !== "label" && v?.kind !== "scores")
			refuse(
				`${source}: output '${o.name}'`,
				"is not the estimator's label or scores",
			);
	}
	const signature: Signature = { inputs, outputs };
	return {
		format: "onnx",
		features: est.features,
		targets: est.targets,
		body: est.body,
		base: est.base,
		link: est.link,
		head: est.head,
		signature,
	};
}
