// `mlship batch run` as a real process against real SQLite files and a real PostgreSQL server: golden outputs, error sinks, exit codes.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { mlship, readTable, toCsv, writeTable } from "../helpers/files.ts";
import { assertOutputMatches, bundleDir, golden } from "../helpers/fixtures.ts";

const MODEL = "breast-cancer-gbdt";
const g = golden(MODEL);
const FEATURES = Object.keys(g.records[0] as object);
const LABELS = ["malignant", "benign"];
const rows = g.records.map((r, k) => ({ id: 1000 + k, ...r }));

let dir: string;
let registry: string;
let server: PostgresServer;
let dbUrl: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-batch-test-"));
	registry = `sqlite:${join(dir, "registry.db")}`;
	const reg = await mlship([
		"models",
		"register",
		bundleDir(MODEL),
		"--alias",
		"production",
		"--registry",
		registry,
	]);
	assert.equal(reg.code, 0, reg.stderr);
	server = await startPostgres();
	dbUrl = await createDatabase(server.url, uniqueDatabaseName("batch"));
	const c = new pg.Client({ connectionString: dbUrl });
	await c.connect();
	try {
		await c.query(
			`CREATE TABLE features (id bigint PRIMARY KEY, ${FEATURES.map((f) => `"${f}" double precision`).join(", ")})`,
		);
		await c.query(
			`INSERT INTO features SELECT * FROM json_populate_recordset(NULL::features, $1)`,
			[JSON.stringify(rows)],
		);
	} finally {
		await c.end();
	}
});
after(async () => {
	await server?.stop();
	await rm(dir, { recursive: true, force: true });
});

const labels = (g.expected.label as number[]).map((k) => LABELS[k]);

/** Scored rows (any sink) hold the golden outputs, ids in order, and the model name and version. */
function checkScored(out: Record<string, unknown>[]): void {
	const sorted = [...out].sort((a, b) => Number(a.id) - Number(b.id));
	assert.equal(sorted.length, rows.length);
	assert.deepEqual(
		sorted.map((o) => Number(o.id)),
		rows.map((r) => r.id),
	);
	assert.deepEqual(
		sorted.map((o) => o.label),
		labels,
	);
	assertOutputMatches(
		MODEL,
		"probabilities",
		sorted.flatMap((o) => LABELS.map((l) => Number(o[`probabilities_${l}`]))),
		g.expected.probabilities as number[][],
	);
	for (const o of sorted) {
		assert.equal(o.model, MODEL);
		assert.equal(Number(o.model_version), 1);
	}
}

async function pgRows(sql: string): Promise<Record<string, unknown>[]> {
	const c = new pg.Client({ connectionString: dbUrl });
	await c.connect();
	try {
		return (await c.query(sql)).rows;
	} finally {
		await c.end();
	}
}

function run(args: string[]) {
	return mlship([
		"batch",
		"run",
		"-m",
		`${MODEL}@production`,
		"--registry",
		registry,
		"--keep",
		"id",
		"--json",
		...args,
	]);
}

