// Kafka interop byte for byte, checked by Kafka's own Java client: partition placement, binary keys/headers/payloads, dead letters, tombstones, event time.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { Admin } from "@platformatic/kafka";
import { runStream } from "../../src/stream/run.ts";
import type { PartitionerName } from "../../src/stream/types.ts";
import {
	type JavaRecord,
	javaConsume,
	javaProduce,
	startKafka,
} from "../harness/kafka.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";
import { startStream, stopStream } from "../helpers/stream-process.ts";

const kafka = await startKafka();
after(() => kafka.stop());
const MODEL = bundleDir("iris-logreg");
const records = golden("iris-logreg").records;
const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
const fromHex = (h: string | null) =>
	h === null ? null : Buffer.from(h, "hex").toString("utf8");
let n = 0;

async function createTopics(partitions: number, ...names: string[]) {
	const admin = new Admin({
		clientId: "interop-admin",
		bootstrapBrokers: [kafka.bootstrap],
	});
	try {
		await admin.createTopics({ topics: names, partitions, replicas: 1 });
	} finally {
		await admin.close();
	}
}

/** Runs mlship stream in-process from `input` to `output` until Java has read `count` results, then stops it. */
async function scoreAndRead(
	input: string,
	output: string,
	count: number,
	partitioner?: PartitionerName,
): Promise<JavaRecord[]> {
	const s = await runStream({
		model: MODEL,
		from: `${kafka.url}/${input}`,
		to: `${kafka.url}/${output}`,
		group: `interop-${++n}`,
		...(partitioner ? { partitioner } : {}),
	});
	try {
		const got = await javaConsume(kafka.bootstrap, [output], count);
		assert.equal(got.length, count, `${count} results in ${output}`);
		return got;
	} finally {
		s.stop();
		await s.done;
	}
}

/** Keyed iris requests `cust-000`…, produced by the Java client; returns each key's partition as Java placed it. */
async function javaRequests(
	topic: string,
	count: number,
	partitionOf?: (i: number) => number,
): Promise<Map<string, number>> {
	const keys = Array.from(
		{ length: count },
		(_, i) => `cust-${String(i).padStart(3, "0")}`,
	);
	const placed = await javaProduce(
		kafka.bootstrap,
		topic,
		keys.map((k, i) => ({
			...(partitionOf ? { partition: partitionOf(i) } : {}),
			key: hex(k),
			value: hex(JSON.stringify(records[i % records.length])),
		})),
	);
	return new Map(keys.map((k, i) => [k, placed[i]?.partition ?? -1]));
}

/** Keys whose result is in a different partition than Java put their request. */
function misplaced(inputs: Map<string, number>, out: JavaRecord[]): string[] {
	return out
		.filter((r) => inputs.get(fromHex(r.key) ?? "") !== r.partition)
		.map((r) => fromHex(r.key) ?? "null");
}

describe("Kafka partition placement, as Kafka's Java producer does it", () => {
	for (const partitions of [1, 2, 3, 5, 12])
		it(`${partitions} partition(s): every result is in the partition Java put its key's request in (default --partitioner java)`, async () => {
			const [input, output] = [
				`place-in-${partitions}`,
				`place-out-${partitions}`,
			];
			await createTopics(partitions, input, output);
			const inputs = await javaRequests(input, 60);
			const out = await scoreAndRead(input, output, 60);
			assert.deepEqual(misplaced(inputs, out), []);
			assert.equal(
				new Set(out.map((r) => fromHex(r.key))).size,
				60,
				"one result per key",
			);
		});

	it("murmur2-positive (mlship's old placement) disagrees with Java for 3 partitions: the check above can fail", async () => {
		const [input, output] = ["place-old-in", "place-old-out"];
		await createTopics(3, input, output);
		const inputs = await javaRequests(input, 60);
		const out = await scoreAndRead(input, output, 60, "murmur2-positive");
		assert.ok(
			misplaced(inputs, out).length > 10,
			`only ${misplaced(inputs, out).length} of 60 keys moved`,
		);
	});

	it("same-as-input writes each result to its input record's partition number, whatever its key hashes to", async () => {
		const [input, output] = ["same-in", "same-out"];
		await createTopics(3, input, output);
		const inputs = await javaRequests(input, 45, (i) => i % 3);
		const out = await scoreAndRead(input, output, 45, "same-as-input");
		assert.deepEqual(misplaced(inputs, out), []);
		// Java's partitioner would have put some of these keys elsewhere, so the test tells the two apart.
		const java = await scoreAndRead(input, "same-out-java", 45);
		assert.ok(misplaced(inputs, java).length > 5);
	});
});

