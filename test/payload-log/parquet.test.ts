// The Parquet payload log end to end: `mlship serve --log-payloads DIR` logs REST and gRPC predictions, writes them
// at shutdown, and `mlship logs query` reads them back; files rotate by size and old ones go after the retention.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import { PayloadLog } from "../../src/payload-log/log.ts";
import { FILE_PATTERN, parquetSink } from "../../src/payload-log/parquet.ts";
import { queryPayloadLog } from "../../src/payload-log/query.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";
import { type Served, serve } from "../helpers/serve-process.ts";
import { post } from "../helpers/server.ts";
import { InferenceClient, toContents } from "../server/grpc/client.ts";
import { asFloat32 } from "./helpers.ts";

const run = promisify(execFile);
const rows = golden("iris-logreg").records.slice(0, 2);

async function logsQuery(args: string[]): Promise<unknown[]> {
	const { stdout } = await run(process.execPath, [
		CLI,
		"logs",
		"query",
		...args,
		"--json",
	]);
	return JSON.parse(stdout) as unknown[];
}

describe("mlship serve --log-payloads DIR", () => {
	let dir: string;
	let served: Served;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-payloads-"));
		served = await serve([
			"-m",
			`${bundleDir("iris-logreg")}:iris`,
			"--log-payloads",
			dir,
		]);
	});
	after(async () => {
		if (served && served.proc.exitCode === null) served.proc.kill("SIGKILL");
		await rm(dir, { recursive: true, force: true });
	});

	it("logs REST and gRPC predictions; SIGTERM writes them; logs query reads them back", async () => {
		const rest = await post(
			`${served.http}/v2/models/iris/predict`,
			{ instances: rows },
			{ "x-request-id": "rest-1" },
		);
		assert.equal(rest.status, 200);
		const predictions = JSON.parse(rest.body.toString()).predictions;
		const ready = (await (
			await fetch(`${served.http}/v2/health/ready`)
		).json()) as { payload_log: { destination: string; available: boolean } };
		assert.equal(ready.payload_log.destination, `parquet:${dir}`);
		assert.equal(ready.payload_log.available, true);
		const client = new InferenceClient(served.grpcPort);
		try {
			await client.infer({
				model_name: "iris",
				id: "grpc-1",
				inputs: [
					{
						name: "float_input",
						datatype: "FP32",
						shape: [1, 4],
						contents: toContents("FP32", [6.3, 3.3, 6, 2.5]),
					},
				],
			});
		} finally {
			client.close();
		}
		served.proc.kill("SIGTERM");
		assert.equal(await served.exit, 0);
		const files = (await readdir(dir)).filter((f) => FILE_PATTERN.test(f));
		assert.equal(files.length, 1, `one file at shutdown, got ${files}`);

		const all = (await logsQuery(["--from", dir, "--model", "iris"])) as {
			id: string;
			model: string;
			version: number;
			rows: number;
			inputs: unknown[];
			outputs: unknown[];
			latency_ms: number;
			time: string;
		}[];
		assert.deepEqual(
			all.map((r) => r.id),
			["grpc-1", "rest-1"],
		);
		const r = all[1];
		assert.ok(r);
		assert.equal(r.version, 1);
		assert.equal(r.rows, 2);
		assert.deepEqual(r.inputs, asFloat32(rows));
		assert.deepEqual(r.outputs, predictions);
		assert.ok(r.latency_ms > 0);
		assert.ok(Date.now() - Date.parse(r.time) < 3_600_000);
		assert.deepEqual(
			all[0]?.inputs,
			asFloat32([
				{
					sepal_length: 6.3,
					sepal_width: 3.3,
					petal_length: 6,
					petal_width: 2.5,
				},
			]),
		);

		const one = (await logsQuery(["--from", dir, "--id", "rest-1"])) as {
			id: string;
		}[];
		assert.deepEqual(
			one.map((x) => x.id),
			["rest-1"],
		);
		assert.deepEqual(await logsQuery(["--from", dir, "--model", "other"]), []);
		assert.equal(
			(await logsQuery(["--from", dir, "--since", "1h", "--limit", "1"]))
				.length,
			1,
		);
	});

	it("logs query without a log names what to pass", async () => {
		await assert.rejects(
			run(process.execPath, [CLI, "logs", "query"], {
				env: { ...process.env, MLSHIP_LOG_PAYLOADS: "" },
			}),
			(e: { stderr: string }) => /--from DIR/.test(e.stderr),
		);
	});
});