describe("mlship batch run", () => {
	it("PostgreSQL table → PostgreSQL table (created) with ids, model name and version: golden outputs", async () => {
		const r = await run([
			"-s",
			`${dbUrl}?table=features`,
			"-o",
			`${dbUrl}?table=scores`,
			"--chunk-rows",
			"50",
		]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_in, rows.length);
		assert.equal(s.rows_scored, rows.length);
		assert.equal(s.rows_rejected, 0);
		assert.equal(s.model_version, 1);
		checkScored(await pgRows("SELECT * FROM scores"));
	});

	it("SQLite query → SQLite table, and PostgreSQL query → Parquet: golden outputs", async () => {
		const db = join(dir, "app.db");
		const sq = new DatabaseSync(db);
		sq.exec(
			`CREATE TABLE features (id INTEGER PRIMARY KEY, ${FEATURES.map((f) => `"${f}" REAL`).join(", ")})`,
		);
		const ins = sq.prepare(
			`INSERT INTO features VALUES (${["id", ...FEATURES].map(() => "?").join(", ")})`,
		);
		for (const row of rows)
			ins.run(
				...["id", ...FEATURES].map(
					(f) => (row as Record<string, number>)[f] as number,
				),
			);
		sq.close();
		const a = await run([
			"-s",
			`sqlite:${db}?query=SELECT * FROM features WHERE id >= 0`,
			"-o",
			`sqlite:${db}?table=scores`,
		]);
		assert.equal(a.code, 0, a.stderr + a.stdout);
		const check = new DatabaseSync(db, { readOnly: true });
		checkScored(
			check.prepare("SELECT * FROM scores").all() as Record<string, unknown>[],
		);
		check.close();

		const out = join(dir, "from-pg.parquet");
		const b = await run([
			"-s",
			`${dbUrl}?query=SELECT * FROM features ORDER BY id`,
			"-o",
			out,
		]);
		assert.equal(b.code, 0, b.stderr + b.stdout);
		checkScored(await readTable(out));
	});

	it("a large SQLite table scored into the same file (one connection, no lock-out)", {
		timeout: 120_000,
	}, async () => {
		const db = join(dir, "big.db");
		const sq = new DatabaseSync(db);
		sq.exec(
			`CREATE TABLE big (id INTEGER PRIMARY KEY, ${FEATURES.map((f) => `"${f}" REAL`).join(", ")})`,
		);
		sq.exec(
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) INSERT INTO big SELECT i, ${FEATURES.map((_, k) => `((i * ${k + 7}) % 1000) / 10.0`).join(", ")} FROM n`,
		);
		sq.close();
		const r = await run([
			"-s",
			`sqlite:${db}?table=big`,
			"-o",
			`sqlite:${db}?table=big_scores`,
		]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		assert.equal(JSON.parse(r.stdout).rows_scored, 300000);
		const check = new DatabaseSync(db, { readOnly: true });
		const n = check
			.prepare("SELECT count(*) AS n, count(DISTINCT id) AS d FROM big_scores")
			.get() as { n: number; d: number };
		check.close();
		assert.deepEqual({ ...n }, { n: 300000, d: 300000 });
	});

	it("a glob of CSV files and a DuckDB query → files: golden outputs", async () => {
		const half = Math.ceil(rows.length / 2);
		await writeTable(join(dir, "part-1.csv"), rows.slice(0, half));
		await writeTable(join(dir, "part-2.csv"), rows.slice(half));
		const a = await run([
			"-s",
			join(dir, "part-*.csv"),
			"-o",
			join(dir, "glob.jsonl"),
		]);
		assert.equal(a.code, 0, a.stderr + a.stdout);
		checkScored(await readTable(join(dir, "glob.jsonl")));
		const b = await run([
			"-s",
			`duckdb:SELECT * FROM '${join(dir, "part-*.csv")}' WHERE id >= 0`,
			"-o",
			join(dir, "query.parquet"),
		]);
		assert.equal(b.code, 0, b.stderr + b.stdout);
		checkScored(await readTable(join(dir, "query.parquet")));
	});

	it("a ragged CSV row and a wrong-typed value land in the error sink with row numbers; the rest is scored", async () => {
		const csv = toCsv(rows.slice(0, 6)).split("\n");
		// line 3 (2nd data row) loses a field; row 5 (line 6) gets text in a number column
		csv[2] = (csv[2] as string).split(",").slice(0, -1).join(",");
		const cells = (csv[5] as string).split(",");
		cells[3] = "lots";
		csv[5] = cells.join(",");
		const input = join(dir, "bad.csv");
		await writeFile(input, csv.join("\n"));
		const sq = join(dir, "bad.db");
		const r = await run([
			"-s",
			input,
			"-o",
			`sqlite:${sq}?table=scores`,
			"--on-error",
			"skip",
		]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_in, 6);
		assert.equal(s.rows_scored, 4);
		assert.equal(s.rows_rejected, 2);
		const db = new DatabaseSync(sq, { readOnly: true });
		const errs = db
			.prepare(
				`SELECT "row", line, "column", error, data FROM scores_errors ORDER BY line`,
			)
			.all() as Record<string, unknown>[];
		const scored = db.prepare("SELECT id FROM scores ORDER BY id").all() as {
			id: number;
		}[];
		db.close();
		assert.equal(errs.length, 2);
		assert.equal(errs[0]?.line, 3);
		assert.match(String(errs[0]?.error), /column|field|Expected/i);
		assert.equal(errs[1]?.line, 6);
		assert.equal(
			errs[1]?.row,
			4,
			"4th row DuckDB delivered (the ragged line is not a row)",
		);
		assert.equal(errs[1]?.column, FEATURES[2]);
		assert.match(
			String(errs[1]?.error),
			/expected a number \(FP32\), got "lots"/,
		);
		assert.equal(JSON.parse(String(errs[1]?.data)).id, rows[4]?.id);
		assert.deepEqual(
			scored.map((x) => x.id),
			[rows[0], rows[2], rows[3], rows[5]].map((x) => x?.id),
		);

		// The same file with a JSON-lines error sink
		const jsonl = join(dir, "bad.errors.jsonl");
		const j = await run([
			"-s",
			input,
			"-o",
			join(dir, "bad-out.csv"),
			"--on-error",
			"skip",
			"--errors",
			jsonl,
		]);
		assert.equal(j.code, 0, j.stderr);
		const lines = (await readFile(jsonl, "utf8"))
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		assert.deepEqual(
			lines.map((l) => l.line),
			[3, 6],
		);
		assert.equal(lines[1].row, 4);
	});

	it("with --on-error fail a bad row stops the job with its row and column, and nothing is written", async () => {
		const input = join(dir, "bad-fail.jsonl");
		const bad = rows.slice(0, 3).map((r) => ({ ...r }));
		(bad[1] as Record<string, unknown>)[FEATURES[0] as string] = "wide";
		await writeTable(input, bad);
		const r = await run(["-s", input, "-o", `${dbUrl}?table=never_written`]);
		assert.equal(r.code, 2);
		assert.match(
			JSON.parse(r.stdout).error,
			new RegExp(`row 2, column '${FEATURES[0]}'`),
		);
		const t = await pgRows("SELECT to_regclass('never_written') AS t");
		assert.equal(t[0]?.t, null);
		const many = await run([
			"-s",
			input,
			"-o",
			join(dir, "never.parquet"),
			"--on-error",
			"skip",
			"--max-rejected",
			"0",
		]);
		assert.equal(many.code, 2);
		assert.match(
			JSON.parse(many.stdout).error,
			/more than --max-rejected 0; nothing written/,
		);
	});

	it("exit codes: 6 when PostgreSQL is unreachable, 3 for a missing file or table, 2 for a bad source URI, and --help has examples", async () => {
		const down = await run([
			"-s",
			"postgres://mlship@127.0.0.1:1/x?table=features",
			"-o",
			join(dir, "x.parquet"),
		]);
		assert.equal(down.code, 6, down.stdout);
		const noFile = await run([
			"-s",
			join(dir, "nothing-*.parquet"),
			"-o",
			join(dir, "x.parquet"),
		]);
		assert.equal(noFile.code, 3, noFile.stdout);
		assert.match(
			JSON.parse(noFile.stdout).error,
			/cannot read .*nothing-\*\.parquet/,
		);
		const noTable = await run([
			"-s",
			`${dbUrl}?table=no_such_table`,
			"-o",
			join(dir, "x.parquet"),
		]);
		assert.equal(noTable.code, 3, noTable.stdout);
		assert.match(JSON.parse(noTable.stdout).error, /no_such_table/);
		const badUri = await run([
			"-s",
			"sqlite:x.db",
			"-o",
			join(dir, "x.parquet"),
		]);
		assert.equal(badUri.code, 2);
		assert.match(
			JSON.parse(badUri.stdout).error,
			/exactly one of \?table=NAME or \?query=/,
		);
		const help = await mlship(["batch", "run", "--help"]);
		assert.equal(help.code, 0);
		assert.match(help.stdout, /Examples:\n\s+\$ mlship batch run/);
	});
});
