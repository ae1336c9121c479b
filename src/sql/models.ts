// Models for SQL functions: loaded before the query (SQL engines call functions synchronously), scored a batch at a time.
import {
	type ColumnSource,
	TableEncoder,
	type TablePlan,
} from "../codec/table.ts";
import { keepRows } from "../dataplane/instance.ts";
import { loadModel, type Model } from "../model.ts";
import { DATATYPE_INFO } from "../protocol/datatypes.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import type { ModelStore } from "../registry/types.ts";

export interface RegisterOptions {
	/** Model references the query will use (bundle dirs, .onnx files, `name@alias`); all are loaded now. */
	models: readonly string[];
	/** Registry for `name@alias` references (URI or open store); default MLSHIP_REGISTRY or ./.mlship/registry.db. */
	registry?: string | ModelStore;
}

/** What a SQL function returns per row. */
export type SqlFunctionKind =
	| "predict"
	| "predict_label"
	| "predict_proba"
	| "predict_output"
	| "explain";

/** One row's result: a number, a class name (or an explanation's JSON), a list of numbers, or NULL (a NULL feature). */
export type SqlResult = number | string | number[] | null;

/**
 * A model ready for synchronous, batched scoring from a SQL engine: a model instance loaded in blocking mode,
 * called through its synchronous entry (the same validation as every other entry point).
 */
export class SqlModel {
	readonly ref: string;
	readonly name: string;
	readonly version: number | undefined;
	readonly plan: TablePlan;
	readonly #model: Model;
	#calls = 0;

	private constructor(ref: string, model: Model) {
		this.ref = ref;
		this.name = model.name;
		this.version = model.version;
		this.plan = model.plan;
		this.#model = model;
	}

	static async open(
		ref: string,
		registry?: string | ModelStore,
	): Promise<SqlModel> {
		return new SqlModel(
			ref,
			await loadModel(ref, {
				mode: "blocking",
				...(registry !== undefined ? { registry } : {}),
			}),
		);
	}

	get features(): string[] {
		return this.plan.features.map((f) => f.name);
	}

	/** The output a function reads: `predict`/`predict_label` the first, `predict_proba` the probabilities. */
	outputFor(fn: SqlFunctionKind, named?: string): string {
		const outs = this.#model.signature.outputs;
		const call = `${fn}('${this.ref}')`;
		// explain reads no output: its result is the explanation of the raw outputs.
		if (fn === "explain") return "";
		if (fn === "predict_output") {
			if (!named || !outs.some((o) => o.name === named))
				throw invalidInput(
					`${call}: unknown output '${named ?? ""}'; the model has ${outs.map((o) => `'${o.name}'`).join(", ")}`,
				);
			return named;
		}
		if (fn === "predict_proba") {
			const p =
				outs.find((o) => o.name === "probabilities") ??
				outs.find((o) => (o.shape[o.shape.length - 1] ?? 1) > 1);
			if (!p)
				throw invalidInput(
					`${call}: the model has no probability output (outputs: ${outs.map((o) => o.name).join(", ")}); use predict() or predict_output()`,
				);
			return p.name;
		}
		if (fn === "predict_label" && !this.plan.labels)
			throw invalidInput(
				`${call}: the model has no class labels (add 'labels' to mlship.yaml); use predict() for its number`,
			);
		return (outs[0] as { name: string }).name;
	}

	/**
	 * Scores `n` rows whose features (in model order) are read from `cols`. NULL rule: a row with a NULL in a
	 * feature that does not allow missing values gets a NULL result (features with `allow_missing` pass it on
	 * as missing); any other bad value throws, naming the feature and the argument.
	 */
	score(
		fn: SqlFunctionKind,
		output: string,
		n: number,
		cols: readonly ColumnSource[],
		argOffset: number,
	): SqlResult[] {
		const feats = this.plan.features;
		const nullRow = new Uint8Array(n);
		let nulls = 0;
		feats.forEach((f, fi) => {
			if (f.allowMissing) return;
			const c = cols[fi] as ColumnSource;
			// Typed numbers without a validity test: no NULLs (DuckDB left the mask unallocated).
			if (c.numbers !== undefined && c.valid === undefined) return;
			for (let r = 0; r < n; r++)
				if (!nullRow[r] && (c.valid ? !c.valid(r) : isNull(c.get(r)))) {
					nullRow[r] = 1;
					nulls++;
				}
		});
		const results: SqlResult[] = new Array(n).fill(null);
		if (nulls === n) return results;
		const enc = new TableEncoder(this.plan, n);
		feats.forEach((_, fi) => {
			enc.writeColumn(fi, n, cols[fi] as ColumnSource);
		});
		enc.commit(n);
		const { tensors, errors } = enc.take();
		const bad = errors.find((e) => !nullRow[e.row]);
		if (bad) {
			const arg = argOffset + feats.findIndex((f) => f.name === bad.column) + 1;
			throw invalidInput(
				`${fn}('${this.ref}'): feature '${bad.column}' (argument ${arg}): ${bad.message}`,
			);
		}
		const { inputs, kept } = keepRows(
			tensors,
			n,
			(r) => nullRow[r] === 1,
			nulls > 0,
		);
		this.#calls++;
		if (fn === "explain") {
			const x = this.#model.explainSync(inputs);
			x.explanations.forEach((row, i) => {
				results[kept ? (kept[i] as number) : i] = JSON.stringify(row);
			});
			return results;
		}
		const [t] = this.#model.predictSync(inputs, [output]);
		const out = t as Tensor;
		const rows = out.shape[0] ?? 0;
		const width = rows > 0 ? out.data.length / rows : 0;
		const data = out.data as ArrayLike<unknown>;
		const bigint = DATATYPE_INFO[out.datatype].kind === "bigint";
		const num = (i: number) =>
			bigint ? Number(data[i] as bigint) : (data[i] as number);
		for (let i = 0; i < rows; i++) {
			const r = kept ? (kept[i] as number) : i;
			if (fn === "predict_proba" || fn === "predict_output") {
				const arr = new Array<number>(width);
				for (let j = 0; j < width; j++) arr[j] = num(i * width + j);
				results[r] = arr;
			} else if (fn === "predict_label") {
				const k = num(i * width);
				results[r] = this.plan.labels?.[k] ?? String(k);
			} else results[r] = num(i * width);
		}
		return results;
	}

