// `mlship sql compile` as a real process (registry references, --output, --json, refusals), BigQuery text checked
// by a SQL parser, NaN inputs taken as missing, and the exact float32 bounds of split tests.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import NodeSqlParser from "node-sql-parser";
import { readBundle } from "../../src/bundle/bundle.ts";
import { inCategories, MIN, monotone } from "../../src/sql/compile/bounds.ts";
import {
	compileBundle,
	compileTreeSql,
} from "../../src/sql/compile/compile.ts";
import { readTreeModel } from "../../src/trees/read/index.ts";
import { mlship } from "../helpers/files.ts";
import {
	assertClose,
	bundleDir,
	golden,
	ONNX_TREE_FIXTURES,
	TREE_FIXTURES,
} from "../helpers/fixtures.ts";

/** Runs `fn` on a connection to a fresh in-memory DuckDB, closed afterwards. */
async function withDuckDB(
	fn: (conn: DuckDBConnection) => Promise<void>,
): Promise<void> {
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		await fn(conn);
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

/** `mlship sql compile <fixture> ...args` as a real process. */
const compile = (fixture: string, args: string[]) =>
	mlship(["sql", "compile", bundleDir(fixture), ...args]);

let dir: string;
let registry: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-sql-compile-"));
	registry = `sqlite:${join(dir, "r.db")}`;
});
after(() => rm(dir, { recursive: true, force: true }));

