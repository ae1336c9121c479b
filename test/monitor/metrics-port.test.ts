// --metrics-port on every long-running pattern (issue 10.6): /metrics with serve's metric names and /health/live,
// /health/ready, scraped from real processes: stream, batch schedule, batch work --follow and pg worker.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { startMetricsServer } from "../../src/monitor/http.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { startMlship, toCsv } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const BOUNDED = { timeout: 180_000 };
const g = golden("iris-logreg");
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/** The metrics port a process announced on stderr (a plain line, or the stream's JSON log line). */
async function announcedPort(stderr: () => string): Promise<number> {
	for (let i = 0; i < 1200; i++) {
		const m =
			/metrics: http:\/\/[^\s]+:(\d+)\/metrics/.exec(stderr()) ??
			/"metrics_port":(\d+)/.exec(stderr());
		if (m) return Number(m[1]);
		await new Promise((r) => setTimeout(r, 50));
	}
	throw new Error(`no metrics port announced: ${stderr()}`);
}

/** Scrapes until `until` matches (up to 60 s); returns the exposition. */
async function scrapeUntil(port: number, until: RegExp): Promise<string> {
	let text = "";
	for (let i = 0; i < 600; i++) {
		text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
		if (until.test(text)) return text;
		await new Promise((r) => setTimeout(r, 100));
	}
	throw new Error(`metrics never matched ${until}:\n${text}`);
}

async function health(port: number, which: "live" | "ready"): Promise<number> {
	return (await fetch(`http://127.0.0.1:${port}/health/${which}`)).status;
}

/** Serve's names, labelled by model and version, are all there. */
function assertServeNames(text: string, model: string, version: string): void {
	const l = `model="${model}",version="${version}"`;
	for (const re of [
		new RegExp(`^mlship_rows_total\\{${l},outcome="scored"\\} [1-9]`, "m"),
		new RegExp(`^mlship_requests_total\\{${l},outcome="ok"\\} [1-9]`, "m"),
		new RegExp(`^mlship_request_duration_seconds_count\\{${l}\\} [1-9]`, "m"),
		new RegExp(`^mlship_batch_size_count\\{${l}\\} [1-9]`, "m"),
		/^mlship_process_cpu_seconds_total /m,
	])
		assert.match(text, re);
}

function stop(p: ChildProcess): void {
	if (p.exitCode === null) p.kill("SIGTERM");
}

describe("the shared metrics server", () => {
	it("serves /metrics (every source, concatenated), /health/live and /health/ready; 404 and 405 otherwise", async () => {
		let ready = false;
		const m = await startMetricsServer({
			port: 0,
			host: "127.0.0.1",
			metrics: [
				async () => ({
					contentType: "text/plain; version=0.0.4",
					body: "a 1\n",
				}),
				async () => ({ contentType: "text/plain", body: "b 2\n" }),
			],
			ready: () => ready,
		});
		try {
			const base = `http://127.0.0.1:${m.port}`;
			const metrics = await fetch(`${base}/metrics`);
			assert.equal(
				metrics.headers.get("content-type"),
				"text/plain; version=0.0.4",
			);
			assert.equal(await metrics.text(), "a 1\nb 2\n");
			assert.equal(await health(m.port, "live"), 200);
			assert.equal(await health(m.port, "ready"), 503);
			ready = true;
			const r = await fetch(`${base}/health/ready`);
			assert.equal(r.status, 200);
			assert.deepEqual(await r.json(), { ready: true });
			const none = await fetch(`${base}/nope`);
			assert.equal(none.status, 404);
			assert.match(
				((await none.json()) as { error: string }).error,
				/try \/metrics/,
			);
			assert.equal(
				(await fetch(`${base}/metrics`, { method: "POST" })).status,
				405,
			);
		} finally {
			await m.close();
		}
	});

	it("GET /status answers what the process says, as JSON; without a status it is not there (404)", async () => {
		let consumed = 0;
		const m = await startMetricsServer({
			port: 0,
			host: "127.0.0.1",
			metrics: [],
			ready: () => true,
			status: () => ({ pattern: "stream", consumed }),
		});
		const bare = await startMetricsServer({
			port: 0,
			host: "127.0.0.1",
			metrics: [],
			ready: () => true,
		});
		try {
			consumed = 7;
			const r = await fetch(`http://127.0.0.1:${m.port}/status`);
			assert.equal(r.status, 200);
			assert.equal(r.headers.get("content-type"), "application/json");
			assert.deepEqual(await r.json(), { pattern: "stream", consumed: 7 });
			const none = await fetch(`http://127.0.0.1:${m.port}/nope`);
			assert.match(
				((await none.json()) as { error: string }).error,
				/ or \/status/,
			);
			const missing = await fetch(`http://127.0.0.1:${bare.port}/status`);
			assert.equal(missing.status, 404);
			assert.match(
				((await missing.json()) as { error: string }).error,
				/try \/metrics, \/health\/live or \/health\/ready$/,
			);
		} finally {
			await m.close();
			await bare.close();
		}
	});

	it("a port in use is refused naming the flag", async () => {
		const a = await startMetricsServer({
			port: 0,
			host: "127.0.0.1",
			metrics: [],
			ready: () => true,
		});
		try {
			await assert.rejects(
				startMetricsServer({
					port: a.port,
					host: "127.0.0.1",
					metrics: [],
					ready: () => true,
				}),
				/cannot listen for metrics on 127\.0\.0\.1:\d+: the address is in use \(EADDRINUSE\): choose another --metrics-port/,
			);
		} finally {
			await a.close();
		}
	});
});

