// Every batch source and sink runs the one contract suite: files (Parquet, CSV, JSON lines), DuckDB queries, SQLite and
// PostgreSQL tables and queries (a real server from the harness).

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { openSink, openSource } from "../../src/batch/run.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { readTable, writeTable } from "../helpers/files.ts";
import { ROWS, runSinkContract, runSourceContract } from "./contract.ts";

let dir: string;
let server: PostgresServer;
let dbUrl: string;
const dirReady = mkdtemp(join(tmpdir(), "mlship-contract-"));

before(async () => {
	dir = await dirReady;
	for (const ext of ["parquet", "csv", "jsonl"])
		await writeTable(join(dir, `rows.${ext}`), ROWS);
	const sq = new DatabaseSync(join(dir, "rows.db"));
	sq.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, x REAL, s TEXT)");
	const ins = sq.prepare("INSERT INTO rows VALUES (?, ?, ?)");
	for (const r of ROWS) ins.run(r.id, r.x, r.s);
	sq.close();
	server = await startPostgres();
	dbUrl = await createDatabase(server.url, uniqueDatabaseName("contract"));
	const c = new pg.Client({ connectionString: dbUrl });
	await c.connect();
	await c.query(
		"CREATE TABLE rows (id bigint PRIMARY KEY, x double precision, s text)",
	);
	await c.query(
		"INSERT INTO rows SELECT * FROM json_populate_recordset(NULL::rows, $1)",
		[JSON.stringify(ROWS)],
	);
	await c.end();
});
after(async () => {
	await server?.stop();
	await rm(await dirReady, { recursive: true, force: true });
});

describe("batch sources", () => {
	for (const ext of ["parquet", "csv", "jsonl"])
		runSourceContract(`${ext} file`, () =>
			openSource(join(dir, `rows.${ext}`)),
		);
	runSourceContract("glob of files", () =>
		openSource(join(dir, "row*.parquet")),
	);
	runSourceContract("DuckDB query", () =>
		openSource(
			`duckdb:SELECT * FROM '${join(dir, "rows.parquet")}' WHERE id > 0`,
		),
	);
	runSourceContract("SQLite table", () =>
		openSource(`sqlite:${join(dir, "rows.db")}?table=rows`),
	);
	runSourceContract("SQLite query", () =>
		openSource(
			`sqlite:${join(dir, "rows.db")}?query=SELECT * FROM rows WHERE id > 0`,
		),
	);
	runSourceContract("PostgreSQL table", () =>
		openSource(`${dbUrl}?table=rows`),
	);
	runSourceContract("PostgreSQL query", () =>
		openSource(`${dbUrl}?query=SELECT * FROM rows WHERE id > 0`),
	);
});

describe("batch sinks", () => {
	let n = 0;
	for (const ext of ["parquet", "csv", "jsonl"])
		runSinkContract(`${ext} file`, async () => {
			const path = join(dir, `out-${++n}.${ext}`);
			return {
				sink: await openSink(path),
				read: async () => (existsSync(path) ? readTable(path) : undefined),
			};
		});
	runSinkContract("SQLite table", async () => {
		const table = `out_${++n}`;
		const path = join(dir, "sink.db");
		return {
			sink: await openSink(`sqlite:${path}?table=${table}`),
			read: async () => {
				const db = new DatabaseSync(path, { readOnly: true });
				try {
					const exists = db
						.prepare("SELECT 1 FROM sqlite_master WHERE name = ?")
						.get(table);
					return exists
						? (db.prepare(`SELECT * FROM ${table}`).all() as Record<
								string,
								unknown
							>[])
						: undefined;
				} finally {
					db.close();
				}
			},
		};
	});
	runSinkContract("PostgreSQL table", async () => {
		const table = `out_${++n}`;
		return {
			sink: await openSink(`${dbUrl}?table=${table}`),
			read: async () => {
				const c = new pg.Client({ connectionString: dbUrl });
				await c.connect();
				try {
					const t = (await c.query("SELECT to_regclass($1) AS t", [table]))
						.rows[0]?.t;
					return t ? (await c.query(`SELECT * FROM ${table}`)).rows : undefined;
				} finally {
					await c.end();
				}
			},
		};
	});
});

describe("PostgreSQL table source on a live table", () => {
	it("counts and reads one snapshot: rows inserted after the count are not read (the job's counts agree)", async () => {
		const c = new pg.Client({ connectionString: dbUrl });
		await c.connect();
		const source = openSource(`${dbUrl}?table=rows`);
		try {
			const columns = [...(await source.columns()).keys()];
			const total = await source.total();
			await c.query(
				"INSERT INTO rows VALUES (100001, 1.5, 'late'), (100002, 2.5, 'later')",
			);
			let read = 0;
			for await (const chunk of source.chunks(columns)) read += chunk.rows;
			assert.equal(total, ROWS.length);
			assert.equal(read, total, "the rows read are the rows counted");
		} finally {
			await source.close();
			await c.query("DELETE FROM rows WHERE id > 100000");
			await c.end();
		}
	});
});
