// Models as SQL functions in DuckDB and SQLite: golden outputs for every fixture, the NULL rule, and errors that name the feature.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { readBundle } from "../../src/bundle/bundle.ts";
import { registerDuckDBFunctions } from "../../src/sql/duckdb.ts";
import type { SqlModels } from "../../src/sql/models.ts";
import { registerSqliteFunctions } from "../../src/sql/sqlite.ts";
import { writeTable } from "../helpers/files.ts";
import {
	assertOutputMatches,
	bundleDir,
	FIXTURES,
	golden,
} from "../helpers/fixtures.ts";

const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;

interface Case {
	name: string;
	ref: string;
	features: string[];
	labels: readonly string[] | undefined;
	records: Record<string, unknown>[];
	expected: Record<string, (number | number[])[]>;
}

const cases: Case[] = [];
let dir: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-sql-test-"));
	for (const name of FIXTURES) {
		const b = await readBundle(bundleDir(name));
		const g = golden(name);
		cases.push({
			name,
			ref: bundleDir(name),
			features: (b.manifest.features ?? []).map((f) => f.name),
			labels: b.manifest.labels,
			records: g.records,
			expected: g.expected,
		});
	}
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

/** The calls that produce each golden output, and how to read the value back. */
function callsFor(c: Case, args: string): Record<string, string> {
	const ref = `'${c.ref}'`;
	const calls: Record<string, string> = {};
	for (const out of Object.keys(c.expected)) {
		if (out === "label") {
			calls.label = `predict(${ref}, ${args})`;
			calls.label_name = `predict_label(${ref}, ${args})`;
		} else if (out === "probabilities")
			calls.probabilities = `predict_proba(${ref}, ${args})`;
		else calls[out] = `predict(${ref}, ${args})`;
		calls[`output_${out}`] = `predict_output(${ref}, '${out}', ${args})`;
	}
	return calls;
}

function checkGolden(
	c: Case,
	rows: Record<string, unknown>[],
	parse: (v: unknown) => unknown,
): void {
	for (const [out, want] of Object.entries(c.expected)) {
		assertOutputMatches(
			c.name,
			out,
			rows.flatMap((r) => parse(r[out]) as number | number[]),
			want,
		);
		assertOutputMatches(
			c.name,
			`output_${out}`,
			rows.flatMap((r) => parse(r[`output_${out}`]) as number[]),
			want,
		);
		if (out === "label") {
			assert.ok(c.labels);
			assert.deepEqual(
				rows.map((r) => r.label_name),
				(want as number[]).map((k) => c.labels?.[k]),
				`${c.name}: predict_label`,
			);
		}
	}
}

