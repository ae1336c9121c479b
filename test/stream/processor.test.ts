// The stream processor's delivery rules with in-process source and sink and a real model: back-pressure, drain, retries, ack order.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import {
	StreamProcessor,
	type StreamStats,
} from "../../src/stream/processor.ts";
import type {
	InMessage,
	OutMessage,
	Sink,
	Source,
} from "../../src/stream/types.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let dp: DataPlane;
before(async () => {
	dp = await createDataPlane({
		models: [{ name: "iris", source: bundleDir("iris-logreg") }],
		processMetrics: false,
	});
});
after(() => dp.close());

const records = golden("iris-logreg").records;

/** An in-memory queue: read() hands out messages in order; it records how many were unacked at most and the ack order. */
class MemorySource implements Source {
	readonly #queue: InMessage[];
	unacked = 0;
	maxUnacked = 0;
	reads = 0;
	readonly acked: string[] = [];
	constructor(n: number) {
		this.#queue = Array.from({ length: n }, (_, i) => ({
			id: String(i),
			key: Buffer.from(`k${i}`),
			value: Buffer.from(JSON.stringify(records[i % records.length])),
			headers: [],
		}));
	}
	async read(max: number): Promise<InMessage[]> {
		this.reads++;
		await new Promise((r) => setImmediate(r));
		const got = this.#queue.splice(0, max);
		this.unacked += got.length;
		this.maxUnacked = Math.max(this.maxUnacked, this.unacked);
		return got;
	}
	async ack(messages: readonly InMessage[]): Promise<void> {
		this.unacked -= messages.length;
		this.acked.push(...messages.map((m) => m.id));
	}
	async close(): Promise<void> {}
}

/** A sink that holds every write until opened, and can fail its first writes. */
class GatedSink implements Sink {
	readonly written: OutMessage[] = [];
	failures: number;
	#open: Promise<void>;
	open!: () => void;
	constructor(failures = 0, open = false) {
		this.failures = failures;
		this.#open = open ? Promise.resolve() : new Promise((r) => (this.open = r));
		if (open) this.open = () => {};
	}
	async write(messages: readonly OutMessage[]): Promise<void> {
		await this.#open;
		if (this.failures > 0) {
			this.failures--;
			throw new Error("broker unavailable");
		}
		this.written.push(...messages);
	}
	async close(): Promise<void> {}
}

async function until(cond: () => boolean, what: string): Promise<void> {
	for (let i = 0; i < 2000 && !cond(); i++)
		await new Promise((r) => setTimeout(r, 5));
	assert.ok(cond(), `timed out waiting for ${what}`);
}

it("stops reading at max-in-flight while the sink is stuck (back-pressure), then finishes everything in read order", async () => {
	const source = new MemorySource(400);
	const sink = new GatedSink();
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source,
		sink,
		batchSize: 10,
		maxInFlight: 40,
		waitMs: 10,
	});
	const run = p.run();
	await until(() => source.unacked === 40, "40 messages in flight");
	const readsWhenFull = source.reads;
	await new Promise((r) => setTimeout(r, 100));
	assert.equal(
		source.reads,
		readsWhenFull,
		"no read while max-in-flight messages are unacked",
	);
	assert.equal(sink.written.length, 0);
	sink.open();
	await until(() => source.acked.length === 400, "every message acked");
	p.stop();
	const stats = await run;
	assert.equal(source.maxUnacked, 40);
	assert.deepEqual(
		source.acked,
		Array.from({ length: 400 }, (_, i) => String(i)),
		"acks come in read order",
	);
	assert.equal(sink.written.length, 400);
	assert.equal(stats.produced, 400);
	assert.deepEqual(stats.versions, { "1": 400 });
});