describe("Parquet rotation and retention", () => {
	it("starts a new file once the size is reached, and deletes files older than the retention", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-rotate-"));
		try {
			// A log file from long ago (and a file that is not the log's, which is never touched).
			const old = join(dir, "payloads-20200101T000000000Z-1-0.parquet");
			await writeFile(old, "old");
			await utimes(old, new Date("2020-01-01"), new Date("2020-01-01"));
			await writeFile(join(dir, "notes.txt"), "mine");
			const log = new PayloadLog({
				sink: parquetSink(dir, {
					rotateBytes: 1,
					retentionMs: 86_400_000,
				}),
				batchSize: 1,
			});
			const dp = await createDataPlane({
				models: [{ name: "iris", source: bundleDir("iris-logreg") }],
				processMetrics: false,
				hooks: [log.hook],
			});
			for (let k = 0; k < 3; k++)
				await dp.predict("iris", undefined, rows.slice(0, 1), {
					requestId: `r-${k}`,
				});
			await dp.close();
			await log.close();
			const names = await readdir(dir);
			assert.ok(!names.includes("payloads-20200101T000000000Z-1-0.parquet"));
			assert.ok(names.includes("notes.txt"));
			assert.equal(names.filter((f) => FILE_PATTERN.test(f)).length, 3);
			assert.deepEqual((await queryPayloadLog(dir)).map((r) => r.id).sort(), [
				"r-0",
				"r-1",
				"r-2",
			]);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});

	it("starts a new file when the rotation interval has passed, while the log is open", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-rotate-time-"));
		const log = new PayloadLog({
			sink: parquetSink(dir, { rotateMs: 50 }),
			flushMs: 0,
		});
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		try {
			await dp.predict("iris", undefined, rows.slice(0, 1), {
				requestId: "timed",
			});
			let files: string[] = [];
			for (let i = 0; i < 1000 && files.length === 0; i++) {
				await new Promise((r) => setTimeout(r, 20));
				files = (await readdir(dir)).filter((f) => FILE_PATTERN.test(f));
			}
			assert.equal(files.length, 1, "a file before close");
			assert.deepEqual(
				(await queryPayloadLog(dir)).map((r) => r.id),
				["timed"],
			);
		} finally {
			await dp.close();
			await log.close();
			await rm(dir, { recursive: true, force: true });
		}
	});

	it("a field holding the spool's separator or a newline cannot split a record", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-sep-"));
		const log = new PayloadLog({ sink: parquetSink(dir) });
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		try {
			await dp.predict("iris", undefined, rows.slice(0, 2), {
				requestId: "a\x1fb\nc",
			});
			await dp.close();
			await log.close();
			const back = await queryPayloadLog(dir);
			assert.deepEqual(
				back.map((r) => [r.id, r.rows, r.inputs.length]),
				[["a b c", 2, 2]],
			);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});

	it("a record longer than DuckDB's default CSV line (2 MB) is written, beside ordinary ones", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-long-"));
		const sink = parquetSink(dir);
		try {
			await sink.open();
			// One request of 40,000 rows: ~3.4 MB of input JSON on one spool line.
			const big = JSON.stringify(
				Array.from({ length: 40_000 }, (_, i) => ({
					sepal_length: 5.1 + i / 1e5,
					sepal_width: 3.5,
					petal_length: 1.4,
					petal_width: 0.2,
				})),
			);
			assert.ok(big.length > 3_000_000);
			const record = (id: string, inputs: string, rows: number) => ({
				id,
				time: Date.UTC(2026, 0, 1),
				model: "iris",
				version: 1,
				entity: null,
				caller: null,
				latency_ms: 1.5,
				rows,
				inputs,
				outputs: '[{"label":"setosa"}]',
			});
			await sink.write([
				record("small", '[{"sepal_length":5.1}]', 1),
				record("big", big, 40_000),
			]);
			await sink.close();
			const back = await queryPayloadLog(dir, { limit: 10 });
			assert.deepEqual(back.map((r) => [r.id, r.rows]).sort(), [
				["big", 40_000],
				["small", 1],
			]);
			assert.deepEqual(
				(await readdir(dir)).filter((f) => f.startsWith(".spool")),
				[],
				"no spool left behind",
			);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});

	it("an empty directory reads as no records; a missing one is an error naming it", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-empty-"));
		try {
			assert.deepEqual(await queryPayloadLog(dir), []);
			await assert.rejects(
				queryPayloadLog(join(dir, "nope")),
				/no payload log at .*nope/,
			);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});

describe("mlship batch run --log-payloads DIR", () => {
	it("logs each scored chunk's rows; with --log-sample 0 nothing", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-batch-log-"));
		try {
			const g = golden("iris-logreg");
			const input = join(dir, "in.jsonl");
			await writeFile(
				input,
				`${g.records.map((r) => JSON.stringify(r)).join("\n")}\n`,
			);
			let n = 0;
			const batchRun = (...extra: string[]) =>
				run(process.execPath, [
					CLI,
					"batch",
					"run",
					"-m",
					bundleDir("iris-logreg"),
					"-s",
					input,
					"-o",
					join(dir, `out${n++}.jsonl`),
					...extra,
				]);
			const logDir = join(dir, "log");
			await batchRun("--log-payloads", logDir);
			const logged = await queryPayloadLog(logDir);
			assert.equal(
				logged.reduce((k, r) => k + r.rows, 0),
				g.records.length,
			);
			assert.equal(logged.flatMap((r) => r.inputs).length, g.records.length);
			assert.equal(logged[0]?.model, "iris-logreg");
			const none = join(dir, "none");
			await batchRun("--log-payloads", none, "--log-sample", "0");
			assert.deepEqual(await queryPayloadLog(none), []);
			await assert.rejects(
				batchRun("--log-payloads", none, "--log-sample", "2"),
				(e: { stderr: string }) =>
					/--log-sample must be a number from 0 to 1/.test(e.stderr),
			);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});
