// The payload log's queue: sampling, the drop counter under a forced overload, a failing destination (retried with
// backoff, then recovered), and records decoded through the model's table plan. The destination here is a sink the
// test controls (to block or fail on purpose); the real destinations have tests of their own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Row } from "../../src/codec/table.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { PayloadLog, type PayloadSink } from "../../src/payload-log/log.ts";
import { parseDestination } from "../../src/payload-log/open.ts";
import type { PayloadRecord } from "../../src/payload-log/record.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { asFloat32 } from "./helpers.ts";

/** A sink that keeps what it is given; `gate` (when set) holds every write until released; `fail` throws. */
class TestSink implements PayloadSink {
	readonly kind = "test";
	readonly where = "memory";
	records: PayloadRecord[] = [];
	fail: Error | undefined;
	gate: Promise<void> | undefined;
	opens = 0;
	async open() {
		this.opens++;
		if (this.fail) throw this.fail;
	}
	async write(records: readonly PayloadRecord[]) {
		await this.gate;
		if (this.fail) throw this.fail;
		this.records.push(...records);
	}
	async close() {}
}

const rows = golden("iris-logreg").records.slice(0, 3);

// The heap check below runs a full collection first.
setFlagsFromString("--expose-gc");

async function until(cond: () => boolean, what: string): Promise<void> {
	for (let i = 0; i < 2000 && !cond(); i++)
		await new Promise((r) => setTimeout(r, 10));
	assert.ok(cond(), `timed out waiting for ${what}`);
}

function metric(text: string, name: string): number {
	const line = text.split("\n").find((l) => l.startsWith(name));
	assert.ok(line, `no ${name} in\n${text}`);
	return Number(line.slice(name.length).trim());
}

describe("payload log", () => {
	let dp: DataPlane;
	let log: PayloadLog;
	const sink = new TestSink();

	before(async () => {
		log = new PayloadLog({ sink, backoff: { minMs: 5, maxMs: 20 } });
		dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
	});
	after(async () => {
		await dp?.close();
		await log?.close();
	});

	it("logs every prediction by default, decoded to feature and output records, with its request id", async () => {
		const res = await dp.predict("iris", undefined, rows, {
			requestId: "req-1",
		});
		await until(() => sink.records.length === 1, "the record");
		const r = sink.records[0] as PayloadRecord;
		assert.equal(r.id, "req-1");
		assert.equal(r.model, "iris");
		assert.equal(r.version, 1);
		assert.equal(r.entity, null);
		assert.equal(r.rows, 3);
		assert.ok(r.latency_ms > 0);
		// Inputs as the model received them (float32), outputs as the answer gave them.
		assert.deepEqual(JSON.parse(r.inputs), asFloat32(rows));
		assert.deepEqual(JSON.parse(r.outputs), res.predictions);
		assert.deepEqual(log.status(), {
			destination: "test:memory",
			available: true,
			queued: 0,
			queued_bytes: 0,
			written: 1,
			dropped: 0,
		});
	});

	it("warm-ups are not logged", () => {
		// The server warmed the model up before the first test; only that test's request was logged.
		assert.equal(sink.records.filter((r) => r.id !== "req-1").length, 0);
	});
});

describe("payload log sampling", () => {
	it("keeps the share drawn below the rate", async () => {
		const sink = new TestSink();
		const draws = [0.1, 0.9, 0.24, 0.25, 0.5, 0.01];
		let i = 0;
		const log = new PayloadLog({
			sink,
			sample: 0.25,
			random: () => draws[i++ % draws.length] as number,
		});
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		try {
			for (let k = 0; k < draws.length; k++)
				await dp.predict("iris", undefined, rows.slice(0, 1), {
					requestId: `s-${k}`,
				});
			await until(() => sink.records.length === 3, "three records");
			assert.deepEqual(
				sink.records.map((r) => r.id),
				["s-0", "s-2", "s-5"],
			);
		} finally {
			await dp.close();
			await log.close();
		}
	});

	it("refuses a rate outside 0..1", () => {
		assert.throws(
			() => new PayloadLog({ sink: new TestSink(), sample: 1.5 }),
			/between 0 and 1/,
		);
	});
});

describe("payload log under overload", () => {
	it("drops and counts what does not fit the queue; every prediction still answers", async () => {
		const sink = new TestSink();
		let release = () => {};
		sink.gate = new Promise((r) => {
			release = r;
		});
		const log = new PayloadLog({ sink, queueSize: 3, batchSize: 1 });
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		try {
			const answers = await Promise.all(
				Array.from({ length: 10 }, (_, k) =>
					dp.predict("iris", undefined, rows.slice(0, 1), {
						requestId: `o-${k}`,
					}),
				),
			);
			assert.equal(answers.length, 10);
			// The destination blocks: three records wait (one of them being written), seven were dropped.
			assert.equal(log.status().queued, 3);
			assert.equal(log.status().dropped, 7);
			const text = (await log.exposition()).body;
			assert.equal(
				metric(text, 'mlship_payload_log_dropped_total{reason="queue_full"}'),
				7,
			);
			release();
			await until(() => sink.records.length === 3, "the queued records");
			assert.equal(
				metric(
					(await log.exposition()).body,
					"mlship_payload_log_written_total",
				),
				3,
			);
		} finally {
			await dp.close();
			await log.close();
		}
	});
});

