// The Kafka payload log on a real broker, read by Kafka's own Java consumer: `runStream` with `payloadLog` produces
// one JSON record per scored message (inputs and outputs nested), and the topic is created when missing.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { runStream } from "../../src/stream/run.ts";
import { javaConsume, startKafka } from "../harness/kafka.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

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
		const r = byInput.get(JSON.stringify(row));
		assert.ok(r, `no record of row ${i}`);
		assert.equal(r.model, "iris-logreg");
		assert.equal(r.rows, 1);
		assert.equal(r.outputs[0]?.label, labels[g.expected.label?.[i] as number]);
		assert.ok(r.latency_ms > 0);
		assert.ok(Math.abs(Date.now() - Date.parse(r.time)) < 3_600_000);
	});
});
