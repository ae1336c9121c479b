// A password in a URI never appears in what mlship prints: every command (serve, stream, batch run/work, pg
// attach/worker/detach, models *, sql) runs with a password in its URIs against real services (and once against a
// closed port, for the error path), and its stdout, stderr, logs and /metrics are searched for the password.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { type NatsServer, startNats } from "../harness/nats.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { type RedisServer, startRedis } from "../harness/redis.ts";
import { mlship, startMlship } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { serve } from "../helpers/serve-process.ts";

/** The password in every URI below; a distinctive string so any copy of it is found. */
const PW = "Pw-7f3a9c-SECRET";
const MODEL = bundleDir("iris-logreg");
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

let pgs: PostgresServer;
let redis: RedisServer;
let nats: NatsServer;
/** `postgres://mlship:PW@127.0.0.1:PORT/DB` (the harness trusts loopback, so any password connects). */
let db: string;
/** The same URL on a port where nothing listens. */
let deadDb: string;

function withPassword(url: string): string {
	const u = new URL(url);
	u.password = PW;
	return u.toString();
}

function assertNoSecret(what: string, ...texts: string[]): void {
	for (const t of texts)
		assert.ok(
			!t.includes(PW),
			`${what} printed the password:\n${t.slice(0, 4000)}`,
		);
}

