// Models as vectorized DuckDB scalar functions: one model call per DuckDB data chunk (up to 2048 rows).
import {
	ANY,
	DOUBLE,
	type DuckDBConnection,
	type DuckDBDataChunk,
	DuckDBScalarFunction,
	type DuckDBType,
	type DuckDBVector,
	LIST,
	listValue,
	VARCHAR,
} from "@duckdb/node-api";
import { columnSource } from "../batch/files.ts";
import type { ColumnSource } from "../codec/table.ts";
import { toMlshipError } from "../protocol/errors.ts";
import {
	type RegisterOptions,
	SQL_FUNCTIONS,
	type SqlFunctionKind,
	SqlModels,
} from "./models.ts";

const RETURNS: Record<SqlFunctionKind, DuckDBType> = {
	predict: DOUBLE,
	predict_label: VARCHAR,
	predict_proba: LIST(DOUBLE),
	predict_output: LIST(DOUBLE),
	explain: VARCHAR,
};

/**
 * Registers `predict`, `predict_label`, `predict_proba` and `predict_output` on a DuckDB connection:
 * `predict(model, f1, f2, ...)` → DOUBLE (regression value or class index), `predict_label` → VARCHAR class
 * name, `predict_proba` → DOUBLE[] class probabilities, `predict_output(model, 'output', ...)` → DOUBLE[]
 * of any named output, `explain(model, f1, ...)` → VARCHAR, the JSON of the row's explanation (per target:
 * target, base, output, values, top 5; models the trees runtime can explain). Features are passed in the model's feature order. A NULL feature gives a NULL result
 * unless the feature allows missing values. Close the returned handle after the connection is done.
 * @example
 * const fns = await registerDuckDBFunctions(conn, { models: ["iris@production"] });
 * await conn.runAndReadAll("SELECT predict_label('iris@production', a, b, c, d) FROM 'x.parquet'");
 * await fns.close();
 */
export async function registerDuckDBFunctions(
	conn: DuckDBConnection,
	opts: RegisterOptions,
): Promise<SqlModels> {
	const models = await SqlModels.load(opts);
	for (const fn of SQL_FUNCTIONS)
		conn.registerScalarFunction(
			DuckDBScalarFunction.create({
				name: fn,
				returnType: RETURNS[fn],
				varArgsType: ANY,
				// NULLs reach the function: the rule (NULL out, or missing for allow_missing features) is ours.
				specialHandling: true,
				mainFunction: (info, chunk, out) => {
					try {
						call(models, fn, chunk, out);
					} catch (err) {
						info.setError(toMlshipError(err).message);
					}
				},
			}),
		);
	return models;
}

/** A chunk column as an encoder source; a bare NULL literal (type SQLNULL) has no readable vector: all NULL. */
function sourceOf(chunk: DuckDBDataChunk, c: number): ColumnSource {
	try {
		return columnSource(chunk.getColumnVector(c));
	} catch (err) {
		if (/SQLNULL/.test((err as Error).message)) return { get: () => null };
		throw err;
	}
}

/**
 * How many leading rows of a VARCHAR vector hold byte-for-byte the same string entry as row 0 (DuckDB's 16-byte
 * string_t: length and inline text, or length, prefix and pointer), so they hold the same string without decoding
 * it: a model reference is one literal repeated down the chunk, and decoding it per row cost as much as scoring.
 * 0 when the vector is not laid out that way (every row is then compared as a string).
 */
function sameRawItems(vector: DuckDBVector, n: number): number {
	const raw = vector as unknown as {
		dataView?: unknown;
		validity?: { data?: unknown };
	};
	const view = raw.dataView;
	// A NULL row keeps stale bytes: with any NULL possible, every row is compared as a value.
	if (
		!(view instanceof DataView) ||
		view.byteLength < n * 16 ||
		raw.validity?.data !== null
	)
		return 0;
	const w0 = view.getUint32(0, true);
	const w1 = view.getUint32(4, true);
	const w2 = view.getUint32(8, true);
	const w3 = view.getUint32(12, true);
	let r = 1;
	for (; r < n; r++) {
		const at = r * 16;
		if (
			view.getUint32(at, true) !== w0 ||
			view.getUint32(at + 4, true) !== w1 ||
			view.getUint32(at + 8, true) !== w2 ||
			view.getUint32(at + 12, true) !== w3
		)
			break;
	}
	return r;
}

function call(
	models: SqlModels,
	fn: SqlFunctionKind,
	chunk: DuckDBDataChunk,
	out: DuckDBVector,
): void {
	const n = chunk.rowCount;
	if (chunk.columnCount === 0) throw new Error(`${fn}() needs a model`);
	const refs = chunk.getColumnVector(0);
	const ref = refs.getItem(0);
	for (let r = sameRawItems(refs, n); r < n; r++)
		if (refs.getItem(r) !== ref)
			throw new Error(
				`${fn}(): the model must be the same for every row (got '${String(ref)}' and '${String(refs.getItem(r))}')`,
			);
	const { model, output, first } = models.resolveCall(
		fn,
		(i) => chunk.getColumnVector(i).getItem(0),
		chunk.columnCount,
	);
	const cols = [];
	for (let c = first; c < chunk.columnCount; c++) cols.push(sourceOf(chunk, c));
	const results = model.score(fn, output, n, cols, first);
	const list = fn === "predict_proba" || fn === "predict_output";
	const set = out as unknown as {
		setItem(i: number, v: unknown): void;
		flush(): void;
	};
	for (let r = 0; r < n; r++) {
		const v = results[r];
		set.setItem(r, v === null ? null : list ? listValue(v as number[]) : v);
	}
	set.flush();
}
