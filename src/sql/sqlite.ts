// Models as SQLite functions on a node:sqlite DatabaseSync. SQLite calls scalar functions once per row.
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { toMlshipError } from "../protocol/errors.ts";
import {
	type RegisterOptions,
	SQL_FUNCTIONS,
	type SqlFunctionKind,
	SqlModels,
} from "./models.ts";

/**
 * Registers `predict`, `predict_label`, `predict_proba` and `predict_output` on a SQLite database, with the
 * same arguments and NULL rule as the DuckDB functions. SQLite has no arrays: `predict_proba` and
 * `predict_output` return a JSON array as text, `explain` the JSON of the row's explanation (read one with `json_extract(p, '$[1]')`). SQLite calls a
 * scalar function once per row, so each row is one model call (tens of microseconds each); to score whole
 * tables fast, use `mlship batch run` with a SQLite source, which scores in chunks.
 * @example
 * const fns = await registerSqliteFunctions(db, { models: ["iris@production"] });
 * db.prepare("SELECT predict_label('iris@production', a, b, c, d) AS species FROM flowers").all();
 * await fns.close();
 */
export async function registerSqliteFunctions(
	db: DatabaseSync,
	opts: RegisterOptions,
): Promise<SqlModels> {
	const models = await SqlModels.load(opts);
	for (const fn of SQL_FUNCTIONS)
		db.function(fn, { varargs: true, deterministic: true }, (...args) =>
			call(models, fn, args),
		);
	return models;
}

function call(
	models: SqlModels,
	fn: SqlFunctionKind,
	args: SQLInputValue[],
): string | number | null {
	try {
		const { model, output, first } = models.resolveCall(
			fn,
			(i) => args[i],
			args.length,
		);
		const cols = args.slice(first).map((v) => ({ get: () => v }));
		const [r] = model.score(fn, output, 1, cols, first);
		if (r === undefined || r === null) return null;
		return Array.isArray(r) ? JSON.stringify(r) : r;
	} catch (err) {
		// node:sqlite turns a thrown error into the statement's error; keep mlship's message.
		throw new Error(toMlshipError(err).message);
	}
}
