// Hostile SQL names (quotes, semicolons, `$$`, unicode, names past PostgreSQL's 63 bytes) on every path that puts a
// table, column or type name into SQL: pg attach/worker, batch PostgreSQL/SQLite sources and sinks, pending rows, and
// DuckDB file columns. Each name either round-trips as itself or is refused with a message naming it; nothing runs.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { runPending } from "../../src/batch/pending.ts";
import { runBatch } from "../../src/batch/run.ts";
import { loadModel, type Model } from "../../src/model.ts";
import { dollarQuote, pgIdent, sqlIdent } from "../../src/protocol/sql.ts";
import { attach, detach, runAttachedWorker } from "../../src/sql/pg-attach.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { readTable, writeTable } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const g = golden("iris-logreg");
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
const ROWS = g.records.slice(0, 5) as Record<string, number>[];

/** Names that must work as themselves: quoting keeps every character part of the name. */
const HOSTILE_OK: [string, string][] = [
	["double quote", 'a"b'],
	["quote closing the identifier", 'x"; DROP TABLE victim; --'],
	["semicolon and comment", "k;DROP TABLE victim;--"],
	["dollar quote", "k$$;CREATE TABLE pwned();SELECT $$"],
	["single quote", "o'brien"],
	["unicode", "Ünïcødé_列_🙂"],
	["spaces and case", "Mixed Case Name"],
	["63 bytes (PostgreSQL's limit)", "n".repeat(63)],
	["62 bytes of two-byte characters", "é".repeat(31)],
];
/** Names that must be refused on PostgreSQL (it would silently truncate them to 63 bytes). */
const TOO_LONG: [string, string][] = [
	["64 bytes", "n".repeat(64)],
	["64 bytes of two-byte characters", "é".repeat(32)],
	["backslash and 70 bytes", `\\${"x".repeat(69)}`],
];

let server: PostgresServer;
let dbUrl: string;
let db: pg.Client;
let dir: string;
let model: Model;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-ident-"));
	server = await startPostgres();
	dbUrl = await createDatabase(server.url, uniqueDatabaseName("ident"));
	db = new pg.Client({ connectionString: dbUrl });
	await db.connect();
	await db.query("CREATE TABLE victim (x int)");
	model = await loadModel(bundleDir("iris-logreg"), { mode: "inline" });
});
after(async () => {
	await model?.close();
	await db?.end();
	await server?.stop();
	if (dir) await rm(dir, { recursive: true, force: true });
});

async function tableExists(name: string): Promise<boolean> {
	const r = await db.query("SELECT to_regclass($1) AS t", [pgIdent(name)]);
	return r.rows[0].t !== null;
}

async function publicTables(): Promise<string[]> {
	const r = await db.query(
		"SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
	);
	return r.rows.map((x) => x.tablename);
}

async function createIris(table: string, key: string): Promise<void> {
	await db.query(
		`CREATE TABLE ${pgIdent(table)} (${pgIdent(key)} bigint PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")})`,
	);
	for (const [i, r] of ROWS.entries())
		await db.query(
			`INSERT INTO ${pgIdent(table)} VALUES ($1, $2, $3, $4, $5)`,
			[i, ...FEATURES.map((f) => r[f])],
		);
}

describe("the identifier helpers", () => {
	it("quote every hostile name so it reads back as itself, and refuse what PostgreSQL would truncate", () => {
		for (const [, name] of HOSTILE_OK) {
			assert.equal(pgIdent(name), `"${name.replaceAll('"', '""')}"`);
			assert.equal(sqlIdent(name), `"${name.replaceAll('"', '""')}"`);
		}
		for (const [what, name] of TOO_LONG) {
			assert.throws(
				() => pgIdent(name, "--column"),
				/--column .* bytes; PostgreSQL keeps only the first 63/,
				what,
			);
			// SQLite and DuckDB keep long names whole.
			assert.equal(sqlIdent(name), `"${name.replaceAll('"', '""')}"`);
		}
		for (const bad of ["", "a\0b"]) {
			assert.throws(() => pgIdent(bad), /MLSHIP|name/);
			assert.throws(() => sqlIdent(bad), /MLSHIP|name/);
		}
	});

	it("dollarQuote picks a tag the body does not contain", () => {
		assert.equal(dollarQuote("x"), "$mlship$x$mlship$");
		assert.equal(dollarQuote("a $mlship$ b"), "$mlship0$a $mlship$ b$mlship0$");
		assert.equal(dollarQuote("ends $mlship"), "$mlship0$ends $mlship$mlship0$");
	});
});