describe("--metrics-port on the long-running commands", () => {
	let dir: string;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-metrics-port-"));
	});
	after(() => rm(dir, { recursive: true, force: true }));

	it(
		"stream: serve's request, latency and batch metrics plus rows by outcome; ready while streaming",
		BOUNDED,
		async () => {
			const p = startMlship([
				"stream",
				"-m",
				bundleDir("iris-logreg"),
				"--from",
				"-",
				"--to",
				"-",
				"--metrics-port",
				"0",
			]);
			const stderr = () => errOf(p.process);
			try {
				const port = await announcedPort(stderr);
				assert.equal(await health(port, "live"), 200);
				for (const r of g.records)
					p.process.stdin?.write(`${JSON.stringify(r)}\n`);
				p.process.stdin?.write("{oops\n");
				const text = await scrapeUntil(
					port,
					/mlship_rows_total\{model="iris-logreg",version="",outcome="dead"\} 1/,
				);
				assertServeNames(text, "iris-logreg", "1");
				assert.match(
					text,
					new RegExp(
						`mlship_rows_total\\{model="iris-logreg",version="1",outcome="scored"\\} ${g.records.length}`,
					),
				);
				assert.equal(await health(port, "ready"), 200);
			} finally {
				p.process.stdin?.end();
				const done = await p.done;
				assert.equal(done.code, 0, done.stderr);
			}
		},
	);

	it(
		"batch schedule: rows and requests of each run; ready from the start",
		BOUNDED,
		async () => {
			await writeFile(
				join(dir, "rows.csv"),
				toCsv(g.records.map((r, id) => ({ id, ...r }))),
			);
			const job = join(dir, "every-second.yaml");
			await writeFile(
				job,
				`model: ${bundleDir("iris-logreg")}\nsource: ${join(dir, "rows.csv")}\nsink: ${join(dir, "scheduled.csv")}\nkeep: [id]\nschedule: "* * * * * *"\n`,
			);
			const p = startMlship([
				"batch",
				"schedule",
				job,
				"--json",
				"--metrics-port",
				"0",
			]);
			try {
				const port = await announcedPort(() => errOf(p.process));
				assert.equal(await health(port, "ready"), 200);
				const text = await scrapeUntil(
					port,
					/mlship_requests_total\{model="iris-logreg",version="1",outcome="ok"\} [2-9]/,
				);
				assertServeNames(text, "iris-logreg", "1");
				const scored = Number(
					/mlship_rows_total\{model="iris-logreg",version="1",outcome="scored"\} (\d+)/.exec(
						text,
					)?.[1],
				);
				assert.ok(
					scored >= 2 * g.records.length && scored % g.records.length === 0,
					`${scored}`,
				);
			} finally {
				stop(p.process);
				assert.equal((await p.done).code, 0);
			}
		},
	);

	describe("on PostgreSQL", () => {
		let server: PostgresServer;
		let dbUrl: string;
		let db: pg.Client;
		before(async () => {
			server = await startPostgres();
			dbUrl = await createDatabase(
				server.url,
				uniqueDatabaseName("metricsport"),
			);
			db = new pg.Client({ connectionString: dbUrl });
			await db.connect();
		});
		after(async () => {
			await db?.end();
			await server?.stop();
		});

		const insert = async (table: string, from: number, to: number) => {
			for (let k = from; k < to; k++) {
				const r = g.records[k % g.records.length] as Record<string, number>;
				await db.query(
					`INSERT INTO ${table} (id, ${FEATURES.join(", ")}) VALUES ($1, $2, $3, $4, $5)`,
					[k, ...FEATURES.map((f) => r[f])],
				);
			}
		};

		it(
			"batch work --follow: rows scored as they arrive; not ready until the model is loaded",
			BOUNDED,
			async () => {
				await db.query(
					`CREATE TABLE inbox (id bigint PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")}, scored_at timestamptz)`,
				);
				await insert("inbox", 0, 10);
				const p = startMlship([
					"batch",
					"work",
					"-m",
					bundleDir("iris-logreg"),
					"-t",
					`${dbUrl}?table=inbox`,
					"-o",
					`${dbUrl}?table=scores`,
					"--workers",
					"1",
					"--follow",
					"--poll-ms",
					"50",
					"--metrics-port",
					"0",
				]);
				try {
					const port = await announcedPort(() => errOf(p.process));
					assert.equal(await health(port, "live"), 200);
					await scrapeUntil(
						port,
						/mlship_rows_total\{[^}]*outcome="scored"\} 10$/m,
					);
					await insert("inbox", 10, 25);
					const text = await scrapeUntil(
						port,
						/mlship_rows_total\{model="iris-logreg",version="1",outcome="scored"\} 25$/m,
					);
					assertServeNames(text, "iris-logreg", "1");
					assert.equal(await health(port, "ready"), 200);
				} finally {
					stop(p.process);
					assert.equal((await p.done).code, 0);
				}
			},
		);

		it("pg worker: rows it fills, by model and version", BOUNDED, async () => {
			await db.query(
				`CREATE TABLE flowers (id bigint PRIMARY KEY, ${FEATURES.map((f) => `${f} double precision`).join(", ")})`,
			);
			const pgArgs = (cmd: string, ...more: string[]) => [
				"pg",
				cmd,
				"--db",
				dbUrl,
				"--table",
				"flowers",
				"--column",
				"species",
				...more,
			];
			const a = startMlship(
				pgArgs("attach", "-m", bundleDir("iris-logreg"), "--no-worker"),
			);
			assert.equal((await a.done).code, 0);
			const p = startMlship(pgArgs("worker", "--metrics-port", "0"));
			try {
				const port = await announcedPort(() => errOf(p.process));
				await insert("flowers", 0, 12);
				const text = await scrapeUntil(
					port,
					/mlship_rows_total\{model="iris-logreg",version="1",outcome="scored"\} 12$/m,
				);
				assertServeNames(text, "iris-logreg", "1");
				assert.equal(await health(port, "ready"), 200);
			} finally {
				stop(p.process);
				assert.equal((await p.done).code, 0);
			}
		});
	});
});

const stderrs = new WeakMap<ChildProcess, string>();
/** Everything a process wrote to stderr so far. */
function errOf(p: ChildProcess): string {
	if (!stderrs.has(p)) {
		stderrs.set(p, "");
		p.stderr?.on("data", (d) => stderrs.set(p, (stderrs.get(p) ?? "") + d));
	}
	return stderrs.get(p) ?? "";
}
