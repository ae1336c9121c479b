// The PostgreSQL payload log against a real server: table created (name checked and quoted), records inserted as
// jsonb, read back by `logs query`; an unreachable server does not stop `serve`, which reports it and keeps serving.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { PayloadLog } from "../../src/payload-log/log.ts";
import {
	checkTableName,
	postgresSink,
} from "../../src/payload-log/postgres.ts";
import { queryPayloadLog } from "../../src/payload-log/query.ts";
import { type PostgresServer, startPostgres } from "../harness/postgres.ts";
import { freePort } from "../harness/service.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { type Served, serve } from "../helpers/serve-process.ts";
import { post } from "../helpers/server.ts";
import { asFloat32 } from "./helpers.ts";

const rows = golden("iris-logreg").records.slice(0, 2);

async function until(cond: () => Promise<boolean>, what: string) {
	for (let i = 0; i < 3000; i++) {
		if (await cond()) return;
		await new Promise((r) => setTimeout(r, 20));
	}
	assert.fail(`timed out waiting for ${what}`);
}

describe("payload log to PostgreSQL", () => {
	let server: PostgresServer;
	let served: Served;
	let db: pg.Client;

	before(async () => {
		server = await startPostgres();
		db = new pg.Client({ connectionString: server.url });
		await db.connect();
		await db.query("CREATE SCHEMA ops");
		served = await serve([
			"-m",
			`${bundleDir("iris-logreg")}:iris`,
			"--log-payloads",
			`${server.url}?table=ops.payloads`,
		]);
	});
	after(async () => {
		if (served && served.proc.exitCode === null) served.proc.kill("SIGKILL");
		await db?.end();
		await server?.stop();
	});

	it("creates the table and inserts each prediction; logs query reads it back", async () => {
		const res = await post(
			`${served.http}/v2/models/iris/predict`,
			{ instances: rows },
			{ "x-request-id": "pg-1" },
		);
		assert.equal(res.status, 200);
		const predictions = JSON.parse(res.body.toString()).predictions;
		await until(
			async () =>
				(await db.query("SELECT 1 FROM ops.payloads WHERE id = 'pg-1'"))
					.rowCount === 1,
			"the row",
		);
		const r = (
			await db.query(
				"SELECT id, model, version, rows, inputs, outputs, latency_ms, entity, caller, now() - time < interval '1 hour' AS recent FROM ops.payloads",
			)
		).rows[0];
		assert.equal(r.id, "pg-1");
		assert.equal(r.model, "iris");
		assert.equal(r.version, 1);
		assert.equal(r.rows, 2);
		assert.deepEqual(r.inputs, asFloat32(rows));
		assert.deepEqual(r.outputs, predictions);
		assert.ok(r.latency_ms > 0);
		assert.equal(r.entity, null);
		assert.equal(r.recent, true);
		const back = await queryPayloadLog(`${server.url}?table=ops.payloads`, {
			model: "iris",
			since: Date.now() - 3_600_000,
		});
		assert.deepEqual(
			back.map((x) => [x.id, x.rows]),
			[["pg-1", 2]],
		);
		assert.deepEqual(back[0]?.outputs, predictions);
		assert.deepEqual(
			await queryPayloadLog(`${server.url}?table=ops.payloads`, {
				id: "nope",
			}),
			[],
		);
	});

	it("the default table is mlship_payload_log", async () => {
		const log = new PayloadLog({
			sink: postgresSink(server.url, "mlship_payload_log"),
		});
		await until(
			async () =>
				log.status().available &&
				(await db.query("SELECT to_regclass('mlship_payload_log') AS t"))
					.rows[0].t !== null,
			"the table",
		);
		await log.close();
	});

	it("refuses a table name that is not an identifier", () => {
		for (const bad of ['x"; DROP TABLE y; --', "a.b.c", "1abc", "a".repeat(64)])
			assert.throws(() => checkTableName(bad), /expected NAME or SCHEMA\.NAME/);
		assert.equal(checkTableName("ops.payloads"), "ops.payloads");
	});
});

describe("payload log to an unreachable PostgreSQL", () => {
	it("serve starts, stays ready, reports the destination down in readiness and metrics, and keeps answering", async () => {
		const port = await freePort();
		const url = `postgres://mlship:secret-pw@127.0.0.1:${port}/postgres`;
		const served = await serve([
			"-m",
			`${bundleDir("iris-logreg")}:iris`,
			"--log-payloads",
			url,
		]);
		try {
			await until(async () => {
				const r = (await (
					await fetch(`${served.http}/v2/health/ready`)
				).json()) as { payload_log: { available: boolean } };
				return r.payload_log.available === false;
			}, "the destination to be reported down");
			const ready = await fetch(`${served.http}/v2/health/ready`);
			assert.equal(ready.status, 200);
			const body = (await ready.json()) as {
				ready: boolean;
				payload_log: { destination: string; reason: string };
			};
			assert.equal(body.ready, true);
			assert.match(body.payload_log.reason, /connect|ECONNREFUSED/i);
			assert.doesNotMatch(JSON.stringify(body), /secret-pw/);
			for (let k = 0; k < 3; k++)
				assert.equal(
					(
						await post(`${served.http}/v2/models/iris/predict`, {
							instances: rows,
						})
					).status,
					200,
				);
			const metrics = await (await fetch(`${served.http}/metrics`)).text();
			assert.match(metrics, /^mlship_payload_log_available 0$/m);
			assert.match(metrics, /^mlship_payload_log_write_errors_total [1-9]/m);
			assert.match(metrics, /^mlship_payload_log_queue_depth 3$/m);
		} finally {
			served.proc.kill("SIGTERM");
			assert.equal(await served.exit, 0);
		}
	});
});