describe("pg attach with hostile names", () => {
	it("a key column named to close the $$ body does not run its statement even with check_function_bodies=off", async () => {
		// A database owner can turn the check off; then a function body is not parsed at CREATE time, and a key
		// named `k$$;…` used to end the $$-quoted body and run the statement after it.
		const dbName = new URL(dbUrl).pathname.slice(1);
		await db.query(
			`ALTER DATABASE ${pgIdent(dbName)} SET check_function_bodies = off`,
		);
		try {
			const key = "k$$;CREATE TABLE pwned();SELECT $$";
			await createIris("inj", key);
			await attach({
				db: dbUrl,
				table: "inj",
				column: "species",
				model: bundleDir("iris-logreg"),
				key,
				backfill: true,
			});
			assert.equal(
				await tableExists("pwned"),
				false,
				"the injected CREATE TABLE ran",
			);
			// And the trigger works: the worker fills the column for the backfilled rows.
			const w = await runAttachedWorker({
				db: dbUrl,
				table: "inj",
				column: "species",
				once: true,
			});
			assert.equal(w.rows_scored, ROWS.length);
			await db.query(`INSERT INTO inj VALUES (99, 5.1, 3.5, 1.4, 0.2)`);
			const q = await db.query(
				"SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'mlship_queue_inj%'",
			);
			assert.equal(q.rows[0].n, 1);
		} finally {
			await db.query(
				`ALTER DATABASE ${pgIdent(dbName)} RESET check_function_bodies`,
			);
		}
	});

	for (const [what, name] of HOSTILE_OK)
		it(`table, prediction column and key all named ${what}`, async () => {
			const table = `t ${name}`.slice(0, 63);
			const tname = Buffer.byteLength(table) > 63 ? name : table;
			await createIris(tname, name);
			// The prediction column is a different column from the key: the same hostile name with a prefix.
			const column = `p${name}`.slice(0, 60);
			const a = await attach({
				db: dbUrl,
				table: tname,
				column,
				model: bundleDir("iris-logreg"),
				key: name,
				backfill: true,
			});
			assert.equal(a.key, name);
			assert.equal(a.backfilled, ROWS.length);
			const w = await runAttachedWorker({
				db: dbUrl,
				table: tname,
				column,
				once: true,
			});
			assert.equal(w.rows_scored, ROWS.length);
			const r = await db.query(
				`SELECT count(${pgIdent(column)})::int AS n FROM ${pgIdent(tname)}`,
			);
			assert.equal(r.rows[0].n, ROWS.length);
			await detach({ db: dbUrl, table: tname, column });
			assert.equal(await tableExists("victim"), true);
			assert.equal(await tableExists("pwned"), false);
			await db.query(`DROP TABLE ${pgIdent(tname)}`);
		});

	for (const [what, name] of TOO_LONG)
		it(`a ${what} column is refused before anything is created`, async () => {
			await createIris("longcol", "id");
			try {
				await assert.rejects(
					attach({
						db: dbUrl,
						table: "longcol",
						column: name,
						model: bundleDir("iris-logreg"),
					}),
					/bytes; PostgreSQL keeps only the first 63/,
				);
				const cols = await db.query(
					"SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'longcol'",
				);
				assert.equal(cols.rows[0].n, 5);
			} finally {
				await db.query("DROP TABLE longcol");
			}
		});
});

