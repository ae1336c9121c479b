// `mlship pg attach/worker/detach` on a real PostgreSQL: the trigger queues new and changed rows, the worker fills the
// prediction column with the golden outputs, bad rows get NULL and an error row, and detach leaves nothing behind.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { objectNames } from "../../src/sql/pg-attach.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { mlship, startMlship } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

/** Tests that wait for processes fail after this instead of hanging the suite. */
const BOUNDED = { timeout: 180_000 };

const g = golden("iris-logreg");
const LABELS = ["setosa", "versicolor", "virginica"];
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
const want = (k: number) => LABELS[(g.expected.label as number[])[k] as number];
const names = objectNames("flowers", "species");

let server: PostgresServer;
let dbUrl: string;
let db: pg.Client;

before(async () => {
	server = await startPostgres();
	dbUrl = await createDatabase(server.url, uniqueDatabaseName("attach"));
	db = new pg.Client({ connectionString: dbUrl });
	await db.connect();
	await db.query(
		`CREATE TABLE flowers (id bigint PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")}, note text)`,
	);
	await insert([0, 1]);
});
after(async () => {
	await db?.end();
	await server?.stop();
});

/** Inserts golden records `ks` with id = k. */
async function insert(ks: number[]): Promise<void> {
	for (const k of ks) {
		const r = g.records[k] as Record<string, number>;
		await db.query(
			`INSERT INTO flowers (id, ${FEATURES.join(", ")}) VALUES ($1, $2, $3, $4, $5)`,
			[k, ...FEATURES.map((f) => r[f])],
		);
	}
}

async function species(): Promise<Map<number, string | null>> {
	const r = await db.query("SELECT id, species FROM flowers ORDER BY id");
	return new Map(r.rows.map((x) => [Number(x.id), x.species]));
}

/** Arguments of `mlship pg CMD` for one table and column. */
const argsFor =
	(table: string, column: string) =>
	(cmd: string, ...more: string[]) => [
		"pg",
		cmd,
		"--db",
		dbUrl,
		"--table",
		table,
		"--column",
		column,
		"--json",
		...more,
	];
const args = argsFor("flowers", "species");