it("stop() drains: in-flight messages are produced and acked before run() resolves, and nothing more is read", async () => {
	const source = new MemorySource(200);
	const sink = new GatedSink();
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source,
		sink,
		batchSize: 10,
		maxInFlight: 30,
		waitMs: 10,
	});
	const run = p.run();
	await until(() => source.unacked === 30, "30 messages in flight");
	p.stop();
	let resolved = false;
	void run.then(() => {
		resolved = true;
	});
	await new Promise((r) => setTimeout(r, 50));
	assert.equal(resolved, false, "run() waits for the in-flight messages");
	sink.open();
	const stats = await run;
	assert.equal(stats.consumed, 30);
	assert.equal(stats.acked, 30);
	assert.equal(sink.written.length, 30);
	assert.equal(source.unacked, 0);
});

it("a failing sink is retried and nothing is acked before the results are written", async () => {
	const source = new MemorySource(20);
	const sink = new GatedSink(3, true);
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source,
		sink,
		batchSize: 20,
		maxInFlight: 20,
		waitMs: 10,
	});
	const run = p.run();
	await until(() => sink.written.length === 20, "the write to succeed");
	await until(() => source.acked.length === 20, "the acks");
	p.stop();
	const stats = await run;
	assert.equal(stats.retries, 3);
	assert.equal(stats.produced, 20);
});

it("messages without a dead-letter queue are logged and acked; the stream goes on", async () => {
	const source = new MemorySource(0);
	const bad: InMessage = {
		id: "x",
		key: null,
		value: Buffer.from("not json"),
		headers: [],
	};
	source.read = async (max) => {
		source.read = MemorySource.prototype.read.bind(source);
		void max;
		source.unacked++;
		return [bad];
	};
	const logged: string[] = [];
	const sink = new GatedSink(0, true);
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source,
		sink,
		waitMs: 10,
		log: (_l, msg) => logged.push(msg),
	});
	const run = p.run();
	await until(() => source.acked.length === 1, "the bad message acked");
	p.stop();
	const stats = await run;
	assert.equal(stats.dead, 1);
	assert.equal(sink.written.length, 0);
	assert.match(logged.join("\n"), /no --dlq/);
});

it("at shutdown, messages the model cannot score yet are left unacked for redelivery, never dead-lettered", async () => {
	await dp.unload("iris"); // not ready: MLSHIP_UNAVAILABLE, a temporary condition
	try {
		const source = new MemorySource(25);
		const sink = new GatedSink(0, true);
		const dlq = new GatedSink(0, true);
		const logged: string[] = [];
		const p = new StreamProcessor({
			dataPlane: dp,
			model: "iris",
			source,
			sink,
			dlq,
			batchSize: 10,
			maxInFlight: 30,
			waitMs: 10,
			log: (_l, msg) => logged.push(msg),
		});
		const run = p.run();
		await until(
			() => p.stats.retries >= 3,
			"scoring retried while the model is unavailable",
		);
		p.stop();
		const stats = await run;
		assert.equal(
			dlq.written.length,
			0,
			"a temporary condition is not a dead letter",
		);
		assert.equal(sink.written.length, 0);
		assert.deepEqual(
			source.acked,
			[],
			"nothing acked: the broker delivers them again",
		);
		assert.equal(stats.left, stats.consumed);
		assert.ok(stats.consumed > 0);
		assert.ok(logged.some((m) => /left unacked for redelivery/.test(m)));
	} finally {
		await dp.load("iris");
	}
});

/** A record, a tombstone and a bad payload (not UTF-8), each with an event time; run through a processor with `opts`. */
async function mixed(
	opts: Partial<ConstructorParameters<typeof StreamProcessor>[0]>,
): Promise<{ sink: GatedSink; dlq: GatedSink; stats: StreamStats }> {
	const messages: InMessage[] = [
		{
			id: "0",
			key: Buffer.from([0xff]),
			value: Buffer.from(JSON.stringify(records[0])),
			headers: [
				["hop", Buffer.from("a")],
				["nul", null],
				["hop", Buffer.from("b")],
			],
			timestamp: 1_000,
			origin: { topic: "in", partition: 2, offset: "7" },
		},
		{
			id: "1",
			key: Buffer.from("gone"),
			value: null,
			headers: [],
			timestamp: 2_000,
		},
		{
			id: "2",
			key: null,
			value: Buffer.from([0x00, 0x80, 0xff]),
			headers: [["x", Buffer.from([0xfe])]],
			timestamp: 3_000,
			origin: { topic: "in", partition: 0, offset: "9" },
		},
	];
	let given = false;
	const acked: string[] = [];
	const source: Source = {
		async read() {
			if (given) return null;
			given = true;
			return messages;
		},
		async ack(ms) {
			acked.push(...ms.map((m) => m.id));
		},
		async close() {},
	};
	const sink = new GatedSink(0, true);
	const dlq = new GatedSink(0, true);
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source,
		sink,
		dlq,
		waitMs: 10,
		...opts,
	});
	const stats = await p.run();
	assert.deepEqual(acked, ["0", "1", "2"], "every message is acked");
	return { sink, dlq, stats };
}