describe("batch sources and sinks with hostile names", () => {
	for (const [what, name] of HOSTILE_OK) {
		it(`PostgreSQL table and kept column named ${what}`, async () => {
			const src = `s${name}`.slice(0, 63);
			const srcName = Buffer.byteLength(src) > 63 ? name : src;
			await createIris(srcName, name);
			const dst = `d${name}`;
			const sinkTable = Buffer.byteLength(dst) > 56 ? "dst_long" : dst;
			const s = await runBatch(model, {
				source: `${dbUrl}?table=${encodeURIComponent(srcName)}`,
				sink: `${dbUrl}?table=${encodeURIComponent(sinkTable)}`,
				keep: [name],
			});
			assert.equal(s.rows_scored, ROWS.length);
			const r = await db.query(
				`SELECT ${pgIdent(name)} AS k FROM ${pgIdent(sinkTable)} ORDER BY 1`,
			);
			assert.deepEqual(
				r.rows.map((x) => Number(x.k)),
				ROWS.map((_, i) => i),
			);
			assert.equal(await tableExists("victim"), true);
			await db.query(`DROP TABLE ${pgIdent(srcName)}, ${pgIdent(sinkTable)}`);
		});

		it(`pending rows: table, key and mark column named ${what}`, async () => {
			const table = "pend";
			const mark = `m${name}`.slice(0, 60);
			const markName = Buffer.byteLength(mark) > 63 ? "marked" : mark;
			await createIris(table, name);
			await db.query(
				`ALTER TABLE pend ADD COLUMN ${pgIdent(markName)} timestamptz`,
			);
			const s = await runPending(model, {
				table: `${dbUrl}?table=pend`,
				sink: `${dbUrl}?table=pend_out`,
				key: name,
				markColumn: markName,
			});
			assert.equal(s.rows_scored, ROWS.length);
			const r = await db.query(
				`SELECT count(*)::int AS n FROM pend WHERE ${pgIdent(markName)} IS NOT NULL`,
			);
			assert.equal(r.rows[0].n, ROWS.length);
			await db.query("DROP TABLE pend, pend_out");
		});

		it(`SQLite table and kept column named ${what}`, async () => {
			const file = join(dir, "t.db");
			const sq = new DatabaseSync(file);
			try {
				sq.exec(
					`CREATE TABLE ${sqlIdent(name)} (${sqlIdent(name)} INTEGER, ${FEATURES.map((f) => `${f} REAL`).join(", ")})`,
				);
				const ins = sq.prepare(
					`INSERT INTO ${sqlIdent(name)} VALUES (?, ?, ?, ?, ?)`,
				);
				for (const [i, r] of ROWS.entries())
					ins.run(i, ...FEATURES.map((f) => r[f] as number));
			} finally {
				sq.close();
			}
			const s = await runBatch(model, {
				source: `sqlite:${file}?table=${encodeURIComponent(name)}`,
				sink: `sqlite:${file}?table=${encodeURIComponent(`out ${name}`)}`,
				keep: [name],
			});
			assert.equal(s.rows_scored, ROWS.length);
			const check = new DatabaseSync(file);
			try {
				const rows = check
					.prepare(
						`SELECT ${sqlIdent(name)} AS k FROM ${sqlIdent(`out ${name}`)}`,
					)
					.all();
				assert.deepEqual(
					rows.map((x) => Number(x.k)),
					ROWS.map((_, i) => i),
				);
			} finally {
				check.close();
			}
			await rm(file);
		});

		it(`DuckDB (Parquet) kept column named ${what}`, async () => {
			const input = join(dir, "in.parquet");
			const output = join(dir, "out.parquet");
			await writeTable(
				input,
				ROWS.map((r, i) => ({ [name]: i, ...r })),
			);
			const s = await runBatch(model, {
				source: input,
				sink: output,
				keep: [name],
			});
			assert.equal(s.rows_scored, ROWS.length);
			const out = await readTable(output);
			assert.deepEqual(
				out.map((x) => Number(x[name])),
				ROWS.map((_, i) => i),
			);
			await rm(input);
			await rm(output);
		});
	}

	for (const [what, name] of TOO_LONG)
		it(`a PostgreSQL sink table ${what} long is refused, not truncated`, async () => {
			await createIris("src_long", "id");
			const before = await publicTables();
			try {
				await assert.rejects(
					runBatch(model, {
						source: `${dbUrl}?table=src_long`,
						sink: `${dbUrl}?table=${encodeURIComponent(name)}`,
					}),
					/bytes; PostgreSQL keeps only the first 63/,
				);
				assert.deepEqual(await publicTables(), before);
			} finally {
				await db.query("DROP TABLE src_long");
			}
		});
});