describe("DuckDB functions", () => {
	let db: DuckDBInstance;
	let conn: DuckDBConnection;
	let models: SqlModels;
	before(async () => {
		db = await DuckDBInstance.create(":memory:");
		conn = await db.connect();
		models = await registerDuckDBFunctions(conn, {
			models: FIXTURES.map(bundleDir),
		});
	});
	after(async () => {
		conn.closeSync();
		db.closeSync();
		await models.close();
	});

	it("return the golden outputs of every fixture", async () => {
		for (const c of cases) {
			const file = join(dir, `${c.name}.parquet`);
			await writeTable(
				file,
				c.records.map((r, k) => ({ row_id: k, ...r })),
			);
			const calls = callsFor(c, c.features.map(quote).join(", "));
			const select = Object.entries(calls)
				.map(([k, v]) => `${v} AS ${quote(k)}`)
				.join(", ");
			const r = await conn.runAndReadAll(
				`SELECT row_id, ${select} FROM '${file}' ORDER BY row_id`,
			);
			const rows = r.getRowObjectsJS() as Record<string, unknown>[];
			assert.equal(rows.length, c.records.length);
			checkGolden(c, rows, (v) => v);
		}
	});

	it("call the model once per DuckDB chunk, and keep rows aligned across many chunks", async (t) => {
		const c = cases.find((x) => x.name === "iris-logreg") as Case;
		const model = models.get(c.ref, "predict");
		const file = join(dir, "iris-many.parquet");
		const n = c.records.length;
		const copies = Math.ceil(10_000 / n);
		const rows = Array.from({ length: copies * n }, (_, i) => ({
			row_id: i,
			...c.records[i % n],
		}));
		await writeTable(file, rows);
		const before = model.calls;
		const r = await conn.runAndReadAll(
			`SELECT row_id, predict('${c.ref}', ${c.features.join(", ")}) AS label FROM '${file}' ORDER BY row_id`,
		);
		// DuckDB hands over up to 2048 rows per call (parallel scans may cut a few chunks short).
		const calls = model.calls - before;
		const chunks = Math.ceil(rows.length / 2048);
		t.diagnostic(`${calls} model calls for ${rows.length} rows`);
		assert.ok(
			calls >= chunks && calls <= 2 * chunks,
			`${calls} model calls for ${rows.length} rows`,
		);
		const got = r.getRowObjectsJS().map((o) => Number(o.label));
		assert.equal(got.length, copies * n);
		assert.deepEqual(
			got,
			Array.from(
				{ length: copies * n },
				(_, i) => (c.expected.label as number[])[i % n],
			),
		);
	});

	it("give NULL for a row with a NULL feature, and score the other rows", async () => {
		const c = cases.find((x) => x.name === "iris-logreg") as Case;
		const rec = c.records[0] as Record<string, number>;
		const r = await conn.runAndReadAll(
			`SELECT k, predict('${c.ref}', CASE WHEN k = 1 THEN NULL ELSE ${rec.sepal_length} END, ${rec.sepal_width}, ${rec.petal_length}, ${rec.petal_width}) AS p,
			        predict_proba('${c.ref}', NULL, 1, 2, 3) AS q FROM range(3) t(k) ORDER BY k`,
		);
		const rows = r.getRowObjectsJS();
		assert.deepEqual(
			rows.map((x) => x.p),
			[c.expected.label?.[0], null, c.expected.label?.[0]],
		);
		assert.deepEqual(
			rows.map((x) => x.q),
			[null, null, null],
		);
	});

	it("fail with the feature named for a wrong-typed value", async () => {
		const c = cases.find((x) => x.name === "iris-logreg") as Case;
		await assert.rejects(
			conn.runAndReadAll(`SELECT predict('${c.ref}', 1.0, 'wide', 1.0, 1.0)`),
			/feature 'sepal_width' \(argument 3\): expected a number \(FP32\), got "wide"/,
		);
	});

	it("refuse a wrong number of features and a model that is not loaded", async () => {
		const c = cases.find((x) => x.name === "iris-logreg") as Case;
		await assert.rejects(
			conn.runAndReadAll(`SELECT predict('${c.ref}', 1.0, 2.0)`),
			/takes 4 feature arguments after the model \(sepal_length, sepal_width, petal_length, petal_width\), got 2/,
		);
		await assert.rejects(
			conn.runAndReadAll("SELECT predict('nope@production', 1.0)"),
			/model 'nope@production' is not loaded/,
		);
		await assert.rejects(
			conn.runAndReadAll(
				`SELECT predict_label('${bundleDir("diabetes-rf")}', 1,2,3,4,5,6,7,8,9,10)`,
			),
			/has no class labels/,
		);
	});

	it("take the model from a column only when every row names the same one, whether its strings are shared or copies", async () => {
		const c = cases.find((x) => x.name === "iris-logreg") as Case;
		const rec = c.records[0] as Record<string, number>;
		const args = `${rec.sepal_length}, ${rec.sepal_width}, ${rec.petal_length}, ${rec.petal_width}`;
		// One reference, built per row (equal strings, each its own copy): scored.
		const same = await conn.runAndReadAll(
			`SELECT count(predict(concat('${c.ref}', repeat('', k::INTEGER)), ${args})) AS n FROM range(3000) t(k)`,
		);
		assert.equal(Number(same.getRowObjectsJS()[0]?.n), 3000);
		// Another model from row 1500 on, within one chunk: refused, naming both.
		const other = bundleDir("breast-cancer-gbdt");
		await assert.rejects(
			conn.runAndReadAll(
				`SELECT predict(CASE WHEN k < 1500 THEN '${c.ref}' ELSE '${other}' END, ${args}) FROM range(2000) t(k)`,
			),
			/the model must be the same for every row/,
		);
	});

	it("reject an unknown category of a text feature, naming it", async () => {
		const c = cases.find((x) => x.name === "diabetes-sex-ridge") as Case;
		const args = c.features.map((f) => (f === "sex" ? "'other'" : "1.0"));
		await assert.rejects(
			conn.runAndReadAll(`SELECT predict('${c.ref}', ${args.join(", ")})`),
			/feature 'sex' \(argument 3\): "other" is not one of the allowed categories/,
		);
	});
});

describe("SQLite functions", () => {
	let db: DatabaseSync;
	let models: SqlModels;
	before(async () => {
		db = new DatabaseSync(":memory:");
		models = await registerSqliteFunctions(db, {
			models: FIXTURES.map(bundleDir),
		});
	});
	after(async () => {
		db.close();
		await models.close();
	});

	it("return the golden outputs of every fixture", () => {
		for (const c of cases) {
			const table = quote(c.name);
			db.exec(
				`CREATE TABLE ${table} (row_id INTEGER PRIMARY KEY, ${c.features.map(quote).join(", ")})`,
			);
			const ins = db.prepare(
				`INSERT INTO ${table} VALUES (?, ${c.features.map(() => "?").join(", ")})`,
			);
			c.records.forEach((rec, k) => {
				ins.run(k, ...c.features.map((f) => rec[f] as number | string));
			});
			const calls = callsFor(c, c.features.map(quote).join(", "));
			const select = Object.entries(calls)
				.map(([k, v]) => `${v} AS ${quote(k)}`)
				.join(", ");
			const rows = db
				.prepare(`SELECT row_id, ${select} FROM ${table} ORDER BY row_id`)
				.all() as Record<string, unknown>[];
			assert.equal(rows.length, c.records.length);
			checkGolden(c, rows, (v) =>
				typeof v === "string" && v.startsWith("[") ? JSON.parse(v) : v,
			);
		}
	});

	it("give NULL for a NULL feature and name the feature of a wrong-typed value", () => {
		const c = cases.find((x) => x.name === "iris-logreg") as Case;
		const row = db
			.prepare(
				`SELECT predict_label('${c.ref}', NULL, 1, 2, 3) AS a, predict_proba('${c.ref}', 1, 2, NULL, 3) AS b`,
			)
			.get() as Record<string, unknown>;
		assert.equal(row.a, null);
		assert.equal(row.b, null);
		assert.throws(
			() => db.prepare(`SELECT predict('${c.ref}', 1, 2, 'long', 3)`).get(),
			/feature 'petal_length' \(argument 4\): expected a number \(FP32\), got "long"/,
		);
	});
});
