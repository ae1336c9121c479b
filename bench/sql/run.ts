// bench/sql: rows/s of the breast_cancer GBDT compiled to plain DuckDB SQL (`mlship sql compile`: the macro and the
// view) beside mlship's DuckDB function (predict_label, the model run by its runtime) on the same rows, one run each.
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { readBundle } from "../../src/bundle/bundle.ts";
import { compileBundle } from "../../src/sql/compile/compile.ts";
import { registerDuckDBFunctions } from "../../src/sql/duckdb.ts";
import {
	ensureData,
	featureNames,
	fmtInt,
	MODEL_DIR,
	machine,
	positiveInt,
	sqlIdent,
	sqlString,
	writeResults,
} from "../common.ts";

const { values } = parseArgs({
	options: {
		rows: { type: "string", default: "200000" },
		"no-results": { type: "boolean", default: false },
	},
});
const rows = positiveInt("--rows", values.rows);
const features = featureNames();
const data = await ensureData(rows, features);
const db = await DuckDBInstance.create(":memory:", { threads: "2" });
const conn = await db.connect();
await conn.run(
	`CREATE TABLE t AS SELECT * FROM read_parquet(${sqlString(data)})`,
);
const bundle = await readBundle(MODEL_DIR);
const macro = compileBundle(bundle, { dialect: "duckdb", name: "gbdt" });
const view = compileBundle(bundle, {
	dialect: "duckdb",
	name: "scored",
	as: "view",
	from: "t",
});
await conn.run(macro.sql);
await conn.run(view.sql);
const models = await registerDuckDBFunctions(conn, { models: [MODEL_DIR] });
const args = features.map(sqlIdent).join(", ");

async function timed(
	name: string,
	query: string,
): Promise<{ name: string; seconds: number; benign: number }> {
	const t0 = performance.now();
	const r = await conn.runAndReadAll(query);
	const seconds = (performance.now() - t0) / 1000;
	const benign = Number(r.getRows()[0]?.[0]);
	process.stderr.write(`${name}: ${seconds.toFixed(2)} s, ${benign} benign\n`);
	return { name, seconds, benign };
}

const results = [
	await timed(
		"compiled SQL, DuckDB macro `gbdt(…).label` (mlship sql compile --dialect duckdb)",
		`SELECT count(*) FILTER (WHERE gbdt(${args}).label = 1) FROM t`,
	),
	await timed(
		"compiled SQL, DuckDB view (--as view --from t)",
		"SELECT count(*) FILTER (WHERE label = 1) FROM scored",
	),
	await timed(
		"mlship DuckDB function `predict_label(model, …)` (runtime onnx, in-process)",
		`SELECT count(*) FILTER (WHERE predict_label(${sqlString(MODEL_DIR)}, ${args}) = 'benign') FROM t`,
	),
];
await models.close();
conn.closeSync();
db.closeSync();
const agree = results.every((r) => r.benign === results[0]?.benign);
const udf = results[2]?.seconds ?? 1;
const lines = results.map(
	(r) =>
		`| ${r.name} | ${fmtInt(rows)} | ${fmtInt(rows / r.seconds)} | ${r.seconds.toFixed(2)} | ${(udf / r.seconds).toFixed(2)}× | ${fmtInt(r.benign)} |`,
);
const section = `## sql

Rows/s of the breast_cancer GBDT (\`test/fixtures/models/breast-cancer-gbdt\`, 100 trees of depth 3, 30 features) compiled to plain SQL by \`mlship sql compile --dialect duckdb\` beside mlship's DuckDB function \`predict_label\` (the model run by its ONNX runtime through the UDF), counting rows labelled benign over an in-memory DuckDB table (threads 2). One run each, in one process, after the table is loaded; the SQL compile itself is not timed. **The machine was shared with seven other engineers' work while this ran: figures are indicative, not a clean measurement.**

- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${machine()}
- data: ${fmtInt(rows)} rows × 30 DOUBLE columns (bench/common.ts generator)
- command: \`node bench/sql/run.ts --rows ${rows}\`
- every contender labels the same number of rows benign: ${agree ? "yes" : "NO"}

| contender | rows | rows/s | seconds | vs DuckDB function | rows benign |
|---|---:|---:|---:|---:|---:|
${lines.join("\n")}
`;
process.stdout.write(section);
if (!agree) process.exitCode = 1;
if (!values["no-results"]) await writeResults("sql", section);
