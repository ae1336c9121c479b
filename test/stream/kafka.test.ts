// Kafka against a real single-node Kafka (KRaft): the connector contract, then mlship stream end to end (one broker: start-up takes seconds).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { openSink } from "../../src/stream/connectors/index.ts";
import { textHeader } from "../../src/stream/headers.ts";
import { javaConsume, startKafka } from "../harness/kafka.ts";
import {
	Collector,
	produce,
	startStream,
	stopStream,
} from "../helpers/stream-process.ts";
import { runContract } from "./connector.contract.ts";
import {
	assertGolden,
	every,
	requests,
	resultId,
	runEndToEnd,
	streamArgs,
} from "./e2e.ts";

const kafka = await startKafka();
after(() => kafka.stop());
let n = 0;
runContract("kafka", {
	// One partition keeps the round-trip order total; session_timeout_ms=2000: a stopped member's partitions move on fast.
	fresh: async () =>
		`${kafka.url}/contract-${++n}?partitions=1&session_timeout_ms=2000`,
	metadata: true,
	groups: true,
	settle: (group, members) => kafka.waitForGroup(group, members),
});
runEndToEnd("kafka", {
	// Two partitions, so two processors of a group both get work; a killed member's partitions move after 3 s.
	fresh: async (label) =>
		`${kafka.url}/e2e-${label}-${++n}?partitions=2&session_timeout_ms=3000`,
	restart: () => kafka.restart({ downtimeMs: 500 }),
	settle: (group, members) => kafka.waitForGroup(group, members),
});

describe("Kafka sink: writes larger than the broker's message size", () => {
	it("splits a write of 40 records of 70 KB (2.8 MB, the broker takes 1 MB per batch) into requests it accepts, in order", async () => {
		const topic = `big-${++n}`;
		const sink = await openSink(`${kafka.url}/${topic}?partitions=1`);
		try {
			await sink.write(
				Array.from({ length: 40 }, (_, i) => ({
					key: Buffer.from(`k${i}`),
					value: Buffer.alloc(70_000, i),
					headers: [textHeader("i", String(i))],
				})),
			);
		} finally {
			await sink.close();
		}
		const got = await javaConsume(kafka.bootstrap, [topic], 40, 60_000);
		assert.deepEqual(
			got.map((r) => [r.offset, r.key, r.value?.length]),
			Array.from({ length: 40 }, (_, i) => [
				i,
				Buffer.from(`k${i}`).toString("hex"),
				140_000,
			]),
		);
	});
});

describe("mlship stream --exactly-once (Kafka to Kafka, transactions)", () => {
	it("a processor killed with SIGKILL mid-stream and restarted: every input has exactly one committed result", async (t) => {
		const input = `${kafka.url}/eos-in-${++n}?partitions=2&session_timeout_ms=3000`;
		const output = `${kafka.url}/eos-out-${++n}?partitions=2`;
		const out = new Collector(output, "eos-check", resultId);
		const args = streamArgs(
			input,
			output,
			"--exactly-once",
			"--consumer",
			"fixed",
			"--batch-size",
			"25",
			"--max-in-flight",
			"50",
		);
		await produce(input, requests(0, 600));
		const first = await startStream(args);
		await out.until(() => out.byId.size >= 100, "100 results before the kill");
		first.proc.kill("SIGKILL");
		await first.exit;
		const atKill = out.byId.size;
		await produce(input, requests(600, 300));
		const second = await startStream(args);
		try {
			await out.until(every(out, 0, 900), "a result for every input", 120_000);
			// Anything uncommitted at the kill is aborted: give a late duplicate the chance to show up.
			await produce(input, requests(900, 10));
			await out.until(every(out, 900, 10), "the last results");
		} finally {
			assert.equal((await stopStream(second)).code, 0);
			await out.close();
		}
		t.diagnostic(
			`kafka exactly-once: 910 inputs, ${atKill} results at SIGKILL, ${out.all.length} results read (read_committed)`,
		);
		assert.equal(out.byId.size, 910);
		assert.equal(out.all.length, 910, "no duplicates");
		for (const m of out.all) assertGolden(m);
	});
});