it("defaults: the result keeps key bytes, ordered headers (repeats, nulls) and event time; a tombstone is forwarded; a dead letter is the original record plus Connect headers", async () => {
	const { sink, dlq, stats } = await mixed({});
	const [result, tomb] = sink.written;
	assert.ok(result && tomb && sink.written.length === 2);
	assert.deepEqual(result.key, Buffer.from([0xff]));
	assert.deepEqual(result.headers.slice(0, 3), [
		["hop", Buffer.from("a")],
		["nul", null],
		["hop", Buffer.from("b")],
	]);
	assert.equal(result.timestamp, 1_000);
	assert.equal(result.partition, 2, "the input partition, for same-as-input");
	assert.deepEqual(tomb, {
		key: Buffer.from("gone"),
		value: null,
		headers: [],
		timestamp: 2_000,
		partition: undefined,
	});
	const [d] = dlq.written;
	assert.ok(d);
	assert.deepEqual(d.value, Buffer.from([0x00, 0x80, 0xff]));
	assert.equal(d.timestamp, 3_000);
	assert.deepEqual(d.headers[0], ["x", Buffer.from([0xfe])]);
	const h = new Map(d.headers.map(([k, v]) => [k, v?.toString()]));
	assert.equal(h.get("__connect.errors.topic"), "in");
	assert.equal(h.get("__connect.errors.partition"), "0");
	assert.equal(h.get("__connect.errors.offset"), "9");
	assert.equal(
		h.get("__connect.errors.exception.class.name"),
		"MLSHIP_INVALID_INPUT",
	);
	assert.equal(stats.produced, 2);
	assert.equal(stats.dead, 1);
});

it("--tombstones skip acks a tombstone without output; --tombstones dlq dead-letters it with its null value", async () => {
	const skip = await mixed({ tombstones: "skip" });
	assert.equal(skip.sink.written.length, 1);
	assert.equal(skip.stats.skipped, 1);
	const dead = await mixed({ tombstones: "dlq" });
	assert.equal(dead.sink.written.length, 1);
	const t = dead.dlq.written.find((m) => m.key?.toString() === "gone");
	assert.ok(t, "the tombstone is a dead letter");
	assert.equal(t.value, null, "still null, not empty");
	assert.match(
		t.headers
			.find(([n]) => n === "__connect.errors.exception.message")?.[1]
			?.toString() ?? "",
		/tombstone/,
	);
});

it("--timestamp now leaves the result's time to the producer; --dlq-format envelope writes JSON with the payload as base64 when it is not UTF-8", async () => {
	const { sink, dlq } = await mixed({
		timestamp: "now",
		dlqFormat: "envelope",
	});
	for (const m of sink.written) assert.equal(m.timestamp, undefined);
	const [d] = dlq.written;
	assert.ok(d?.value);
	const env = JSON.parse(d.value.toString()) as Record<string, unknown>;
	assert.equal(env.code, "MLSHIP_INVALID_INPUT");
	assert.equal(
		env.payload_base64,
		Buffer.from([0x00, 0x80, 0xff]).toString("base64"),
	);
	assert.equal(env.payload, undefined);
	assert.equal(env.source_id, "2");
	assert.equal(d.timestamp, 3_000, "a dead letter keeps the input's time");
});
