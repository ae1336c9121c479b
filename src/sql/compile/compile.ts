// Compiles a tree ensemble or linear model (the tree/linear representation) into plain SQL: a function or a view
// that a stock PostgreSQL, DuckDB, SQLite or BigQuery runs with no extension, answering as the trees runtime does.
//
// Shape of the query, innermost first (each stage one subquery, so nothing is computed twice):
//   inputs  — the columns (function parameters or table columns), NaN → NULL (missing, as in the runtime);
//   scores  — one raw score per target: base + Σ trees (CASE per tree) or base + Σ coef × feature;
//   linked  — the link: identity, logistic (stable form), softmax (minus the max), exp;
//   outputs — the bundle's outputs: `label` (first class of highest probability) and probabilities, or the value.
import type { Manifest } from "../../bundle/manifest.ts";
import { artifactBytes, type Bundle } from "../../bundle/types.ts";
import { effectiveFeatures } from "../../codec/table.ts";
import type { Datatype } from "../../protocol/datatypes.ts";
import { floatToHalf, halfToFloat } from "../../protocol/datatypes.ts";
import { MlshipError } from "../../protocol/errors.ts";
import {
	EQ,
	type Feature,
	goesLeft,
	IN,
	ISIN,
	LE,
	LT,
	type Tree,
	type TreeModel,
	treeDepth,
} from "../../trees/ir.ts";
import { readTreeModel } from "../../trees/read/index.ts";
import {
	complement,
	type Intervals,
	inCategories,
	intersect,
	MAX,
	MIN,
	union,
	where,
} from "./bounds.ts";
import { type Dialect, dialect, qualified } from "./dialect.ts";

/** Trees × nodes compiled by default; `maxNodes` raises it. */
export const DEFAULT_MAX_NODES = 100_000;
/** Trees summed in one parenthesised group: SQLite refuses expressions deeper than 1000. */
const SUM_GROUP = 100;
/** exp() of anything below this is 0 for the model, but PostgreSQL raises "underflow" on it. */
const EXP_FLOOR = -700;

export interface CompileOptions {
	dialect: string;
	/** Function or view name, dot-qualified allowed (`analytics.churn`). */
	name: string;
	/** A function of the input columns (default), or a view over `from`. */
	as?: "function" | "view";
	/** The table a view reads (dot-qualified allowed). */
	from?: string;
	/** Extra table columns a view carries through besides the model's inputs (an id, a timestamp). */
	keep?: readonly string[];
	/** Refuse models with more nodes than this (default DEFAULT_MAX_NODES). */
	maxNodes?: number;
}

/** One input column of the compiled SQL: a function parameter or a table column. */
export interface SqlColumn {
	name: string;
	/** "double" for numbers, "text" for strings (BYTES). */
	kind: "double" | "text";
}

export interface CompiledSql {
	/** The statement(s), ending in a semicolon and a newline. */
	sql: string;
	/** The query inside: the view's SELECT, or the function's body (a SELECT over its parameters). */
	query: string;
	columns: SqlColumn[];
	/** The outputs, in the bundle's order: scalar, array (JSON text in SQLite) or integer label. */
	outputs: { name: string; shape: "scalar" | "array" | "label" }[];
	/** The column each feature of the representation reads (by feature index), for tests and messages. */
	featureColumns: string[];
	trees: number;
	nodes: number;
	depth: number;
}

interface Column extends SqlColumn {
	input: number;
	column: number;
	datatype: Datatype;
	/** Internal name of its NaN-free value in the stages. */
	x: string;
}

/** How one feature of the representation is read from its column. */
type FeatureSql =
	| {
			kind: "indicator";
			col: Column;
			/** SQL test that the raw value equals the one-hot category. */
			test: string;
			/** Feature value when the test holds, and when it does not (or the value is missing). */
			on: number;
			off: number;
	  }
	| {
			kind: "numeric";
			col: Column;
			/** The runtime's value of a present raw double (input rounding, float32, scaling). */
			g: (x: number) => number;
			/** The value a missing input takes (imputed), or NaN. */
			missing: number;
			/** Raw values the runtime treats as missing (ONNX Imputer's replaced value). */
			asMissing: Intervals;
			/** SQL of the value, for linear terms. */
			expr: string;
	  };