describe("mlship sql compile", () => {
	it("compiles a registered model by name@alias; the DuckDB macro gives XGBoost's own probabilities", async () => {
		const f = "trees/wine-xgb-json";
		const reg = await mlship([
			"models",
			"register",
			bundleDir(f),
			"--name",
			"wine",
			"--alias",
			"production",
			"--registry",
			registry,
		]);
		assert.equal(reg.code, 0, reg.stderr);
		const out = join(dir, "wine.sql");
		const r = await mlship([
			"sql",
			"compile",
			"wine@production",
			"--dialect",
			"duckdb",
			"-o",
			out,
			"--registry",
			registry,
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr);
		const info = JSON.parse(r.stdout) as {
			name: string;
			version: number;
			outputs: { name: string }[];
			columns: { name: string }[];
			output: string;
		};
		assert.equal(info.name, "wine");
		assert.equal(info.version, 1);
		assert.deepEqual(
			info.outputs.map((o) => o.name),
			["label", "probabilities"],
		);
		const sql = await readFile(out, "utf8");
		await withDuckDB(async (conn) => {
			await conn.run(sql);
			const g = golden(f);
			const cols = info.columns.map((c) => c.name);
			const rowsSql = g.records
				.map(
					(rec) =>
						`SELECT ${cols.map((c) => `${Number(rec[c])}::DOUBLE AS "${c}"`).join(", ")}`,
				)
				.join(" UNION ALL ");
			const res = await conn.runAndReadAll(
				`SELECT wine(${cols.map((c) => `"${c}"`).join(", ")}) AS r FROM (SELECT row_number() OVER () AS i, * FROM (${rowsSql})) ORDER BY i`,
			);
			const got = res
				.getRowObjectsJson()
				.map((o) => o.r as { label: string; probabilities: number[] });
			const want = (g.expected.probabilities as number[][]).flat();
			got
				.flatMap((x) => x.probabilities)
				.forEach((p, i) => {
					assertClose(p, want[i] as number, `wine probabilities[${i}]`);
				});
			assert.deepEqual(
				got.map((x) => Number(x.label)),
				g.expected.label,
			);
		});
	});

	it("prints the SQL on stdout by default; --help has examples", async () => {
		const r = await compile("trees/iris-tree-pmml", ["--dialect", "postgres"]);
		assert.equal(r.code, 0, r.stderr);
		assert.match(
			r.stdout,
			/^CREATE OR REPLACE FUNCTION "iris-tree-pmml"\("sepal_length" float8, "petal_length" float8, "petal_width" float8, OUT "label" bigint, OUT "probabilities" float8\[\]\)/,
		);
		const h = await mlship(["sql", "compile", "--help"]);
		assert.equal(h.code, 0);
		assert.match(
			h.stdout,
			/Examples:\n {2}\$ mlship sql compile churn@production --dialect postgres/,
		);
	});

	it("refuses what it cannot compile, saying what to do", async () => {
		const lite = await compile("trees/iris-tree-pmml", ["--dialect", "sqlite"]);
		assert.equal(lite.code, 2);
		assert.match(
			lite.stderr,
			/SQLite has no functions written in SQL: use --as view --from TABLE/,
		);
		const big = await compile("wine-xgb", [
			"--dialect",
			"duckdb",
			"--max-nodes",
			"100",
		]);
		assert.equal(big.code, 2);
		assert.match(
			big.stderr,
			/the model has 150 trees with 610 nodes in all \(deepest 3\), over the limit of 100 nodes.*--max-nodes 610/,
		);
		const raised = await compile("wine-xgb", [
			"--dialect",
			"duckdb",
			"--max-nodes",
			"610",
		]);
		assert.equal(raised.code, 0, raised.stderr);
		const mlp = await compile("digits-mlp", ["--dialect", "duckdb"]);
		assert.equal(mlp.code, 2);
		assert.match(
			mlp.stderr,
			/only tree ensembles and linear models compile to SQL/,
		);
		const noView = await compile("wine-xgb", [
			"--dialect",
			"duckdb",
			"--from",
			"t",
		]);
		assert.equal(noView.code, 2);
		assert.match(noView.stderr, /add --as view/);
		const noFrom = await compile("wine-xgb", [
			"--dialect",
			"duckdb",
			"--as",
			"view",
			"--json",
		]);
		assert.equal(noFrom.code, 2);
		assert.equal(
			(JSON.parse(noFrom.stdout) as { code: string }).code,
			"MLSHIP_INVALID_ARGUMENT",
		);
	});
});

describe("BigQuery text", () => {
	const { Parser } = NodeSqlParser;
	const parser = new Parser();
	it("every fixture's BigQuery view and function body parse as BigQuery SQL", async () => {
		for (const f of [...TREE_FIXTURES, ...ONNX_TREE_FIXTURES]) {
			const b = await readBundle(bundleDir(f));
			const view = compileBundle(b, {
				dialect: "bigquery",
				name: "proj.ds.scored",
				as: "view",
				from: "proj.ds.rows",
				keep: ["id"],
			});
			assert.doesNotThrow(
				() => parser.astify(view.sql, { database: "bigquery" }),
				`${f} view`,
			);
			const fn = compileBundle(b, { dialect: "bigquery", name: "ds.score" });
			// node-sql-parser has no CREATE FUNCTION for BigQuery: the body is parsed, the header checked here.
			assert.match(
				fn.sql,
				/^CREATE OR REPLACE FUNCTION `ds`\.`score`\((`[^`]+` (FLOAT64|STRING)(, )?)+\)\nRETURNS (FLOAT64|STRUCT<`label` INT64, `probabilities` ARRAY<FLOAT64>>) AS \(\(\n/,
			);
			assert.ok(fn.sql.endsWith(`${fn.query}));\n`));
			assert.doesNotThrow(
				() => parser.astify(fn.query, { database: "bigquery" }),
				`${f} function body`,
			);
		}
		// The check can fail: a cut statement does not parse.
		const b = await readBundle(bundleDir("wine-xgb"));
		const view = compileBundle(b, {
			dialect: "bigquery",
			name: "v",
			as: "view",
			from: "t",
		});
		assert.throws(() =>
			parser.astify(view.sql.slice(0, -40), { database: "bigquery" }),
		);
	});
});

describe("missing values", () => {
	it("DuckDB takes NaN as missing, like NULL (the runtime's rule)", async () => {
		const b = await readBundle(bundleDir("trees/breast-cancer-xgb-missing"));
		const c = compileBundle(b, { dialect: "duckdb", name: "m" });
		await withDuckDB(async (conn) => {
			await conn.run(c.sql);
			const rec = golden("trees/breast-cancer-xgb-missing")
				.records[0] as Record<string, number | null>;
			const args = (nan: boolean) =>
				c.columns
					.map((col) =>
						rec[col.name] === null
							? nan
								? "'NaN'::DOUBLE"
								: "NULL"
							: `${rec[col.name]}::DOUBLE`,
					)
					.join(", ");
			assert.ok(Object.values(rec).includes(null), "the row has missing cells");
			const r = await conn.runAndReadAll(
				`SELECT m(${args(true)}) AS a, m(${args(false)}) AS b`,
			);
			const row = r.getRowObjectsJson()[0] as {
				a: { probabilities: number[] };
				b: { probabilities: number[] };
			};
			assert.deepEqual(row.a, row.b);
			const want = (
				golden("trees/breast-cancer-xgb-missing").expected
					.probabilities as number[][]
			)[0] as number[];
			row.b.probabilities.forEach((p, i) => {
				assertClose(p, want[i] as number, `probabilities[${i}]`);
			});
		});
	});
});

describe("split bounds (float32 thresholds)", () => {
	const f32 = new Float32Array(1);
	const u32 = new Uint32Array(f32.buffer);
	const next32 = (x: number) => {
		f32[0] = x;
		u32[0] = (u32[0] as number) + 1;
		return f32[0] as number;
	};
	it("fround(x) <= t holds up to the midpoint to the next float32, included when t's last bit is even (ties to even)", () => {
		const even = 0.5; // mantissa 0
		const mid = (even + next32(even)) / 2;
		assert.deepEqual(
			monotone((x) => Math.fround(x) <= even),
			[[MIN, mid]],
		);
		const odd = next32(0.5);
		const midOdd = (odd + next32(odd)) / 2;
		const [[, hi]] = monotone((x) => Math.fround(x) <= odd) as [
			[number, number],
		];
		assert.ok(
			hi < midOdd && Math.fround(hi) === odd && Math.fround(midOdd) !== odd,
			`bound ${hi} below ${midOdd}`,
		);
	});
	it("categories become runs: trunc(x) in {1, 2, 3, 7} is [1, 4) and [7, 8); negatives close toward zero", () => {
		const id = (x: number) => x;
		const iv = inCategories(id, [7, 1, 3, 2]);
		assert.equal(iv.length, 2);
		assert.equal(iv[0]?.[0], 1);
		assert.ok((iv[0]?.[1] as number) < 4 && (iv[0]?.[1] as number) > 3.9999999);
		assert.equal(iv[1]?.[0], 7);
		const neg = inCategories(id, [-1, 0]);
		assert.equal(neg.length, 1);
		assert.ok(
			(neg[0]?.[0] as number) > -2 && (neg[0]?.[0] as number) < -1.9999999,
		);
		assert.ok(
			(neg[0]?.[1] as number) < 1 && (neg[0]?.[1] as number) > 0.9999999,
		);
	});
});

describe("every split mode (ONNX ai.onnx.ml opset 5 TreeEnsemble)", () => {
	it("LT/LE/EQ/NEQ/member-set splits with NaN give onnxruntime's outputs in DuckDB and SQLite views", async () => {
		const dir = fileURLToPath(new URL("../fixtures/onnx", import.meta.url));
		const model = readTreeModel(
			readFileSync(`${dir}/tree-ensemble-v5.onnx`),
			"tree-ensemble-v5.onnx",
		);
		const g = JSON.parse(
			readFileSync(`${dir}/tree-ensemble-v5.json`, "utf8"),
		) as { X: (number | null)[][]; Y: number[][] };
		const manifest = { signature: model.signature };
		const want = g.Y.flat();
		const check = (rows: Record<string, unknown>[], where: string) => {
			const got = rows.flatMap((r) => {
				const y = r.Y;
				return (typeof y === "string" ? JSON.parse(y) : y) as number[];
			});
			assert.equal(got.length, want.length, where);
			got.forEach((v, i) => {
				assertClose(
					v,
					want[i] as number,
					`${where} Y[${i}] (X ${JSON.stringify(g.X[Math.floor(i / 2)])})`,
				);
			});
		};
		const cols = ["X_0", "X_1", "X_2"];
		const valuesSql = g.X.map(
			(x, i) =>
				`(${i}, ${x.map((v) => (v === null ? "NULL" : String(v))).join(", ")})`,
		).join(", ");
		const duck = compileTreeSql(
			{ model, manifest },
			{ dialect: "duckdb", name: "v", as: "view", from: "t", keep: ["i"] },
		);
		assert.deepEqual(
			duck.columns.map((c) => c.name),
			cols,
		);
		await withDuckDB(async (conn) => {
			await conn.run(
				`CREATE TABLE t AS SELECT * FROM (VALUES ${valuesSql}) AS v(i, X_0, X_1, X_2)`,
			);
			await conn.run(duck.sql);
			const r = await conn.runAndReadAll("SELECT Y FROM v ORDER BY i");
			check(r.getRowObjectsJson(), "duckdb");
		});
		const lite = new DatabaseSync(":memory:");
		try {
			const sv = compileTreeSql(
				{ model, manifest },
				{ dialect: "sqlite", name: "v", as: "view", from: "t", keep: ["i"] },
			);
			lite.exec("CREATE TABLE t (i INTEGER, X_0 REAL, X_1 REAL, X_2 REAL)");
			lite.exec(`INSERT INTO t VALUES ${valuesSql}`);
			lite.exec(sv.sql);
			check(
				lite.prepare("SELECT Y FROM v ORDER BY i").all() as Record<
					string,
					unknown
				>[],
				"sqlite",
			);
		} finally {
			lite.close();
		}
	});
});

describe("names", () => {
	it("quotes names with quotes and dots inside parts; refuses a PostgreSQL name over 63 bytes", async () => {
		const b = await readBundle(bundleDir("trees/iris-tree-pmml"));
		const c = compileBundle(b, {
			dialect: "duckdb",
			name: 'my schema.the "model"',
		});
		assert.match(
			c.sql,
			/^CREATE OR REPLACE MACRO "my schema"\."the ""model"""\(/,
		);
		const bq = compileBundle(b, { dialect: "bigquery", name: "p.d.f`x" });
		assert.match(bq.sql, /^CREATE OR REPLACE FUNCTION `p`\.`d`\.`f\\`x`\(/);
		assert.throws(
			() => compileBundle(b, { dialect: "postgres", name: "x".repeat(64) }),
			/is 64 bytes; PostgreSQL keeps only the first 63: choose a shorter --name/,
		);
		assert.ok(compileBundle(b, { dialect: "postgres", name: "x".repeat(63) }));
	});
});