before(async () => {
	[pgs, redis, nats] = await Promise.all([
		startPostgres(),
		startRedis({ password: PW }),
		startNats({ auth: { user: "app", pass: PW } }),
	]);
	db = withPassword(await createDatabase(pgs.url, uniqueDatabaseName("sec")));
	deadDb = db.replace(/:(\d+)\//, ":1/");
	const c = new pg.Client({ connectionString: db });
	await c.connect();
	await c.query(
		`CREATE TABLE flowers (id bigint PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")}, scored_at timestamptz)`,
	);
	const rows = golden("iris-logreg").records.slice(0, 5) as Record<
		string,
		number
	>[];
	for (const [i, r] of rows.entries())
		await c.query("INSERT INTO flowers VALUES ($1, $2, $3, $4, $5, NULL)", [
			i,
			...FEATURES.map((f) => r[f]),
		]);
	await c.end();
	// The sql and serve tests need iris@production whichever test runs first (or alone).
	const store = await openRegistry(db);
	try {
		await store.register(await readBundle(MODEL), { aliases: ["production"] });
	} finally {
		await store.close();
	}
});
after(async () => {
	await Promise.all([pgs?.stop(), redis?.stop(), nats?.stop()]);
});

/** Runs `mlship stream --from --to` until its stderr contains `until` (or it exits), then stops it with SIGTERM. */
async function streamUntil(from: string, to: string, until: string) {
	const p = startMlship(["stream", "-m", MODEL, "--from", from, "--to", to]);
	let stderr = "";
	await new Promise<void>((resolve) => {
		p.process.stderr?.on("data", (d) => {
			stderr += d;
			if (stderr.includes(until)) resolve();
		});
		p.process.on("close", () => resolve());
	});
	p.process.kill("SIGTERM");
	return p.done;
}

describe("no command prints a password from its URIs", () => {
	it("models register / list / show / alias with a PostgreSQL registry, and the error path", async () => {
		const runs = [
			[
				"models",
				"register",
				MODEL,
				"--name",
				"iris",
				"--registry",
				db,
				"--json",
			],
			["models", "list", "--registry", db, "--json"],
			["models", "list", "--registry", db],
			["models", "show", "iris@1", "--registry", db, "--json"],
			["models", "alias", "iris", "stable", "1", "--registry", db],
			["models", "list", "--registry", deadDb, "--json"],
			["models", "list", "--registry", deadDb],
		];
		for (const args of runs) {
			const r = await mlship(args);
			assertNoSecret(args.join(" "), r.stdout, r.stderr);
			if (!args.includes(deadDb)) assert.equal(r.code, 0, r.stderr);
			else {
				assert.equal(r.code, 6, r.stderr + r.stdout);
				assert.match(r.stderr + r.stdout, /mlship:\*\*\*@127\.0\.0\.1:1\//);
			}
		}
	});

	it("batch run and batch work from and to PostgreSQL, and the error path", async () => {
		const runs: [string[], number][] = [
			[
				[
					"batch",
					"run",
					"-m",
					MODEL,
					"--source",
					`${db}?table=flowers`,
					"--sink",
					`${db}?table=scores`,
					"--keep",
					"id",
					"--json",
				],
				0,
			],
			[
				[
					"batch",
					"work",
					"-m",
					MODEL,
					"--table",
					`${db}?table=flowers`,
					"--sink",
					`${db}?table=worked`,
					"--json",
				],
				0,
			],
			[
				[
					"batch",
					"run",
					"-m",
					MODEL,
					"--source",
					`${deadDb}?table=flowers`,
					"--sink",
					"out.parquet",
				],
				6,
			],
			[
				[
					"batch",
					"run",
					"-m",
					MODEL,
					"--source",
					`${db}?table=no_such_table`,
					"--sink",
					`${db}?table=x`,
					"--json",
				],
				3,
			],
		];
		for (const [args, code] of runs) {
			const r = await mlship(args);
			assertNoSecret(args.join(" "), r.stdout, r.stderr);
			assert.equal(r.code, code, r.stderr + r.stdout);
		}
	});

	it("pg attach / worker / detach, and sql with a PostgreSQL registry", async () => {
		const pgArgs = (cmd: string, ...more: string[]) => [
			"pg",
			cmd,
			"--db",
			db,
			"--table",
			"flowers",
			"--column",
			"species",
			"--json",
			...more,
		];
		const runs: [string[], number][] = [
			[pgArgs("attach", "-m", MODEL, "--backfill", "--no-worker"), 0],
			[pgArgs("worker", "--once"), 0],
			[pgArgs("detach"), 0],
			[
				[
					"pg",
					"worker",
					"--db",
					deadDb,
					"--table",
					"flowers",
					"--column",
					"species",
					"--once",
				],
				6,
			],
			[
				[
					"sql",
					"SELECT predict_label('iris-logreg@production', 5.1, 3.5, 1.4, 0.2) AS p",
					"--registry",
					db,
					"--json",
				],
				0,
			],
			[
				[
					"sql",
					"SELECT predict_label('iris-logreg@production', 5.1, 3.5, 1.4, 0.2) AS p",
					"--registry",
					deadDb,
				],
				6,
			],
		];
		for (const [args, code] of runs) {
			const r = await mlship(args);
			assertNoSecret(args.join(" "), r.stdout, r.stderr);
			assert.equal(r.code, code, r.stderr + r.stdout);
		}
	});

	it("serve with a PostgreSQL registry: logs, banner, /metrics and the model list", async () => {
		const s = await serve([
			"--registry",
			db,
			"--model",
			"iris-logreg@production",
		]);
		try {
			const metrics = await (await fetch(`${s.http}/metrics`)).text();
			const models = await (
				await fetch(`${s.http}/v2/repository/index`, { method: "POST" })
			).text();
			assertNoSecret("serve /metrics", metrics);
			assertNoSecret("serve /v2/repository/index", models);
			assertNoSecret("serve logs", JSON.stringify(s.logs()));
		} finally {
			s.proc.kill("SIGTERM");
			await s.exit;
		}
	});

	it("stream from redis:// to nats:// with passwords: the start-up line and the summary", async () => {
		const r = await streamUntil(
			`redis://:${PW}@127.0.0.1:${redis.port}/requests`,
			`nats://app:${PW}@127.0.0.1:${nats.port}/RESULTS/results`,
			"mlship streaming",
		);
		assertNoSecret("stream", r.stdout, r.stderr);
		assert.match(r.stderr, /redis:\/\/:\*\*\*@127\.0\.0\.1/, r.stderr);
		assert.match(r.stderr, /nats:\/\/app:\*\*\*@127\.0\.0\.1/, r.stderr);
	});

	it("stream to a kafka:// broker that is not there: retries are logged without the credentials", async () => {
		const r = await streamUntil(
			`kafka://app:${PW}@127.0.0.1:1/in`,
			"-",
			"retrying",
		);
		assertNoSecret("stream kafka", r.stdout, r.stderr);
		assert.match(r.stderr, /Connection to 127\.0\.0\.1:1 failed/, r.stderr);
	});
});