function unsupported(why: string): never {
	throw new MlshipError("MLSHIP_UNSUPPORTED_MODEL", `sql compile: ${why}`);
}

function inputRounding(dt: Datatype): (x: number) => number {
	if (dt === "FP32") return Math.fround;
	if (dt === "FP16") return (x) => halfToFloat(floatToHalf(x));
	return (x) => x;
}

/** The columns the model reads, named as its table columns (the manifest's features). */
function columnsOf(
	model: TreeModel,
	manifest: Pick<Manifest, "signature" | "features">,
): Map<string, Column> {
	const names = new Map<string, string>();
	const next = new Map<string, number>();
	const only =
		manifest.signature.inputs.length === 1
			? manifest.signature.inputs[0]?.name
			: undefined;
	for (const f of effectiveFeatures(manifest)) {
		const input = f.input ?? only ?? f.name;
		const k = next.get(input) ?? 0;
		next.set(input, k + 1);
		names.set(`${input}\u0000${k}`, f.name);
	}
	const cols = new Map<string, Column>();
	for (const f of model.features) {
		// The file's input, as the manifest declares it (its datatype is what rows are encoded to).
		const own = model.signature.inputs[f.input];
		const spec = manifest.signature.inputs.find((i) => i.name === own?.name);
		if (!spec)
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`model input '${own?.name ?? f.input}' is missing from the manifest signature`,
			);
		const id = `${f.input}:${f.column}`;
		if (cols.has(id)) continue;
		const name =
			names.get(`${spec.name}\u0000${f.column}`) ??
			(f.column === 0 ? spec.name : `${spec.name}_${f.column}`);
		cols.set(id, {
			name,
			kind: spec.datatype === "BYTES" ? "text" : "double",
			input: manifest.signature.inputs.indexOf(spec),
			column: f.column,
			datatype: spec.datatype,
			x: `__mlship_x${cols.size}`,
		});
	}
	return new Map(
		[...cols.entries()].sort(
			(a, b) => a[1].input - b[1].input || a[1].column - b[1].column,
		),
	);
}

function featureSql(d: Dialect, f: Feature, col: Column): FeatureSql {
	const affine = (v: number) => {
		let r = v;
		if (f.offset !== undefined) r -= f.offset;
		if (f.scale !== undefined) r *= f.scale;
		return r;
	};
	const x = d.ident(col.x);
	if (f.equals !== undefined) {
		const textual = col.kind === "text" || typeof f.equals === "string";
		const test =
			col.kind === "text"
				? `${x} = ${d.str(String(f.equals))}`
				: textual
					? unsupported(
							`feature '${f.name}' compares the number column '${col.name}' with the string '${String(f.equals)}'`,
						)
					: `${x} = ${d.num(f.equals as number)}`;
		return { kind: "indicator", col, test, on: affine(1), off: affine(0) };
	}
	if (col.kind === "text")
		unsupported(
			`feature '${f.name}' reads the string column '${col.name}' as a number`,
		);
	const dt = inputRounding(col.datatype);
	const rr = f.round32 ? (v: number) => Math.fround(dt(v)) : dt;
	const g = (v: number) => affine(rr(v));
	const missing = f.impute !== undefined ? affine(f.impute) : Number.NaN;
	const asMissing =
		f.impute !== undefined && f.imputeWhen !== undefined
			? where(
					rr,
					(v) => v <= (f.imputeWhen as number),
					(v) => v >= (f.imputeWhen as number),
				)
			: [];
	// Linear terms: the value itself. Rounded to float32 where the database can; elsewhere the raw double (≤ 6e-8 relative).
	const rounds =
		col.datatype === "FP32" || col.datatype === "FP16" || f.round32;
	let e = rounds ? (d.round32(x) ?? x) : x;
	if (asMissing.length > 0)
		e = `CASE WHEN ${intervalsSql(d, x, asMissing)} THEN NULL ELSE ${e} END`;
	if (f.impute !== undefined) e = `COALESCE(${e}, ${d.num(f.impute)})`;
	if (f.offset !== undefined) e = `(${e} + ${d.num(-f.offset)})`;
	if (f.scale !== undefined) e = `(${e} * ${d.num(f.scale)})`;
	return { kind: "numeric", col, g, missing, asMissing, expr: e };
}

