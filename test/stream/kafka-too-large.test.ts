// A result larger than the output topic accepts (max.message.bytes) on a real Kafka: its input is dead-lettered with
// a reason naming both sizes, counted, and the stream goes on (it used to be retried forever).
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { openSink, openSource } from "../../src/stream/connectors/index.ts";
import { headerText, textHeader } from "../../src/stream/headers.ts";
import { CONNECT_HEADERS } from "../../src/stream/message.ts";
import { StreamProcessor } from "../../src/stream/processor.ts";
import { replayDeadLetters } from "../../src/stream/replay.ts";
import type { InMessage, Sink, Source } from "../../src/stream/types.ts";
import { createSmallTopic, startKafka } from "../harness/kafka.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { Collector, produce } from "../helpers/stream-process.ts";

const kafka = await startKafka();
let dp: DataPlane;
before(async () => {
	dp = await createDataPlane({
		models: [{ name: "bc", source: bundleDir("breast-cancer-gbdt") }],
		processMetrics: false,
	});
});
after(async () => {
	await dp?.close();
	await kafka.stop();
});

const records = golden("breast-cancer-gbdt").records as object[];
const many = (n: number) =>
	JSON.stringify(
		Array.from({ length: n }, (_, i) => records[i % records.length]),
	);
/** The output topic takes record batches of at most this many bytes: a 400-record result (~27 KB) is more. */
const LIMIT = 20_000;

const topicWithLimit = (topic: string) =>
	createSmallTopic(kafka.bootstrap, topic, LIMIT);

let n = 0;
async function run(exactlyOnce: boolean) {
	const label = `${exactlyOnce ? "eos" : "alo"}-${++n}`;
	const from = `${kafka.url}/big-in-${label}?partitions=1`;
	const to = `${kafka.url}/big-out-${label}`;
	const dlqUri = `${kafka.url}/big-dlq-${label}?partitions=1`;
	await topicWithLimit(`big-out-${label}`);
	const inputs = [many(1), many(400), many(2), many(400), many(3)];
	await produce(
		from,
		inputs.map((v, i) => ({
			key: Buffer.from(`k${i}`),
			value: Buffer.from(v),
			headers: [textHeader("x-request-id", `m${i}`)],
		})),
	);
	const source: Source = await openSource(from, {
		group: `g-${label}`,
		consumer: "c1",
	});
	const sink: Sink = await openSink(to);
	const dlq: Sink = await openSink(dlqUri);
	const transactor = exactlyOnce
		? (await import("../../src/stream/connectors/kafka.ts")).kafkaTransactor(
				source,
				to,
				dlqUri,
				`tx-${label}`,
			)
		: undefined;
	const logs: string[] = [];
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "bc",
		source,
		sink,
		dlq,
		transactor,
		waitMs: 200,
		log: (_level, msg) => logs.push(msg),
	});
	const running = p.run();
	const out = new Collector(
		to,
		`check-${label}`,
		(m) => headerText(m.headers, "x-request-id") ?? "",
	);
	const dead = new Collector(
		dlqUri,
		`check-dlq-${label}`,
		(m) => headerText(m.headers, "x-request-id") ?? "",
	);
	try {
		await out.until(() => out.byId.size >= 3, "3 results", 120_000);
		await dead.until(() => dead.byId.size >= 2, "2 dead letters", 120_000);
		const deadline = Date.now() + 60_000;
		while (p.stats.acked < inputs.length && Date.now() < deadline)
			await new Promise((r) => setTimeout(r, 50));
	} finally {
		p.stop();
		await running;
		await Promise.all([out.close(), dead.close()]);
		await Promise.all([source.close(), sink.close(), dlq.close()]);
		await transactor?.close();
	}
	return { stats: p.stats, out, dead, inputs, logs, to, dlqUri, label };
}

function check(r: Awaited<ReturnType<typeof run>>): void {
	const { stats, out, dead, inputs } = r;
	assert.deepEqual([...out.byId.keys()].sort(), ["m0", "m2", "m4"]);
	assert.deepEqual([...dead.byId.keys()].sort(), ["m1", "m3"]);
	assert.equal(stats.produced, 3);
	assert.equal(stats.dead, 2);
	assert.equal(stats.acked, 5);
	// Refused for its size, not a broker error retried over and over.
	assert.equal(stats.retries, 0);
	for (const id of ["m1", "m3"]) {
		const d = (dead.byId.get(id) as InMessage[])[0] as InMessage;
		// The dead letter is the input itself, with the reason in Connect's headers.
		assert.equal(d.value?.toString(), inputs[Number(id.slice(1))]);
		assert.equal(
			headerText(d.headers, CONNECT_HEADERS.exceptionClass),
			"MLSHIP_PAYLOAD_TOO_LARGE",
		);
		const why = headerText(d.headers, CONNECT_HEADERS.exceptionMessage) ?? "";
		assert.match(why, /result of about \d{5} bytes/);
		assert.match(why, new RegExp(`max\\.message\\.bytes ${LIMIT}`));
		assert.match(why, /big-out-/);
		const size = Number(/about (\d+) bytes/.exec(why)?.[1]);
		assert.ok(size > LIMIT, `${size} > ${LIMIT}`);
	}
}

it("at least once: results too large for the topic are dead-lettered and counted, the others produced", async () => {
	check(await run(false));
});

it("exactly once: the same, inside the transactions", async () => {
	check(await run(true));
});

it("replaying those dead letters into the topic that refused their results stops with the reason, nothing acked", async () => {
	const r = await run(false);
	check(r);
	// The 75 KB inputs themselves are larger than the 20,000-byte topic accepts.
	const replay = () =>
		replayDeadLetters({
			from: r.dlqUri,
			to: r.to,
			group: `replay-${r.label}`,
			idleMs: 500,
		});
	await assert.rejects(replay, (err: Error & { code?: string }) => {
		assert.equal(err.code, "MLSHIP_PAYLOAD_TOO_LARGE");
		assert.match(
			err.message,
			/cannot replay dead letter .*max\.message\.bytes 20000/,
		);
		return true;
	});
	// Not acked: a second replay meets the same dead letters again.
	await assert.rejects(replay, /cannot replay dead letter/);
});