describe("bytes stay bytes: binary keys, headers and payloads, dead letters, tombstones, event time (read by Java)", () => {
	it("results and dead letters keep every byte; repeated and null headers in order; a tombstone is forwarded; event time is carried", async () => {
		const [input, output, dlq] = ["bin-in", "bin-out", "bin-dlq"];
		await createTopics(3, input, output, dlq);
		const iris = hex(JSON.stringify(records[0]));
		const binHeaders: [string, string | null][] = [
			["bin", "00fffe80"],
			["hop", hex("a")],
			["hop", hex("b")],
			["nul", null],
			["empty", ""],
		];
		const placed = await javaProduce(kafka.bootstrap, input, [
			// A LongSerializer key with a byte that is not UTF-8, binary/repeated/null headers, an event time.
			{
				key: "long:255",
				value: iris,
				timestamp: 1_700_000_000_123,
				headers: binHeaders,
			},
			// An Avro-framed (Confluent wire format) key.
			{
				key: "00000000950206616263",
				value: iris,
				timestamp: 1_700_000_000_456,
			},
			// A payload that is not UTF-8 (nor JSON): a dead letter, byte for byte.
			{
				key: "long:-2",
				value: "0080ff78",
				timestamp: 1_600_000_000_000,
				headers: [
					["bin", "00fffe80"],
					["x-request-id", hex("poison")],
				],
			},
			// A tombstone.
			{
				key: "long:7",
				value: null,
				timestamp: 1_700_000_000_789,
				headers: [["hop", hex("t")]],
			},
		]);
		const p = await startStream([
			"-m",
			MODEL,
			"--from",
			`${kafka.url}/${input}`,
			"--to",
			`${kafka.url}/${output}`,
			"--dlq",
			`${kafka.url}/${dlq}`,
			"--json",
		]);
		let got: JavaRecord[];
		try {
			got = await javaConsume(kafka.bootstrap, [output, dlq], 4);
		} finally {
			assert.equal((await stopStream(p)).code, 0, p.stderr());
		}
		const results = got.filter((r) => r.topic === output);
		const dead = got.filter((r) => r.topic === dlq);
		assert.equal(results.length, 3, "two results and a tombstone");
		assert.equal(dead.length, 1);

		const long = results.find((r) => r.long === "255");
		assert.ok(long, "LongDeserializer reads the result's key as 255");
		assert.equal(long.key, "00000000000000ff");
		assert.equal(long.timestamp, 1_700_000_000_123, "the input's event time");
		assert.equal(
			long.partition,
			placed[0]?.partition,
			"Java's partition for the key",
		);
		assert.deepEqual(long.headers.slice(0, binHeaders.length), binHeaders);
		assert.deepEqual(
			long.headers.slice(binHeaders.length).map(([name]) => name),
			["x-request-id", "mlship-model-name", "mlship-model-version"],
		);
		const body = JSON.parse(fromHex(long.value) ?? "") as {
			predictions: { label: string }[];
		};
		assert.equal(body.predictions[0]?.label, "setosa");

		const avro = results.find((r) => r.key === "00000000950206616263");
		assert.ok(avro, "the Avro-framed key is unchanged");
		assert.equal(avro.timestamp, 1_700_000_000_456);
		assert.equal(avro.partition, placed[1]?.partition);

		const tomb = results.find((r) => r.long === "7");
		assert.ok(tomb, "the tombstone is forwarded for its key");
		assert.equal(tomb.value, null, "a null value, not an empty one");
		assert.equal(tomb.timestamp, 1_700_000_000_789);
		assert.equal(tomb.partition, placed[3]?.partition);
		assert.deepEqual(tomb.headers, [["hop", hex("t")]]);

		const d = dead[0] as JavaRecord;
		assert.equal(d.long, "-2");
		assert.equal(
			d.value,
			"0080ff78",
			"the dead letter's payload byte for byte",
		);
		assert.equal(d.timestamp, 1_600_000_000_000);
		assert.deepEqual(d.headers.slice(0, 2), [
			["bin", "00fffe80"],
			["x-request-id", hex("poison")],
		]);
		const h = new Map(d.headers.slice(2).map(([k, v]) => [k, fromHex(v)]));
		assert.equal(h.get("__connect.errors.topic"), input);
		assert.equal(
			h.get("__connect.errors.partition"),
			String(placed[2]?.partition),
		);
		assert.equal(h.get("__connect.errors.offset"), String(placed[2]?.offset));
		assert.equal(
			h.get("__connect.errors.exception.class.name"),
			"MLSHIP_INVALID_INPUT",
		);
		assert.match(h.get("__connect.errors.exception.message") ?? "", /not JSON/);
		assert.match(h.get("__connect.errors.timestamp") ?? "", /^\d{13}$/);

		// mlship stream replay puts the original record back, byte for byte, without the error headers.
		const replayed = "bin-replayed";
		await createTopics(3, replayed);
		const r = spawnSync(
			process.execPath,
			[
				CLI,
				"stream",
				"replay",
				"--from",
				`${kafka.url}/${dlq}`,
				"--to",
				`${kafka.url}/${replayed}`,
				"--json",
			],
			{ encoding: "utf8" },
		);
		assert.equal(r.status, 0, r.stderr);
		assert.deepEqual(JSON.parse(r.stdout), { replayed: 1 });
		const [again] = await javaConsume(kafka.bootstrap, [replayed], 1);
		assert.ok(again);
		assert.deepEqual(
			{ ...again, topic: input, offset: placed[2]?.offset },
			{
				topic: input,
				partition: placed[2]?.partition,
				offset: placed[2]?.offset,
				timestamp: 1_600_000_000_000,
				key: "fffffffffffffffe",
				value: "0080ff78",
				long: "-2",
				headers: [
					["bin", "00fffe80"],
					["x-request-id", hex("poison")],
				],
			},
			"the record Java produced, in the partition Java chose",
		);
	});
});