/** SQL that holds exactly when x lies in the intervals (x not NULL). */
function intervalsSql(d: Dialect, x: string, iv: Intervals): string {
	const parts = iv.map(([l, h]) => {
		if (l === MIN && h === MAX) return "TRUE";
		if (l === MIN) return `${x} <= ${d.num(h)}`;
		if (h === MAX) return `${x} >= ${d.num(l)}`;
		if (l === h) return `${x} = ${d.num(l)}`;
		return `${x} BETWEEN ${d.num(l)} AND ${d.num(h)}`;
	});
	if (parts.length === 0) return "FALSE";
	return parts.length === 1 ? (parts[0] as string) : `(${parts.join(" OR ")})`;
}

/** The raw values node `n` sends left (present values only). */
function leftSet(
	tree: Tree,
	n: number,
	f: FeatureSql & { kind: "numeric" },
): Intervals {
	const t = tree.threshold[n] as number;
	if (tree.mode[n] === IN) {
		const s = tree.catStart[n] as number;
		return inCategories(f.g, [
			...tree.cats.subarray(s, s + (tree.catLen[n] as number)),
		]);
	}
	const equal = (c: number) =>
		where(
			f.g,
			(v) => v <= c,
			(v) => v >= c,
		);
	switch (tree.mode[n]) {
		case EQ:
			return equal(t);
		case ISIN: {
			const s = tree.catStart[n] as number;
			return union(
				[...tree.cats.subarray(s, s + (tree.catLen[n] as number))].flatMap(
					equal,
				),
			);
		}
		case LT:
		case LE:
			return where(f.g, (v) => goesLeft(tree, n, v));
		default:
			return unsupported(
				`split mode ${tree.mode[n]} (node ${n}) has no SQL form yet`,
			);
	}
}

class Emitter {
	readonly d: Dialect;
	readonly features: FeatureSql[];
	nodes = 0;
	constructor(d: Dialect, features: FeatureSql[]) {
		this.d = d;
		this.features = features;
	}

	/** A CASE expression for target `t` of `tree` from node `n`. */
	tree(tree: Tree, n: number, t: number, T: number): string {
		const fi = tree.feature[n] as number;
		if (fi < 0) {
			const v = tree.value[n * T + t] as number;
			// A PMML leaf without a score (nullPrediction) makes the runtime's output NaN: SQL's is NULL.
			return Number.isNaN(v) ? `CAST(NULL AS ${this.d.double})` : this.d.num(v);
		}
		const L = () => this.tree(tree, tree.left[n] as number, t, T);
		const R = () => this.tree(tree, tree.right[n] as number, t, T);
		const f = this.features[fi];
		if (!f)
			return unsupported(
				`a tree node reads feature ${fi}, which the model does not have`,
			);
		const x = this.d.ident(f.col.x);
		if (f.kind === "indicator") {
			const on = goesLeft(tree, n, f.on);
			const off = goesLeft(tree, n, f.off);
			if (on === off) return on ? L() : R();
			return on
				? `CASE WHEN ${f.test} THEN ${L()} ELSE ${R()} END`
				: `CASE WHEN ${f.test} THEN ${R()} ELSE ${L()} END`;
		}
		const missingLeft = Number.isNaN(f.missing)
			? tree.missingLeft[n] === 1
			: goesLeft(tree, n, f.missing);
		// Present values the runtime imputes follow the missing direction.
		const present = complement(f.asMissing);
		let left = intersect(leftSet(tree, n, f), present);
		let cond: string;
		if (missingLeft) {
			left = union([...left, ...f.asMissing]);
			if (left.length === 1 && left[0]?.[0] === MIN && left[0][1] === MAX)
				return L();
			cond = `${x} IS NULL OR ${intervalsSql(this.d, x, left)}`;
		} else {
			if (left.length === 0) return R();
			// NULL fails every comparison, so it goes right by itself; "all present values" must say so.
			cond = intervalsSql(this.d, x, left);
			if (cond === "TRUE") cond = `${x} IS NOT NULL`;
		}
		return `CASE WHEN ${cond} THEN ${L()} ELSE ${R()} END`;
	}
}

