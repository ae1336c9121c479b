// `mlship sql`: run a DuckDB query in which models are SQL functions (predict, predict_label, predict_proba, predict_output).
import { resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { Command } from "commander";
import { copyOptions, formatOf } from "../batch/files.ts";
import { MlshipError } from "../protocol/errors.ts";
import { sqlString } from "../protocol/sql.ts";
import { registerDuckDBFunctions } from "../sql/duckdb.ts";
import { modelRefsIn } from "../sql/models.ts";
import { action, example, output, textTable } from "./common.ts";
import { sqlCompileCommand } from "./sql-compile.ts";

interface SqlOpts {
	registry?: string;
	model?: string[];
	output?: string;
	json?: boolean;
}

export function sqlCommand(): Command {
	const cmd = new Command("sql")
		.description(
			"Run a DuckDB SQL query where models are functions: predict(model, features...) → number, predict_label → class name, predict_proba → probabilities, predict_output(model, 'output', ...) → any output, explain(model, features...) → the prediction's feature contributions as JSON (trees runtime). Files are tables: FROM 'x.parquet'. A NULL feature gives a NULL prediction. Subcommand: sql compile writes a tree or linear model as plain SQL (a function or view) for PostgreSQL, DuckDB, SQLite or BigQuery.",
		)
		.argument("<query>", "the SQL query (DuckDB dialect)")
		.option(
			"--registry <uri>",
			"registry for model names (default: MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
		)
		.option(
			"-m, --model <ref>",
			"a model to load besides those written as literals in the query (repeatable)",
			(v: string, prev: string[] = []) => [...prev, v],
		)
		.option(
			"-o, --output <file>",
			"write the result to a .parquet, .csv or .jsonl file instead of printing it",
		)
		.option("--json", "print the rows as a JSON array")
		.action(
			action(async (query: string, opts: SqlOpts) => {
				const refs = [...modelRefsIn(query), ...(opts.model ?? [])];
				const db = await DuckDBInstance.create(":memory:");
				const conn = await db.connect();
				const models = await registerDuckDBFunctions(conn, {
					models: refs,
					...(opts.registry ? { registry: opts.registry } : {}),
				});
				try {
					if (opts.output) {
						const file = resolve(opts.output);
						const r = await run(() =>
							conn.run(
								`COPY (${query}) TO ${sqlString(file)} ${copyOptions(formatOf(file))}`,
							),
						);
						const rows = Number(r.rowsChanged);
						output(
							Boolean(opts.json),
							{ output: file, rows },
							() => `${rows.toLocaleString("en-US")} rows → ${file}`,
						);
						return;
					}
					const r = await run(() => conn.runAndReadAll(query));
					const rows = r.getRowObjectsJson();
					if (opts.json) {
						process.stdout.write(`${JSON.stringify(rows)}\n`);
						return;
					}
					process.stdout.write(table(r.columnNames(), rows));
				} finally {
					conn.closeSync();
					db.closeSync();
					await models.close();
				}
			}),
		);
	cmd.addCommand(sqlCompileCommand());
	return example(
		cmd,
		`mlship sql "SELECT *, predict_label('iris-logreg@production', sepal_length, sepal_width, petal_length, petal_width) AS species FROM 'examples/iris.csv'"`,
		`mlship sql "SELECT id, predict_proba('churn@production', age, income)[2] AS p_churn FROM 'customers.parquet'" --json`,
		`mlship sql "SELECT *, predict('./bundle', a, b) AS score FROM read_parquet('in/*.parquet')" -o scored.parquet`,
	);
}

/** Runs a DuckDB statement; its errors (bad SQL, a bad value in a model call) are the user's input. */
async function run<T>(fn: () => Promise<T>): Promise<T> {
	try {
		return await fn();
	} catch (err) {
		if (err instanceof MlshipError) throw err;
		throw new MlshipError("MLSHIP_INVALID_INPUT", (err as Error).message, {
			cause: err,
		});
	}
}

/** Rows as an aligned text table. */
function table(names: string[], rows: Record<string, unknown>[]): string {
	const cell = (v: unknown) =>
		v === null || v === undefined
			? "NULL"
			: typeof v === "object"
				? JSON.stringify(v)
				: String(v);
	const cells = rows.map((r) => names.map((n) => cell(r[n])));
	return `${textTable(names, cells, true)}\n(${rows.length} row${rows.length === 1 ? "" : "s"})\n`;
}