	/** Model calls made so far (one per DuckDB chunk, one per SQLite row). */
	get calls(): number {
		return this.#calls;
	}

	close(): Promise<void> {
		return this.#model.close();
	}
}

function isNull(v: unknown): boolean {
	return v === null || v === undefined;
}

/**
 * The models a set of SQL functions can call, by the reference written in the query. Loaded up front: a SQL
 * engine calls functions synchronously, with no chance to fetch a model from the registry mid-query.
 * @example const models = await SqlModels.load({ models: ["iris@production"] }); ... await models.close();
 */
export class SqlModels {
	readonly #models = new Map<string, SqlModel>();

	static async load(opts: RegisterOptions): Promise<SqlModels> {
		const m = new SqlModels();
		try {
			for (const ref of new Set(opts.models))
				m.#models.set(ref, await SqlModel.open(ref, opts.registry));
		} catch (err) {
			await m.close();
			throw err;
		}
		return m;
	}

	get refs(): string[] {
		return [...this.#models.keys()];
	}

	/** The model loaded as `ref`; throws, naming what is loaded, for any other reference. */
	get(ref: unknown, fn: SqlFunctionKind): SqlModel {
		if (typeof ref !== "string")
			throw invalidInput(
				`${fn}(): the first argument must be a model reference in quotes, e.g. ${fn}('iris@production', ...)`,
			);
		const m = this.#models.get(ref);
		if (!m)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`${fn}('${ref}'): model '${ref}' is not loaded (loaded: ${this.refs.map((r) => `'${r}'`).join(", ") || "none"}); list it in the models to register`,
			);
		return m;
	}

	/**
	 * The model, output and first feature argument of one call, checked: `args[0]` is the model reference and,
	 * for `predict_output`, `args[1]` the output name; `argCount` counts every argument.
	 */
	resolveCall(
		fn: SqlFunctionKind,
		arg: (i: number) => unknown,
		argCount: number,
	): { model: SqlModel; output: string; first: number } {
		const model = this.get(arg(0), fn);
		const first = fn === "predict_output" ? 2 : 1;
		const output = model.outputFor(
			fn,
			fn === "predict_output" ? String(arg(1)) : undefined,
		);
		checkArity(model, fn, argCount - first);
		return { model, output, first };
	}

	async close(): Promise<void> {
		await Promise.all([...this.#models.values()].map((m) => m.close()));
		this.#models.clear();
	}
}

/** Checks the number of feature arguments a call passed. */
function checkArity(m: SqlModel, fn: SqlFunctionKind, got: number): void {
	const want = m.plan.features.length;
	if (got !== want)
		throw invalidInput(
			`${fn}('${m.ref}') takes ${want} feature argument${want === 1 ? "" : "s"} after the model (${m.features.join(", ")}), got ${got}`,
		);
}

/** The SQL functions, each registered under this name. */
export const SQL_FUNCTIONS: readonly SqlFunctionKind[] = [
	"predict",
	"predict_label",
	"predict_proba",
	"predict_output",
	"explain",
];

/** Model references written as literals in a query (`predict('iris@production', ...)`, `explain(...)`), to load before running it. */
export function modelRefsIn(sql: string): string[] {
	const refs = new Set<string>();
	for (const m of sql.matchAll(
		/\b(?:predict(?:_label|_proba|_output)?|explain)\s*\(\s*'((?:[^']|'')*)'/gi,
	))
		refs.add((m[1] as string).replaceAll("''", "'"));
	return [...refs];
}