describe("payload log memory under overload", () => {
	it("keeps its queue within the byte budget at a destination that is down, counts every record it drops, and the budget is the records' memory", async () => {
		const sink = new TestSink();
		sink.fail = new Error("connection refused");
		const budget = 4_000_000; // ~2,700 records of this model: large beside the heap's other growth
		const log = new PayloadLog({
			sink,
			queueSize: 1_000_000, // the byte budget is what binds
			queueBytes: budget,
			backoff: { minMs: 60_000, maxMs: 60_000 },
		});
		const dp = await createDataPlane({
			models: [{ name: "gbdt", source: bundleDir("breast-cancer-gbdt") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		const gc = runInNewContext("gc") as () => void;
		const record = golden("breast-cancer-gbdt").records[0] as Row;
		try {
			await until(() => sink.opens > 0, "the first attempt to open");
			gc();
			const heap0 = process.memoryUsage().heapUsed;
			const total = 5000;
			for (let k = 0; k < total; k += 50)
				await Promise.all(
					Array.from({ length: 50 }, (_, j) =>
						dp.predict("gbdt", undefined, [record], {
							requestId: `m-${k + j}`,
						}),
					),
				);
			const s = log.status();
			assert.ok(
				s.queued_bytes <= budget,
				`${s.queued_bytes} queued bytes > budget ${budget}`,
			);
			assert.ok(s.queued > 2000, `only ${s.queued} queued`);
			assert.equal(
				s.queued + s.dropped,
				total,
				"every record queued or counted",
			);
			const text = (await log.exposition()).body;
			assert.equal(
				metric(text, 'mlship_payload_log_dropped_total{reason="queue_full"}'),
				s.dropped,
			);
			assert.equal(
				metric(text, "mlship_payload_log_queue_bytes"),
				s.queued_bytes,
			);
			// What the budget counts is what the queue holds: the heap grew by no more than the counted bytes
			// (+25%). JSON built piece by piece and kept unflattened took 2.6× its length for this model.
			gc();
			const grew = process.memoryUsage().heapUsed - heap0;
			assert.ok(
				grew <= s.queued_bytes * 1.25,
				`heap grew ${grew} bytes for ${s.queued} records counted at ${s.queued_bytes}`,
			);
		} finally {
			await dp.close();
			await log.close(0);
		}
	});
});

describe("payload log with a failing destination", () => {
	it("reports it unavailable, keeps the records queued and retries until it is back", async () => {
		const sink = new TestSink();
		sink.fail = new Error("connect ECONNREFUSED 127.0.0.1:9");
		const errors: (number | undefined)[] = [];
		let recovered = 0;
		const log = new PayloadLog({
			sink,
			backoff: { minMs: 5, maxMs: 20 },
			onError: (_e, ms) => errors.push(ms),
			onRecover: () => recovered++,
		});
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		try {
			await until(() => errors.length >= 2, "two failed attempts");
			assert.equal(log.status().available, false);
			assert.match(log.status().reason ?? "", /ECONNREFUSED/);
			assert.equal(
				metric((await log.exposition()).body, "mlship_payload_log_available"),
				0,
			);
			await dp.predict("iris", undefined, rows.slice(0, 1), {
				requestId: "while-down",
			});
			assert.equal(log.status().queued, 1);
			for (const ms of errors)
				assert.ok(ms !== undefined && ms >= 5 && ms <= 20);
			sink.fail = undefined;
			await until(() => sink.records.length === 1, "the record after recovery");
			assert.equal(sink.records[0]?.id, "while-down");
			assert.equal(log.status().available, true);
			assert.ok(recovered >= 1);
		} finally {
			await dp.close();
			await log.close();
		}
	});

	it("at close, counts what it could not write as dropped (closed)", async () => {
		const sink = new TestSink();
		sink.fail = new Error("down");
		const log = new PayloadLog({ sink, backoff: { minMs: 5, maxMs: 10 } });
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
			hooks: [log.hook],
		});
		await dp.predict("iris", undefined, rows.slice(0, 1));
		await dp.close();
		await log.close(50);
		assert.equal(log.status().dropped, 1);
		assert.equal(
			metric(
				(await log.exposition()).body,
				'mlship_payload_log_dropped_total{reason="closed"}',
			),
			1,
		);
	});
});

describe("payload log destinations", () => {
	it("parses a directory, postgres:// (default table) and kafka://; refuses other schemes", () => {
		assert.deepEqual(parseDestination("./payloads"), {
			kind: "parquet",
			dir: "./payloads",
		});
		assert.deepEqual(parseDestination("parquet:/var/log/p"), {
			kind: "parquet",
			dir: "/var/log/p",
		});
		assert.deepEqual(parseDestination("postgres://u@h/db"), {
			kind: "postgres",
			url: "postgres://u@h/db",
			table: "mlship_payload_log",
		});
		assert.deepEqual(
			parseDestination("postgresql://u@h/db?table=ops.log&sslmode=disable"),
			{
				kind: "postgres",
				url: "postgresql://u@h/db?sslmode=disable",
				table: "ops.log",
			},
		);
		assert.deepEqual(parseDestination("kafka://127.0.0.1:9092/p"), {
			kind: "kafka",
			uri: "kafka://127.0.0.1:9092/p",
		});
		assert.throws(
			() => parseDestination("s3://bucket/p"),
			/unknown scheme 's3:'.*directory.*postgres.*kafka/,
		);
	});
});