describe("mlship pg attach / worker / detach", () => {
	it("attach adds the column and trigger; the worker fills new and backfilled rows with the golden labels", async () => {
		const a = await mlship(
			args(
				"attach",
				"-m",
				bundleDir("iris-logreg"),
				"--backfill",
				"--no-worker",
			),
		);
		assert.equal(a.code, 0, a.stderr + a.stdout);
		const info = JSON.parse(a.stdout).attached;
		assert.equal(info.column_type, "text");
		assert.equal(info.key, "id");
		assert.equal(info.backfilled, 2);
		const ks = Array.from({ length: 20 }, (_, i) => i + 2);
		await insert(ks);
		assert.equal(
			Number(
				(await db.query(`SELECT count(*) AS n FROM ${names.queue}`)).rows[0].n,
			),
			22,
			"inserts are queued",
		);
		const w = await mlship(args("worker", "--once", "--chunk-rows", "8"));
		assert.equal(w.code, 0, w.stderr + w.stdout);
		assert.equal(JSON.parse(w.stdout).rows_scored, 22);
		const got = await species();
		for (const k of [0, 1, ...ks])
			assert.equal(got.get(k), want(k), `row ${k}`);
	});

	it("a feature change re-queues the row and the worker recomputes it; other changes do not queue", async () => {
		const other = g.records.findIndex((_, k) => want(k) !== want(0));
		const r = g.records[other] as Record<string, number>;
		await db.query(
			`UPDATE flowers SET ${FEATURES.map((f, i) => `${f} = $${i + 1}`).join(", ")} WHERE id = 0`,
			FEATURES.map((f) => r[f]),
		);
		await db.query("UPDATE flowers SET note = 'seen' WHERE id = 1");
		const queued = (await db.query(`SELECT key FROM ${names.queue}`)).rows.map(
			(x) => Number(x.key),
		);
		assert.deepEqual(queued, [0]);
		const w = await mlship(args("worker", "--once"));
		assert.equal(w.code, 0, w.stderr);
		assert.equal((await species()).get(0), want(other));
	});

	it("a change made while a worker holds the row is queued again once that worker commits (no stale prediction)", async () => {
		await db.query(`DELETE FROM ${names.queue}`);
		await db.query(
			"UPDATE flowers SET sepal_length = sepal_length + 0.1 WHERE id = 1",
		);
		// A worker's claim: the key locked in its open transaction, which then removes it.
		const worker = new pg.Client({ connectionString: dbUrl });
		await worker.connect();
		try {
			await worker.query("BEGIN");
			await worker.query(
				`SELECT key FROM ${names.queue} WHERE key = 1 FOR UPDATE`,
			);
			// Meanwhile the application changes the features again: its trigger must wait for the worker.
			const change = db.query(
				"UPDATE flowers SET sepal_length = sepal_length - 0.1 WHERE id = 1",
			);
			await new Promise((r) => setTimeout(r, 200));
			await worker.query(`DELETE FROM ${names.queue} WHERE key = 1`);
			await worker.query("COMMIT");
			await change;
		} finally {
			await worker.end();
		}
		const queued = (await db.query(`SELECT key FROM ${names.queue}`)).rows.map(
			(x) => Number(x.key),
		);
		assert.deepEqual(
			queued,
			[1],
			"the later change is queued for the next run",
		);
		const w = await mlship(args("worker", "--once"));
		assert.equal(w.code, 0, w.stderr);
		assert.equal((await species()).get(1), want(1));
	});

	it("a row with a bad value gets NULL and a row in the error table naming the column", async () => {
		await db.query(
			"INSERT INTO flowers (id, sepal_length, sepal_width, petal_length, petal_width) VALUES (500, 5.1, NULL, 1.4, 0.2)",
		);
		const w = await mlship(args("worker", "--once"));
		assert.equal(w.code, 0, w.stderr);
		assert.equal(JSON.parse(w.stdout).rows_rejected, 1);
		assert.equal((await species()).get(500), null);
		const errs = (
			await db.query(`SELECT "column", error, data FROM ${names.errors}`)
		).rows;
		assert.equal(errs.length, 1);
		assert.equal(errs[0].column, "sepal_width");
		assert.match(errs[0].error, /missing/);
		assert.equal(Number(errs[0].data.id), 500);
	});

	it(
		"a running worker fills rows shortly after they are inserted, and stops cleanly on SIGTERM",
		BOUNDED,
		async () => {
			const worker = startMlship(args("worker"));
			await insert([30, 31, 32]);
			for (;;) {
				const got = await species();
				if (
					[30, 31, 32].every(
						(k) => got.get(k) !== null && got.get(k) !== undefined,
					)
				)
					break;
				await new Promise((r) => setTimeout(r, 25));
			}
			const got = await species();
			for (const k of [30, 31, 32]) assert.equal(got.get(k), want(k));
			worker.process.kill("SIGTERM");
			const end = await worker.done;
			assert.equal(end.code, 0, end.stderr);
			assert.equal(JSON.parse(end.stdout).rows_scored, 3);
		},
	);

	it("a bad row whose bigint key is above 2^53 gets NULL too: keys are never rounded through JSON numbers", async () => {
		const big = "9007199254740993"; // 2^53 + 1: as a JS number it would be 2^53
		const r = g.records[0] as Record<string, number>;
		await db.query(
			`INSERT INTO flowers (id, ${FEATURES.join(", ")}) VALUES ($1::bigint, $2, $3, $4, $5)`,
			[big, ...FEATURES.map((f) => r[f])],
		);
		const label = async () =>
			(
				await db.query("SELECT species FROM flowers WHERE id = $1::bigint", [
					big,
				])
			).rows[0]?.species;
		const first = await mlship(args("worker", "--once"));
		assert.equal(first.code, 0, first.stderr);
		assert.equal(await label(), want(0));
		await db.query(
			"UPDATE flowers SET sepal_width = NULL WHERE id = $1::bigint",
			[big],
		);
		const w = await mlship(args("worker", "--once"));
		assert.equal(w.code, 0, w.stderr);
		assert.equal(JSON.parse(w.stdout).rows_rejected, 1);
		assert.equal(await label(), null, "the stale label is cleared");
		const err = await db.query(
			`SELECT data->>'id' AS id FROM ${names.errors} WHERE data->>'id' = $1`,
			[big],
		);
		assert.equal(err.rows.length, 1, "the error row keeps every digit");
		await db.query("DELETE FROM flowers WHERE id = $1::bigint", [big]);
		await db.query(`DELETE FROM ${names.queue}`);
	});

	it("a type name in mlship_attachments that is no type is refused, naming it, and never run as SQL", async () => {
		await db.query("CREATE TABLE canary (x int)");
		const stored = (
			await db.query(
				"SELECT key_type FROM mlship_attachments WHERE table_name = 'flowers'",
			)
		).rows[0].key_type;
		await db.query(
			"UPDATE mlship_attachments SET key_type = $1 WHERE table_name = 'flowers'",
			["bigint[]) AS u(k, v); DROP TABLE canary; --"],
		);
		try {
			const w = await mlship(args("worker", "--once"));
			assert.equal(w.code, 2, w.stderr + w.stdout);
			assert.match(
				JSON.parse(w.stdout).error,
				/mlship_attachments: key_type "bigint\[\]\) AS u\(k, v\); DROP TABLE canary; --" of flowers\.species is not a PostgreSQL type; attach the model again/,
			);
			assert.notEqual(
				(await db.query("SELECT to_regclass('canary') AS t")).rows[0].t,
				null,
			);
		} finally {
			await db.query(
				"UPDATE mlship_attachments SET key_type = $1 WHERE table_name = 'flowers'",
				[stored],
			);
		}
	});

	it('a key of a quoted, schema-qualified type (a domain "Odd"."Key") is resolved and quoted, and works', async () => {
		await db.query('CREATE SCHEMA "Odd"');
		await db.query('CREATE DOMAIN "Odd"."Key" AS bigint');
		await db.query(
			`CREATE TABLE odd (id "Odd"."Key" PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")})`,
		);
		const r = g.records[2] as Record<string, number>;
		await db.query(
			`INSERT INTO odd VALUES (7, ${FEATURES.map((_, i) => `$${i + 1}`).join(", ")})`,
			FEATURES.map((f) => r[f]),
		);
		const oddArgs = argsFor("odd", "label");
		const a = await mlship(
			oddArgs(
				"attach",
				"-m",
				bundleDir("iris-logreg"),
				"--backfill",
				"--no-worker",
			),
		);
		assert.equal(a.code, 0, a.stderr + a.stdout);
		assert.equal(JSON.parse(a.stdout).attached.key_type, '"Odd"."Key"');
		const w = await mlship(oddArgs("worker", "--once"));
		assert.equal(w.code, 0, w.stderr + w.stdout);
		assert.equal(
			(await db.query("SELECT label FROM odd WHERE id = 7")).rows[0].label,
			want(2),
		);
		const d = await mlship(oddArgs("detach"));
		assert.equal(d.code, 0, d.stderr);
	});

	it(
		"a running worker follows the registry: after the alias moves to a new version, new rows get its predictions",
		BOUNDED,
		async () => {
			const dir = await mkdtemp(join(tmpdir(), "mlship-pg-follow-"));
			const registry = `sqlite:${join(dir, "r.db")}`;
			const store = await openRegistry(registry);
			try {
				const v1 = await readBundle(bundleDir("iris-logreg"));
				await store.register(v1, { aliases: ["production"] });
				await db.query(
					`CREATE TABLE irises (id bigint PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")})`,
				);
				const on = ["--db", dbUrl, "--table", "irises", "--column", "kind"];
				const a = await mlship([
					"pg",
					"attach",
					...on,
					"-m",
					"iris-logreg@production",
					"--registry",
					registry,
					"--no-worker",
				]);
				assert.equal(a.code, 0, a.stderr + a.stdout);
				const worker = startMlship(["pg", "worker", ...on, "--json"]);
				const add = async (id: number) => {
					const r = g.records[0] as Record<string, number>;
					await db.query(
						`INSERT INTO irises (id, ${FEATURES.join(", ")}) VALUES ($1, $2, $3, $4, $5)`,
						[id, ...FEATURES.map((f) => r[f])],
					);
				};
				const kind = async (id: number) => {
					for (let i = 0; i < 2000; i++) {
						const r = await db.query("SELECT kind FROM irises WHERE id = $1", [
							id,
						]);
						if (r.rows[0]?.kind) return r.rows[0].kind as string;
						await new Promise((res) => setTimeout(res, 10));
					}
					assert.fail(`row ${id} was never scored`);
				};
				await add(1);
				assert.equal(await kind(1), want(0));
				// Version 2: the same graph with its class names reversed, so its answers are told apart.
				const labels = [...(v1.manifest.labels as string[])].reverse();
				await store.register(
					{ ...v1, manifest: { ...v1.manifest, labels } },
					{ allowSignatureChange: true },
				);
				await store.setAlias("iris-logreg", "production", 2);
				const relabelled = labels[(g.expected.label as number[])[0] as number];
				assert.notEqual(relabelled, want(0));
				let id = 2;
				let got = "";
				for (; id < 200; id++) {
					await add(id);
					got = await kind(id);
					if (got !== want(0)) break;
				}
				assert.equal(got, relabelled, "scored by version 2 after the move");
				await add(id + 1);
				assert.equal(await kind(id + 1), relabelled, "and stays on it");
				worker.process.kill("SIGTERM");
				const w = await worker.done;
				assert.equal(w.code, 0, w.stderr);
				assert.equal(JSON.parse(w.stdout).model_version, 2);
				const d = await mlship(["pg", "detach", ...on, "--json"]);
				assert.equal(d.code, 0, d.stderr + d.stdout);
			} finally {
				await store.close();
				await rm(dir, { recursive: true, force: true });
			}
		},
	);

	it("detach removes trigger, function, queue and record; the column keeps its values", async () => {
		const d = await mlship(args("detach"));
		assert.equal(d.code, 0, d.stderr + d.stdout);
		const one = async (sql: string, p: unknown[] = []) =>
			(await db.query(sql, p)).rows[0];
		assert.equal(
			(
				await one("SELECT count(*) AS n FROM pg_trigger WHERE tgname = $1", [
					names.trigger,
				])
			).n,
			"0",
		);
		assert.equal(
			(
				await one("SELECT count(*) AS n FROM pg_proc WHERE proname = $1", [
					names.fn,
				])
			).n,
			"0",
		);
		assert.equal(
			(await one("SELECT to_regclass($1) AS t", [names.queue])).t,
			null,
		);
		assert.equal(
			(await one("SELECT count(*) AS n FROM mlship_attachments")).n,
			"0",
		);
		assert.equal((await species()).get(2), want(2), "values stay");
		await insert([37]);
		assert.equal(
			(await species()).get(37),
			null,
			"new rows are no longer queued or scored",
		);
		const again = await mlship(args("worker", "--once"));
		assert.equal(again.code, 3);
		assert.match(
			JSON.parse(again.stdout).error,
			/no model is attached to flowers.species/,
		);
		const help = await mlship(["pg", "attach", "--help"]);
		assert.match(help.stdout, /Examples:\n\s+\$ mlship pg attach/);
	});
});