/** Σ terms, left to right as the runtime adds them, in groups so no database finds the expression too deep. */
function sum(terms: string[]): string {
	if (terms.length <= SUM_GROUP) return terms.join(" + ");
	const groups: string[] = [];
	for (let i = 0; i < terms.length; i += SUM_GROUP)
		groups.push(`(${terms.slice(i, i + SUM_GROUP).join(" + ")})`);
	return sum(groups);
}

function scores(
	d: Dialect,
	model: TreeModel,
	features: FeatureSql[],
	em: Emitter,
): string[] {
	const T = model.targets;
	const body = model.body;
	const out: string[] = [];
	for (let t = 0; t < T; t++) {
		const base = d.num(model.base[t] as number);
		if (body.kind === "linear") {
			const terms = features.map((f, j) => {
				const c = d.num(body.coef[t * features.length + j] as number);
				return f.kind === "indicator"
					? `${c} * CASE WHEN ${f.test} THEN ${d.num(f.on)} ELSE ${d.num(f.off)} END`
					: `${c} * ${f.expr}`;
			});
			out.push(terms.length === 0 ? base : `${base} + (${sum(terms)})`);
			continue;
		}
		const terms: string[] = [];
		for (const tree of body.trees) {
			let any = false;
			for (let n = 0; n < tree.feature.length; n++)
				if ((tree.feature[n] as number) < 0 && tree.value[n * T + t] !== 0)
					any = true;
			if (any) terms.push(em.tree(tree, 0, t, T));
		}
		if (terms.length === 0) {
			out.push(base);
			continue;
		}
		const s = `(${sum(terms)})`;
		out.push(
			body.aggregate === "average"
				? `${base} + ${s} / ${d.num(body.trees.length)}`
				: `${base} + ${s}`,
		);
	}
	return out;
}

function expFloor(d: Dialect, x: string): string {
	return `EXP(${d.greatest([x, d.num(EXP_FLOOR)])})`;
}

/** Linked values (one per target) from the raw score columns. */
function linked(d: Dialect, model: TreeModel, s: string[]): string[] {
	const one = d.num(1);
	switch (model.link) {
		case "identity":
			return s;
		case "exp":
			return s.map((x) => `EXP(${x})`);
		case "logistic":
			// 1 / (1 + e^-s) for s ≥ 0, e^s / (1 + e^s) below: no overflow either way.
			return s.map(
				(x) =>
					`CASE WHEN ${x} >= 0 THEN ${one} / (${one} + ${expFloor(d, `-${x}`)}) ELSE ${expFloor(d, x)} / (${one} + ${expFloor(d, x)}) END`,
			);
		case "softmax": {
			if (s.length === 1) return [one];
			const m = d.greatest(s);
			const e = s.map((x) => expFloor(d, `${x} - ${m}`));
			const total = `(${e.join(" + ")})`;
			return e.map((x) => `${x} / ${total}`);
		}
	}
}

/** Everything compileTreeSql needs of a bundle: its representation and its manifest. */
export interface CompileInput {
	model: TreeModel;
	manifest: Pick<Manifest, "signature" | "features">;
}

/**
 * SQL that computes the model's outputs in `opts.dialect`. Splits compare raw input columns with constants found
 * from the runtime's own arithmetic (see bounds.ts), so rows right at a threshold go the runtime's way.
 * @example compileTreeSql({ model, manifest }, { dialect: "duckdb", name: "churn" }).sql
 */
