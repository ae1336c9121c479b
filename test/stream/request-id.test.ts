// Stream request ids: header x-request-id, else the OIP body id, else <topic>/<partition>/<offset>; hooks and results carry it.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { PredictCall } from "../../src/dataplane/instance.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { headerText } from "../../src/stream/headers.ts";
import { StreamProcessor } from "../../src/stream/processor.ts";
import type {
	Header,
	InMessage,
	OutMessage,
	Sink,
	Source,
} from "../../src/stream/types.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const seen: PredictCall[] = [];
let dp: DataPlane;
before(async () => {
	dp = await createDataPlane({
		models: [{ name: "iris", source: bundleDir("iris-logreg") }],
		processMetrics: false,
		hooks: [(c) => seen.push(c)],
	});
});
after(() => dp.close());

const row = golden("iris-logreg").records[0];

function msg(
	offset: number,
	value: unknown,
	headers: Header[] = [],
): InMessage {
	return {
		id: `3:${offset}`,
		key: null,
		value: Buffer.from(JSON.stringify(value)),
		headers,
		origin: { topic: "scores-in", partition: 3, offset: String(offset) },
	};
}

/** Hands out its messages once, then nothing; records what is written. */
async function run(messages: InMessage[]): Promise<OutMessage[]> {
	const written: OutMessage[] = [];
	let acked = 0;
	let given = false;
	const source: Source = {
		async read(_max, waitMs) {
			if (given) {
				await new Promise((r) => setTimeout(r, waitMs));
				return [];
			}
			given = true;
			return messages;
		},
		async ack(ms) {
			acked += ms.length;
		},
		async close() {},
	};
	const sink: Sink = {
		async write(ms) {
			written.push(...ms);
		},
		async close() {},
	};
	const dead: OutMessage[] = [];
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source,
		sink,
		dlq: {
			async write(ms) {
				dead.push(...ms);
			},
			async close() {},
		},
		waitMs: 5,
	});
	const done = p.run();
	for (let i = 0; i < 2000 && acked < messages.length; i++)
		await new Promise((r) => setTimeout(r, 5));
	p.stop();
	await done;
	return [...written, ...dead];
}

const idOf = (m: OutMessage) => headerText(m.headers, "x-request-id");

it("the request id is the x-request-id header, else the OIP body id, else the message's topic/partition/offset; hooks see it and results carry it", async () => {
	seen.length = 0;
	const oip = {
		id: "body-7",
		inputs: [
			{
				name: "float_input",
				datatype: "FP32",
				shape: [1, 4],
				data: Object.values(row as object),
			},
		],
	};
	const out = await run([
		msg(10, row, [["x-request-id", Buffer.from("hdr-1")]]),
		msg(11, oip),
		msg(12, row),
		msg(13, oip, [["x-request-id", Buffer.from("hdr-beats-body")]]),
	]);
	assert.deepEqual(out.map(idOf), [
		"hdr-1",
		"body-7",
		"scores-in/3/12",
		"hdr-beats-body",
	]);
	assert.deepEqual(
		seen.map((c) => c.requestId).sort(),
		["body-7", "hdr-1", "hdr-beats-body", "scores-in/3/12"],
		"every prediction hook got the message's id",
	);
	const oipBody = JSON.parse(out[1]?.value?.toString() ?? "{}") as {
		id: string;
	};
	assert.equal(oipBody.id, "body-7");
});

it("a redelivered message without an id gets the same id again (its position), so feedback can still refer to it", async () => {
	seen.length = 0;
	const first = await run([msg(42, row)]);
	const again = await run([msg(42, row)]);
	assert.equal(idOf(first[0] as OutMessage), "scores-in/3/42");
	assert.equal(idOf(again[0] as OutMessage), idOf(first[0] as OutMessage));
	assert.deepEqual(
		seen.map((c) => c.requestId),
		["scores-in/3/42", "scores-in/3/42"],
	);
});

it("a client id that is not 1–256 printable ASCII characters is a dead letter naming the id rule, and is not scored", async () => {
	seen.length = 0;
	const out = await run([
		msg(50, row, [["x-request-id", Buffer.from("x".repeat(257))]]),
		msg(51, row, [["x-request-id", Buffer.from("tab\there")]]),
	]);
	assert.equal(out.length, 2);
	for (const d of out)
		assert.match(
			headerText(d.headers, "__connect.errors.exception.message") ?? "",
			/request id .* printable ASCII/,
		);
	assert.equal(seen.length, 0);
});
