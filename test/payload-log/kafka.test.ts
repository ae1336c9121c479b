// On a real Kafka broker: the payload log read by Kafka's own Java consumer (`runStream` with `payloadLog` produces one
// JSON record per scored message, inputs and outputs nested; the topic is created when missing), and a stream's
// traces continuing the `traceparent` header of a message produced by Kafka's Java producer.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { runStream } from "../../src/stream/run.ts";
import {
	createSmallTopic,
	javaConsume,
	javaProduce,
	startKafka,
} from "../harness/kafka.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { childrenOf, spanAttr, startOtlpReceiver } from "../helpers/otlp.ts";
import { asFloat32 } from "./helpers.ts";

const kafka = await startKafka();
const dir = await mkdtemp(join(tmpdir(), "mlship-kafka-log-"));
after(async () => {
	await kafka.stop();
	await rm(dir, { recursive: true, force: true });
});
const fromHex = (h: string | null) =>
	h === null ? null : Buffer.from(h, "hex").toString("utf8");

it("stream --log-payloads kafka://…/topic: one JSON record per scored message, read by the Java consumer", async () => {
	const g = golden("iris-logreg");
	const rows = g.records.slice(0, 4);
	const input = join(dir, "in.jsonl");
	await writeFile(input, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
	const s = await runStream({
		model: bundleDir("iris-logreg"),
		from: input,
		to: join(dir, "out.jsonl"),
		payloadLog: { destination: `${kafka.url}/mlship.payloads` },
	});
	assert.deepEqual(s.details(), {
		payload_log: {
			destination: `kafka:${kafka.bootstrap}/mlship.payloads`,
			available: true,
			queued: 0,
			queued_bytes: 0,
			written: 0,
			dropped: 0,
		},
	});
	const stats = await s.done;
	assert.equal(stats.produced, rows.length);
	const got = await javaConsume(
		kafka.bootstrap,
		["mlship.payloads"],
		rows.length,
	);
	assert.equal(got.length, rows.length);
	const records = got.map(
		(m) =>
			JSON.parse(fromHex(m.value) as string) as {
				id: string;
				time: string;
				model: string;
				version: number | null;
				rows: number;
				inputs: Record<string, unknown>[];
				outputs: { label: string }[];
				latency_ms: number;
			},
	);
	const labels = ["setosa", "versicolor", "virginica"];
	const byInput = new Map(records.map((r) => [JSON.stringify(r.inputs[0]), r]));
	rows.forEach((row, i) => {
		const r = byInput.get(JSON.stringify(asFloat32([row])[0]));
		assert.ok(r, `no record of row ${i}`);
		assert.equal(r.model, "iris-logreg");
		assert.equal(r.rows, 1);
		assert.equal(r.outputs[0]?.label, labels[g.expected.label?.[i] as number]);
		assert.ok(r.latency_ms > 0);
		assert.ok(Math.abs(Date.now() - Date.parse(r.time)) < 3_600_000);
	});
});

it("stream --log-payloads kafka://…: a record larger than the topic accepts is dropped and counted (too_large), the others are written", async () => {
	const topic = "small.payloads";
	// A one-row record is ~300 bytes of JSON; one of 100 rows is ~20 KB.
	await createSmallTopic(kafka.bootstrap, topic, 4000);
	const g = golden("iris-logreg");
	const one = g.records.slice(0, 3);
	const big = Array.from(
		{ length: 100 },
		(_, i) => g.records[i % g.records.length],
	);
	const input = join(dir, "in-big.jsonl");
	await writeFile(
		input,
		`${[one[0], big, one[1], one[2]].map((r) => JSON.stringify(r)).join("\n")}\n`,
	);
	const s = await runStream({
		model: bundleDir("iris-logreg"),
		from: input,
		to: join(dir, "out-big.jsonl"),
		payloadLog: { destination: `${kafka.url}/${topic}` },
	});
	const stats = await s.done;
	assert.equal(
		stats.produced,
		4,
		"every message scored: the log never fails a prediction",
	);
	const log = s.details().payload_log as
		| { dropped: number; written: number }
		| undefined;
	assert.equal(log?.dropped, 1, JSON.stringify(log));
	assert.equal(log?.written, 3, JSON.stringify(log));
	const got = await javaConsume(kafka.bootstrap, [topic], 3);
	assert.deepEqual(
		got.map(
			(m) => (JSON.parse(fromHex(m.value) as string) as { rows: number }).rows,
		),
		[1, 1, 1],
	);
});

it("stream --otlp-endpoint: a consumer span per message continues the message's traceparent header", async () => {
	const receiver = await startOtlpReceiver();
	try {
		const traceId = "5bf92f3577b34da6a3ce929d0e0e4736";
		const parent = "10f067aa0ba902b7";
		const row = golden("iris-logreg").records[0];
		await javaProduce(kafka.bootstrap, "traced.in", [
			{
				key: null,
				value: Buffer.from(JSON.stringify(row)).toString("hex"),
				headers: [
					[
						"traceparent",
						Buffer.from(`00-${traceId}-${parent}-01`).toString("hex"),
					],
				],
			},
		]);
		const s = await runStream({
			model: bundleDir("iris-logreg"),
			from: `${kafka.url}/traced.in`,
			to: `${kafka.url}/traced.out`,
			group: "traced",
			otlpEndpoint: receiver.endpoint,
		});
		try {
			assert.equal(
				(await javaConsume(kafka.bootstrap, ["traced.out"], 1)).length,
				1,
			);
		} finally {
			s.stop();
			await s.done;
		}
		const span = receiver.spans.find(
			(x) => x.traceId === traceId && x.parentSpanId === parent,
		);
		assert.ok(span, `spans: ${receiver.spans.map((x) => x.name)}`);
		assert.equal(span.name, "stream score");
		assert.equal(span.kind, 5, "CONSUMER");
		assert.equal(spanAttr(span, "mlship.model"), "iris-logreg");
		assert.deepEqual([...childrenOf(receiver.spans, span).keys()].sort(), [
			"compute",
			"decode",
			"encode",
			"queue",
		]);
		assert.ok(receiver.spans.some((x) => x.name === "model load"));
	} finally {
		await receiver.close();
	}
});