export function compileTreeSql(
	{ model, manifest }: CompileInput,
	opts: CompileOptions,
): CompiledSql {
	const d = dialect(opts.dialect);
	const as = opts.as ?? "function";
	if (as === "view" && !opts.from)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"sql compile --as view needs --from TABLE (the table the view reads)",
		);
	if (as === "function" && d.name === "sqlite")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"SQLite has no functions written in SQL: use --as view --from TABLE (a view computing the outputs for every row)",
		);
	const body = model.body;
	const trees = body.kind === "ensemble" ? body.trees.length : 0;
	const nodes =
		body.kind === "ensemble"
			? body.trees.reduce((a, t) => a + t.feature.length, 0)
			: body.coef.length;
	const depth =
		body.kind === "ensemble"
			? body.trees.reduce((a, t) => Math.max(a, treeDepth(t)), 0)
			: 0;
	const limit = opts.maxNodes ?? DEFAULT_MAX_NODES;
	if (nodes > limit)
		throw new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`sql compile: the model has ${trees} trees with ${nodes} nodes in all (deepest ${depth}), over the limit of ${limit} nodes; the SQL would be about ${Math.round((nodes * 60) / 1e6)} MB. Raise it with --max-nodes ${nodes} if the database can take it`,
		);
	if (depth > 400)
		unsupported(
			`a tree ${depth} levels deep would nest CASE expressions past what databases parse (SQLite stops at 1000)`,
		);
	const colMap = columnsOf(model, manifest);
	const columns = [...colMap.values()];
	const features = model.features.map((f) =>
		featureSql(d, f, colMap.get(`${f.input}:${f.column}`) as Column),
	);
	const em = new Emitter(d, features);
	const raw = scores(d, model, features, em);
	const T = model.targets;
	const sNames = raw.map((_, t) => `__mlship_s${t}`);
	const lin = linked(
		d,
		model,
		sNames.map((n) => d.ident(n)),
	);
	const head = model.head;
	const pNames: string[] = [];
	const pExprs: string[] = [];
	if (head.kind === "classification" && T === 1 && head.labels.length === 2) {
		pExprs.push(`${d.num(1)} - ${lin[0]}`, lin[0] as string);
	} else pExprs.push(...lin);
	pExprs.forEach((_, k) => {
		pNames.push(`__mlship_p${k}`);
	});
	const p = pNames.map((n) => d.ident(n));
	const outputs: CompiledSql["outputs"] = [];
	const outExprs: string[] = [];
	for (const o of manifest.signature.outputs) {
		let e: string;
		if (o.name === "label" && head.kind === "classification") {
			const labels = head.labels;
			// The first class of highest probability, as the runtime picks it.
			const whens = labels.slice(0, -1).map((l, k) => {
				const rest = p.slice(k + 1).map((q) => `${p[k]} >= ${q}`);
				return `WHEN ${rest.join(" AND ")} THEN ${l}`;
			});
			e = `CAST(CASE ${whens.join(" ")} ELSE ${labels[labels.length - 1]} END AS ${d.bigint})`;
			outputs.push({ name: o.name, shape: "label" });
		} else if (p.length === 1 && (o.shape[1] ?? 1) === 1) {
			e = p[0] as string;
			outputs.push({ name: o.name, shape: "scalar" });
		} else {
			e = d.array(p);
			outputs.push({ name: o.name, shape: "array" });
		}
		outExprs.push(e);
	}
	const keep =
		as === "view"
			? [...new Set([...columns.map((c) => c.name), ...(opts.keep ?? [])])]
			: [];
	const pass = keep.map((k) => d.ident(k));
	const sel = (items: string[]) => [...pass, ...items].join(",\n  ");
	const src = as === "view" ? `${qualified(d, opts.from as string)}` : "";
	const normalize = (c: Column) => {
		const ref = d.ident(c.name);
		return c.kind === "text"
			? `CAST(${ref} AS ${d.text})`
			: d.nanToNull(`CAST(${ref} AS ${d.double})`);
	};
	const stage0 = `SELECT ${sel(columns.map((c) => `${normalize(c)} AS ${d.ident(c.x)}`))}${src ? `\n  FROM ${src}` : ""}`;
	const stage1 = `SELECT ${sel([...columns.map((c) => d.ident(c.x)), ...raw.map((r, t) => `${r} AS ${d.ident(sNames[t] as string)}`)])}\nFROM (${stage0}${d.fence}) AS __mlship_inputs`;
	const stage2 = `SELECT ${sel(pExprs.map((e, k) => `${e} AS ${p[k]}`))}\nFROM (${stage1}${d.fence}) AS __mlship_scores`;
	const name = qualified(d, opts.name);
	const named = outExprs.map(
		(e, i) => `${e} AS ${d.ident(outputs[i]?.name as string)}`,
	);
	const typeOf = (o: CompiledSql["outputs"][number]) =>
		o.shape === "label"
			? d.bigint
			: o.shape === "array"
				? d.doubleArray
				: d.double;
	let sql: string;
	let q: string;
	if (as === "view") {
		q = `SELECT ${sel(named)}\nFROM (${stage2}${d.fence}) AS __mlship_linked`;
		sql =
			d.name === "sqlite"
				? `DROP VIEW IF EXISTS ${name};\nCREATE VIEW ${name} AS\n${q};\n`
				: `CREATE OR REPLACE VIEW ${name} AS\n${q};\n`;
	} else if (d.name === "postgres") {
		q = `SELECT ${named.join(",\n  ")}\nFROM (${stage2}${d.fence}) AS __mlship_linked`;
		const params = [
			...columns.map(
				(c) => `${d.ident(c.name)} ${c.kind === "text" ? d.text : d.double}`,
			),
			...outputs.map((o) => `OUT ${d.ident(o.name)} ${typeOf(o)}`),
		];
		let tag = "$mlship$";
		for (let i = 1; q.includes(tag); i++) tag = `$mlship${i}$`;
		sql = `CREATE OR REPLACE FUNCTION ${name}(${params.join(", ")})\nLANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${tag}\n${q}\n${tag};\n`;
	} else if (d.name === "duckdb") {
		const value =
			outputs.length === 1
				? (outExprs[0] as string)
				: `{${outputs.map((o, i) => `${d.str(o.name)}: ${outExprs[i]}`).join(", ")}}`;
		q = `SELECT ${value}\nFROM (${stage2}${d.fence}) AS __mlship_linked`;
		sql = `CREATE OR REPLACE MACRO ${name}(${columns.map((c) => d.ident(c.name)).join(", ")}) AS (\n${q});\n`;
	} else {
		const ret =
			outputs.length === 1
				? typeOf(outputs[0] as CompiledSql["outputs"][number])
				: `STRUCT<${outputs.map((o) => `${d.ident(o.name)} ${typeOf(o)}`).join(", ")}>`;
		const select =
			outputs.length === 1
				? `SELECT ${outExprs[0]}`
				: `SELECT AS STRUCT ${named.join(",\n  ")}`;
		const create = opts.name.includes(".")
			? "CREATE OR REPLACE FUNCTION"
			: "CREATE TEMP FUNCTION";
		q = `${select}\nFROM (${stage2}${d.fence}) AS __mlship_linked`;
		sql = `${create} ${name}(${columns.map((c) => `${d.ident(c.name)} ${c.kind === "text" ? d.text : d.double}`).join(", ")})\nRETURNS ${ret} AS ((\n${q}));\n`;
	}
	return {
		sql,
		query: q,
		columns: columns.map((c) => ({ name: c.name, kind: c.kind })),
		outputs,
		featureColumns: features.map((f) => f.col.name),
		trees,
		nodes,
		depth,
	};
}

/**
 * A bundle's model as SQL: any bundle whose artifact the tree/linear reader understands (XGBoost JSON, LightGBM
 * text, PMML, ONNX tree ensembles and linear models), whatever runtime its manifest names.
 */
export function compileBundle(
	bundle: Bundle,
	opts: CompileOptions,
): CompiledSql {
	let model: TreeModel;
	try {
		model = readTreeModel(artifactBytes(bundle), bundle.source);
	} catch (err) {
		if (err instanceof MlshipError && err.code === "MLSHIP_UNSUPPORTED_MODEL")
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`sql compile: only tree ensembles and linear models compile to SQL; ${err.message}`,
				{ cause: err },
			);
		throw err;
	}
	return compileTreeSql({ model, manifest: bundle.manifest }, opts);
}
