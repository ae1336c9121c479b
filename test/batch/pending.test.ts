// The pending-records pattern on a real PostgreSQL: golden outputs, kill -9 mid-job then re-run, three concurrent
// workers — every row scored exactly once (count and uniqueness checked).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
	claimSql,
	pendingIndex,
	pendingIndexName,
	runPending,
} from "../../src/batch/pending.ts";
import { readBundle } from "../../src/bundle/bundle.ts";
import { loadModel } from "../../src/model.ts";
import { openRegistry } from "../../src/registry/open.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { mlship, startMlship } from "../helpers/files.ts";
import { assertOutputMatches, bundleDir, golden } from "../helpers/fixtures.ts";

/** Tests that wait for processes fail after this instead of hanging the suite. */
const BOUNDED = { timeout: 180_000 };

const MODEL = "breast-cancer-gbdt";
const g = golden(MODEL);
const FEATURES = Object.keys(g.records[0] as object);
const LABELS = ["malignant", "benign"];

let dir: string;
let server: PostgresServer;
let dbUrl: string;
let db: pg.Client;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-pending-test-"));
	server = await startPostgres();
	dbUrl = await createDatabase(server.url, uniqueDatabaseName("pending"));
	db = new pg.Client({ connectionString: dbUrl });
	await db.connect();
});
after(async () => {
	await db?.end();
	await server?.stop();
	await rm(dir, { recursive: true, force: true });
});

const columns = FEATURES.map((f) => `"${f}" double precision`).join(", ");

/** A pending table of `n` rows with breast-cancer-shaped random features. */
async function randomTable(name: string, n: number): Promise<void> {
	await db.query(
		`CREATE TABLE ${name} (id bigint PRIMARY KEY, ${columns}, scored_at timestamptz)`,
	);
	await db.query(
		`INSERT INTO ${name} SELECT i, ${FEATURES.map(() => "random() * 100").join(", ")}, NULL FROM generate_series(1, $1) AS i`,
		[n],
	);
}

function work(table: string, sink: string, extra: string[] = []) {
	return startMlship([
		"batch",
		"work",
		"-m",
		bundleDir(MODEL),
		"-t",
		`${dbUrl}?table=${table}`,
		"-o",
		`${dbUrl}?table=${sink}`,
		"--workers",
		"1",
		"--json",
		...extra,
	]);
}

async function count(sql: string): Promise<number> {
	return Number((await db.query(sql)).rows[0]?.n);
}

/** Waits (polling) until a worker has scored every row of `table`. */
async function untilNothingPending(table: string): Promise<void> {
	while (
		(await count(
			`SELECT count(*) AS n FROM ${table} WHERE scored_at IS NULL`,
		)) > 0
	)
		await new Promise((r) => setTimeout(r, 25));
}

async function exactlyOnce(
	features: string,
	scores: string,
	n: number,
): Promise<void> {
	assert.equal(
		await count(`SELECT count(*) AS n FROM ${scores}`),
		n,
		"one prediction per row",
	);
	assert.equal(
		await count(`SELECT count(DISTINCT id) AS n FROM ${scores}`),
		n,
		"no row twice",
	);
	assert.equal(
		await count(
			`SELECT count(*) AS n FROM ${features} f JOIN ${scores} s USING (id)`,
		),
		n,
		"every prediction belongs to a feature row",
	);
	assert.equal(
		await count(
			`SELECT count(*) AS n FROM ${features} WHERE scored_at IS NULL`,
		),
		0,
		"nothing left pending",
	);
}

/** The rows of a scores table of the golden records, checked against the golden labels and probabilities. */
async function goldenScores(table: string): Promise<Record<string, unknown>[]> {
	const out = (await db.query(`SELECT * FROM ${table} ORDER BY id`)).rows;
	assert.deepEqual(
		out.map((o) => o.label),
		(g.expected.label as number[]).map((k) => LABELS[k]),
	);
	assertOutputMatches(
		MODEL,
		"probabilities",
		out.flatMap((o) => LABELS.map((l) => Number(o[`probabilities_${l}`]))),
		g.expected.probabilities as number[][],
	);
	return out;
}

describe("mlship batch work (pending records on PostgreSQL)", () => {
	it("with no --chunk-rows, claims 5,000 rows per chunk (the default)", async () => {
		await db.query(
			`CREATE TABLE default_features (id bigint PRIMARY KEY, ${columns}, scored_at timestamptz)`,
		);
		// 5,001 rows: the golden records cycled.
		await db.query(
			"INSERT INTO default_features SELECT * FROM json_populate_recordset(NULL::default_features, $1)",
			[
				JSON.stringify(
					Array.from({ length: 5001 }, (_, k) => ({
						id: k + 1,
						...g.records[k % g.records.length],
					})),
				),
			],
		);
		const r = await work("default_features", "default_scores").done;
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_scored, 5001);
		assert.equal(s.chunks, 2);
		await exactlyOnce("default_features", "default_scores", 5001);
	});

	it("scores pending rows with the golden outputs and marks them; a second run finds nothing pending", async () => {
		await db.query(
			`CREATE TABLE golden_features (id bigint PRIMARY KEY, ${columns}, scored_at timestamptz)`,
		);
		await db.query(
			"INSERT INTO golden_features SELECT * FROM json_populate_recordset(NULL::golden_features, $1)",
			[JSON.stringify(g.records.map((r, k) => ({ id: k + 1, ...r })))],
		);
		const { done } = work("golden_features", "golden_scores", [
			"--chunk-rows",
			"7",
		]);
		const r = await done;
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_scored, g.records.length);
		assert.equal(s.chunks, Math.ceil(g.records.length / 7));
		const out = await goldenScores("golden_scores");
		assert.ok(out.every((o) => o.model === MODEL));
		await exactlyOnce("golden_features", "golden_scores", g.records.length);
		const again = await work("golden_features", "golden_scores").done;
		assert.equal(again.code, 0, again.stderr);
		assert.equal(JSON.parse(again.stdout).rows_scored, 0);
		assert.equal(
			await count("SELECT count(*) AS n FROM golden_scores"),
			g.records.length,
		);
	});

	it(
		"kill -9 of a worker mid-job, then a re-run: every row exactly once",
		BOUNDED,
		async (t) => {
			const n = 60_000;
			await randomTable("kill_features", n);
			const first = work("kill_features", "kill_scores", [
				"--chunk-rows",
				"100",
			]);
			// Wait for the first committed chunk, then kill without warning.
			for (;;) {
				const exists = (
					await db.query("SELECT to_regclass('kill_scores') AS t")
				).rows[0]?.t;
				if (
					exists &&
					(await count("SELECT count(*) AS n FROM kill_scores")) > 0
				)
					break;
				await new Promise((r) => setTimeout(r, 10));
			}
			first.process.kill("SIGKILL");
			const killed = await first.done;
			assert.equal(killed.signal, "SIGKILL");
			const partial = await count("SELECT count(*) AS n FROM kill_scores");
			assert.ok(
				partial > 0 && partial < n,
				`killed mid-job (${partial} of ${n} scored)`,
			);
			assert.equal(
				await count(
					"SELECT count(*) AS n FROM kill_features WHERE scored_at IS NOT NULL",
				),
				partial,
				"marks and predictions committed together",
			);
			t.diagnostic(`killed after ${partial} of ${n} rows were committed`);
			const rerun = await work("kill_features", "kill_scores", [
				"--chunk-rows",
				"1000",
			]).done;
			assert.equal(rerun.code, 0, rerun.stderr);
			assert.equal(JSON.parse(rerun.stdout).rows_scored, n - partial);
			await exactlyOnce("kill_features", "kill_scores", n);
		},
	);

	it(
		"three concurrent workers on one table: every row exactly once",
		BOUNDED,
		async (t) => {
			const n = 30_000;
			await randomTable("shared_features", n);
			const workers = [0, 1, 2].map(() =>
				work("shared_features", "shared_scores", ["--chunk-rows", "100"]),
			);
			const results = await Promise.all(workers.map((w) => w.done));
			for (const r of results) assert.equal(r.code, 0, r.stderr + r.stdout);
			const scored = results.map(
				(r) => JSON.parse(r.stdout).rows_scored as number,
			);
			t.diagnostic(`rows scored per worker: ${scored.join(", ")}`);
			assert.equal(
				scored.reduce((a, b) => a + b, 0),
				n,
				`per worker: ${scored.join(", ")}`,
			);
			await exactlyOnce("shared_features", "shared_scores", n);
		},
	);

	it(
		"--follow follows the registry: after the alias moves, the next chunks are scored by the new version",
		BOUNDED,
		async () => {
			const registry = `sqlite:${join(dir, "follow-registry.db")}`;
			const store = await openRegistry(registry);
			try {
				const bundle = await readBundle(bundleDir(MODEL));
				await store.register(bundle, { aliases: ["production"] }); // v1
				await randomTable("follow_features", 20);
				const worker = startMlship([
					"batch",
					"work",
					"-m",
					`${MODEL}@production`,
					"--registry",
					registry,
					"-t",
					`${dbUrl}?table=follow_features`,
					"-o",
					`${dbUrl}?table=follow_scores`,
					"--follow",
					"--poll-ms",
					"50",
					"--workers",
					"1",
					"--json",
				]);
				await untilNothingPending("follow_features");
				await store.register(bundle); // v2
				await store.setAlias(MODEL, "production", 2);
				// Rows keep arriving; once the swap is in, they are scored by version 2.
				let next = 21;
				const v2 = () =>
					count(
						"SELECT count(*) AS n FROM follow_scores WHERE model_version = 2",
					);
				for (let i = 0; i < 100 && (await v2()) === 0; i++) {
					await db.query(
						`INSERT INTO follow_features SELECT i, ${FEATURES.map(() => "random() * 100").join(", ")}, NULL FROM generate_series($1::bigint, $1::bigint + 4) AS i`,
						[next],
					);
					next += 5;
					await untilNothingPending("follow_features");
				}
				worker.process.kill("SIGTERM");
				assert.ok((await v2()) > 0, "no row was scored by version 2");
				const r = await worker.done;
				assert.equal(r.code, 0, r.stderr);
				assert.equal(JSON.parse(r.stdout).model_version, 2);
				const versions = (
					await db.query(
						"SELECT DISTINCT model_version FROM follow_scores ORDER BY 1",
					)
				).rows.map((x) => Number(x.model_version));
				assert.deepEqual(versions, [1, 2]);
				// Never back: every row after the first version-2 row is version 2.
				assert.equal(
					await count(
						"SELECT count(*) AS n FROM follow_scores WHERE model_version = 1 AND id > (SELECT min(id) FROM follow_scores WHERE model_version = 2)",
					),
					0,
				);
				await exactlyOnce("follow_features", "follow_scores", next - 1);
			} finally {
				await store.close();
			}
		},
	);

	it("--errors in another database than the pending rows is refused", async () => {
		const r = await work("features", "scores", [
			"--errors",
			`${dbUrl}_other?table=errs`,
		]).done;
		assert.equal(r.code, 2);
		assert.match(
			JSON.parse(r.stdout).error,
			/--errors must be in the same PostgreSQL database/,
		);
	});

	it("--done delete empties a queue table; bad rows go to the error table with their key", async () => {
		await db.query(
			`CREATE TABLE inbox (id bigint PRIMARY KEY, ${FEATURES.map((f) => `"${f}" text`).join(", ")})`,
		);
		const recs = g.records
			.slice(0, 5)
			.map((r, k) => ({ id: k + 1, ...r })) as Record<string, unknown>[];
		(recs[2] as Record<string, unknown>)[FEATURES[1] as string] =
			"not a number";
		await db.query(
			"INSERT INTO inbox SELECT * FROM json_populate_recordset(NULL::inbox, $1)",
			[JSON.stringify(recs)],
		);
		const r = await work("inbox", "inbox_scores", [
			"--done",
			"delete",
			"--on-error",
			"skip",
		]).done;
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_scored, 4);
		assert.equal(s.rows_rejected, 1);
		assert.equal(await count("SELECT count(*) AS n FROM inbox"), 0);
		const errs = (
			await db.query('SELECT "column", error, data FROM inbox_scores_errors')
		).rows;
		assert.equal(errs.length, 1);
		assert.equal(errs[0].column, FEATURES[1]);
		assert.match(
			errs[0].error,
			/expected a number \(FP32\), got "not a number"/,
		);
		assert.equal(errs[0].data.id, 3);
		assert.deepEqual(
			(await db.query("SELECT id FROM inbox_scores ORDER BY id")).rows.map(
				(x) => Number(x.id),
			),
			[1, 2, 4, 5],
		);
	});

	it(
		"--follow keeps scoring rows that arrive later, and stops cleanly on SIGTERM",
		BOUNDED,
		async () => {
			await randomTable("stream_features", 0);
			const w = work("stream_features", "stream_scores", [
				"--follow",
				"--poll-ms",
				"50",
			]);
			await db.query(
				`INSERT INTO stream_features SELECT i, ${FEATURES.map(() => "random() * 100").join(", ")}, NULL FROM generate_series(1, 500) AS i`,
			);
			await untilNothingPending("stream_features");
			await db.query(
				`INSERT INTO stream_features SELECT i, ${FEATURES.map(() => "random() * 100").join(", ")}, NULL FROM generate_series(501, 800) AS i`,
			);
			await untilNothingPending("stream_features");
			w.process.kill("SIGTERM");
			const end = await w.done;
			assert.equal(end.code, 0, end.stderr);
			assert.equal(JSON.parse(end.stdout).rows_scored, 800);
			await exactlyOnce("stream_features", "stream_scores", 800);
		},
	);

	it("a partitioned table: rows of different partitions with the same ctid are each scored and marked exactly once", async () => {
		await db.query(
			`CREATE TABLE parted (id bigint, region int, ${columns}, scored_at timestamptz) PARTITION BY LIST (region)`,
		);
		await db.query(
			"CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1)",
		);
		await db.query(
			"CREATE TABLE parted_2 PARTITION OF parted FOR VALUES IN (2)",
		);
		// ids 1–10 in one partition, 11–20 in the other: their ctids are the same (0,1)…(0,10).
		await db.query(
			`INSERT INTO parted SELECT i, CASE WHEN i <= 10 THEN 1 ELSE 2 END, ${FEATURES.map(() => "random() * 100").join(", ")}, NULL FROM generate_series(1, 20) AS i`,
		);
		const r = await work("parted", "parted_scores", ["--chunk-rows", "5"]).done;
		assert.equal(r.code, 0, r.stderr);
		assert.equal(JSON.parse(r.stdout).rows_scored, 20);
		await exactlyOnce("parted", "parted_scores", 20);
	});

	it("an inheritance parent: rows of parent and child with the same ctid are each scored and marked exactly once", async () => {
		await db.query(
			`CREATE TABLE inh (id bigint, ${columns}, scored_at timestamptz)`,
		);
		await db.query("CREATE TABLE inh_child () INHERITS (inh)");
		// ids 1–10 in the parent, 11–20 in the child: their ctids are the same (0,1)…(0,10).
		for (const [t, from] of [
			["inh", 1],
			["inh_child", 11],
		] as const)
			await db.query(
				`INSERT INTO ${t} SELECT i, ${FEATURES.map(() => "random() * 100").join(", ")}, NULL FROM generate_series(${from}, ${from + 9}) AS i`,
			);
		const r = await work("inh", "inh_scores", ["--chunk-rows", "4"]).done;
		assert.equal(r.code, 0, r.stderr);
		assert.equal(JSON.parse(r.stdout).rows_scored, 20);
		await exactlyOnce("inh", "inh_scores", 20);
	});

	it("reads features of other numeric types and keeps columns of any type (golden outputs; kept values as PostgreSQL writes them)", async () => {
		const [real, num, ...rest] = FEATURES as [string, string, ...string[]];
		await db.query(
			`CREATE TABLE typed_features (id bigint PRIMARY KEY, "${real}" real, "${num}" numeric, ${rest.map((f) => `"${f}" double precision`).join(", ")},
			 note text, flag boolean, created timestamptz, small smallint, doc jsonb, scored_at timestamptz)`,
		);
		await db.query(
			`INSERT INTO typed_features SELECT r.id, ${FEATURES.map((f) => `r."${f}"`).join(", ")}, CASE WHEN r.id % 2 = 0 THEN 'even "' || r.id ELSE NULL END, r.id % 3 = 0,
			 timestamptz '2026-01-02 03:04:05+00' + r.id * interval '1 second', (r.id - 10)::smallint, jsonb_build_object('k', r.id), NULL
			 FROM json_populate_recordset(NULL::golden_features, $1) r`,
			[JSON.stringify(g.records.map((x, k) => ({ id: k + 1, ...x })))],
		);
		const r = await work("typed_features", "typed_scores", [
			"--chunk-rows",
			"50",
			"--keep",
			"note,flag,created,small,doc",
		]).done;
		assert.equal(r.code, 0, r.stderr + r.stdout);
		assert.equal(JSON.parse(r.stdout).rows_scored, g.records.length);
		const out = await goldenScores("typed_scores");
		const o4 = out[3] as Record<string, unknown>;
		const o3 = out[2] as Record<string, unknown>;
		assert.equal(o4.note, 'even "4');
		assert.equal(o3.note, null);
		assert.deepEqual([o3.flag, o4.flag], [true, false]);
		assert.equal(Number(o4.small), -6);
		assert.equal(JSON.parse(o4.doc as string).k, 4);
		// Types the reader does not decode come as PostgreSQL's own text (the session's time zone for timestamptz).
		assert.equal(
			o4.created,
			(
				await db.query(
					"SELECT created::text AS t FROM typed_features WHERE id = 4",
				)
			).rows[0]?.t,
		);
		await exactlyOnce("typed_features", "typed_scores", g.records.length);
	});

	it("names the missing mark column, and has --help with an example", async () => {
		await db.query(`CREATE TABLE unmarked (id bigint PRIMARY KEY, ${columns})`);
		const r = await work("unmarked", "x_scores").done;
		assert.equal(r.code, 2);
		assert.match(
			JSON.parse(r.stdout).error,
			/has no column 'scored_at'.*ALTER TABLE/,
		);
		const help = await mlship(["batch", "work", "--help"]);
		assert.equal(help.code, 0);
		assert.match(help.stdout, /Examples:\n\s+\$ mlship batch work/);
	});

	it("creates its scores and error tables once per run, not once per chunk (DDL counted by an event trigger)", async () => {
		await randomTable("ddl_features", 40);
		// Every 5th row has no value for a feature: those go to the error table, in most chunks.
		await db.query(
			`UPDATE ddl_features SET "${FEATURES[0]}" = NULL WHERE id % 5 = 0`,
		);
		await db.query("CREATE TABLE ddl_log (tag text, tbl text)");
		await db.query(`CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO ddl_log VALUES (tg_tag, current_query()); END $$`);
		await db.query(
			"CREATE EVENT TRIGGER log_ddl ON ddl_command_start WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION log_ddl()",
		);
		try {
			const r = await work("ddl_features", "ddl_scores", [
				"--chunk-rows",
				"6",
				"--on-error",
				"skip",
			]).done;
			assert.equal(r.code, 0, r.stderr + r.stdout);
			const s = JSON.parse(r.stdout);
			assert.equal(s.chunks, 7);
			assert.equal(s.rows_scored, 32);
			assert.equal(s.rows_rejected, 8);
			const ddl = (
				await db.query("SELECT tbl FROM ddl_log ORDER BY tbl")
			).rows.map((x) => String(x.tbl));
			assert.equal(ddl.length, 2, ddl.join("\n"));
			assert.match(ddl[0] as string, /CREATE TABLE IF NOT EXISTS "ddl_scores"/);
			assert.match(
				ddl[1] as string,
				/CREATE TABLE IF NOT EXISTS "ddl_scores_errors"/,
			);
			await exactlyOnce("ddl_features", "ddl_scores", 32);
		} finally {
			await db.query("DROP EVENT TRIGGER log_ddl");
		}
	});

	it(
		"claims through a partial index on pending rows: warned without it, created by --create-index, used by the plan",
		BOUNDED,
		async () => {
			const T = "claimidx";
			await randomTable(T, 20_000);
			await db.query(`UPDATE ${T} SET scored_at = now() WHERE id <= 19900`);
			await db.query(`ANALYZE ${T}`);
			const plan = async () =>
				(
					await db.query(
						`EXPLAIN ANALYZE ${claimSql(T, "id", "scored_at")}`,
						[1000],
					)
				).rows
					.map((r) => r["QUERY PLAN"])
					.join("\n");
			const index = pendingIndexName(T, "scored_at");
			// Without the index the claim walks the key past the 19,900 scored rows.
			const before = await plan();
			assert.doesNotMatch(before, new RegExp(index));
			assert.match(before, /Rows Removed by Filter: (\d{4,})/);

			const warned = await work(T, `${T}_scores`).done;
			assert.equal(warned.code, 0, warned.stderr);
			assert.equal(JSON.parse(warned.stdout).rows_scored, 100);
			assert.match(warned.stderr, /no partial index on pending rows/);
			assert.ok(
				warned.stderr.includes(
					`CREATE INDEX CONCURRENTLY IF NOT EXISTS "${index}" ON "${T}" ("id") WHERE "scored_at" IS NULL`,
				),
				warned.stderr,
			);
			assert.equal(await pendingIndex(db, T, "id", "scored_at"), undefined);

			await db.query(`UPDATE ${T} SET scored_at = NULL WHERE id > 19900`);
			const created = await work(T, `${T}_scores2`, ["--create-index"]).done;
			assert.equal(created.code, 0, created.stderr);
			assert.equal(JSON.parse(created.stdout).rows_scored, 100);
			assert.doesNotMatch(created.stderr, /no partial index/);
			assert.equal(await pendingIndex(db, T, "id", "scored_at"), index);
			await exactlyOnce(T, `${T}_scores2`, 100);

			// Pending again: the plan reads the partial index and filters nothing out.
			await db.query(`UPDATE ${T} SET scored_at = NULL WHERE id > 19900`);
			await db.query(`ANALYZE ${T}`);
			const after = await plan();
			assert.match(after, new RegExp(`Index Scan using ${index} on ${T}`));
			assert.doesNotMatch(after, /Rows Removed by Filter/);
			// A second --create-index run finds the index (any name) and builds no other.
			const again = await work(T, `${T}_scores3`, ["--create-index"]).done;
			assert.equal(again.code, 0, again.stderr);
			assert.equal(
				await count(
					`SELECT count(*) AS n FROM pg_indexes WHERE tablename = '${T}'`,
				),
				2,
				"primary key and the partial index",
			);
		},
	);

	it(
		"waits on the server three times per chunk: the claim (marking and returning the rows as a binary COPY), one write, COMMIT sent with the next BEGIN",
		BOUNDED,
		async () => {
			// Counted through the client: every query, and every time the connection had nothing in flight when one was
			// sent (a round trip). Two runs differing by 10 chunks: the difference is the cost of 10 chunks.
			const proto = pg.Client.prototype as unknown as {
				query: (...args: unknown[]) => unknown;
			};
			const original = proto.query;
			const model = await loadModel(bundleDir(MODEL), { workers: 1 });
			const run = async (table: string, n: number) => {
				await randomTable(table, n);
				let inFlight = 0;
				const seen = { trips: 0, statements: 0 };
				proto.query = function (this: pg.Client, ...args: unknown[]) {
					const p = original.apply(this, args) as
						| Promise<unknown>
						| NodeJS.ReadableStream;
					if (inFlight === 0) seen.trips++;
					seen.statements++;
					inFlight++;
					const settle = () => {
						inFlight--;
					};
					// A COPY answers with a stream (it ends when its rows are read), a statement with a promise.
					if ("then" in p) p.then(settle, settle);
					else p.once("close", settle);
					return p;
				};
				try {
					const s = await runPending(model, {
						table: `${dbUrl}?table=${table}`,
						sink: `${dbUrl}?table=${table}_scores`,
						chunkRows: 100,
						createIndex: true,
					});
					assert.equal(s.rows_scored, n);
					return { ...seen, chunks: s.chunks };
				} finally {
					proto.query = original;
				}
			};
			try {
				const a = await run("trips_a", 1000);
				const b = await run("trips_b", 2000);
				assert.deepEqual([a.chunks, b.chunks], [10, 20]);
				assert.equal(b.trips - a.trips, 30, "three round trips per chunk");
				assert.equal(
					b.statements - a.statements,
					30,
					"claim + mark, write, COMMIT + BEGIN per chunk",
				);
				await exactlyOnce("trips_b", "trips_b_scores", 2000);
			} finally {
				await model.close();
			}
		},
	);

	it(
		"a chunk whose write fails is neither written nor marked; the chunks before it stay committed",
		BOUNDED,
		async () => {
			// The mark of row 250 raises: in chunks of 100, chunks 1–2 commit, chunk 3's predictions must roll back with it
			// (the COMMIT pipelined behind a failed statement is a rollback, and must not be counted as a commit).
			await randomTable("failing", 500);
			await db.query(`CREATE FUNCTION refuse_250() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'row 250 refused'; END $$`);
			await db.query(
				"CREATE TRIGGER refuse_250 BEFORE UPDATE ON failing FOR EACH ROW WHEN (NEW.id = 250) EXECUTE FUNCTION refuse_250()",
			);
			const r = await work("failing", "failing_scores", ["--chunk-rows", "100"])
				.done;
			assert.notEqual(r.code, 0, r.stdout);
			assert.match(JSON.parse(r.stdout).error, /row 250 refused/);
			assert.equal(
				await count("SELECT count(*) AS n FROM failing_scores"),
				200,
			);
			assert.equal(
				await count("SELECT count(*) AS n FROM failing_scores WHERE id > 200"),
				0,
				"no prediction of the failed chunk",
			);
			assert.equal(
				await count(
					"SELECT count(*) AS n FROM failing WHERE scored_at IS NOT NULL",
				),
				200,
				"only the committed chunks are marked",
			);
			// Nothing is left locked or half-done: without the trigger, a re-run scores exactly the rest.
			await db.query("DROP TRIGGER refuse_250 ON failing");
			const rerun = await work("failing", "failing_scores").done;
			assert.equal(rerun.code, 0, rerun.stderr);
			assert.equal(JSON.parse(rerun.stdout).rows_scored, 300);
			await exactlyOnce("failing", "failing_scores", 500);
		},
	);

	it("--on-error fail: a bad row rolls back its chunk's claim, so its rows stay pending (the claim marks them)", async () => {
		await randomTable("bad_features", 30);
		await db.query(
			`UPDATE bad_features SET "${FEATURES[0]}" = NULL WHERE id = 15`,
		);
		const r = await work("bad_features", "bad_scores", ["--chunk-rows", "10"])
			.done;
		assert.notEqual(r.code, 0, r.stdout);
		assert.match(JSON.parse(r.stdout).error, /value is missing/);
		assert.equal(await count("SELECT count(*) AS n FROM bad_scores"), 10);
		assert.equal(
			await count(
				"SELECT count(*) AS n FROM bad_features WHERE scored_at IS NOT NULL",
			),
			10,
			"only the first chunk is marked",
		);
		assert.equal(
			await count(
				"SELECT count(*) AS n FROM bad_features WHERE scored_at IS NULL AND id BETWEEN 11 AND 20",
			),
			10,
			"the failed chunk's rows are pending again",
		);
	});

	it("names the partial index within PostgreSQL's 63 bytes, distinct for long table names", () => {
		assert.equal(
			pendingIndexName("public.features", "scored_at"),
			"features_scored_at_pending",
		);
		const a = pendingIndexName(`${"x".repeat(70)}_a`, "scored_at");
		const b = pendingIndexName(`${"x".repeat(70)}_b`, "scored_at");
		assert.ok(Buffer.byteLength(a) <= 63 && Buffer.byteLength(b) <= 63);
		assert.notEqual(a, b);
	});
});
