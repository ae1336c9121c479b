// Stream message decoding: records or an OIP request, one JSON parse, ids from header, body or broker.
import assert from "node:assert/strict";
import { it } from "node:test";
import { decodeRequest } from "../../src/stream/message.ts";
import type { InMessage } from "../../src/stream/types.ts";

const msg = (value: unknown): InMessage => ({
	id: "broker-7",
	key: null,
	value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
	headers: [],
});

it("an OIP request with a numeric body id is accepted, like a record message; the id becomes a string", () => {
	const r = decodeRequest(
		msg({
			id: 42,
			inputs: [{ name: "x", datatype: "FP32", shape: [1, 2], data: [1, 2] }],
		}),
	);
	assert.equal(r.kind, "oip");
	assert.equal(r.id, "42");
	if (r.kind !== "oip") return;
	assert.equal(r.request.id, "42");
	assert.deepEqual(
		Array.from(r.request.inputs[0]?.data as Float32Array),
		[1, 2],
	);
	const rec = decodeRequest(msg({ id: 43, a: 1 }));
	assert.equal(rec.id, "43");
});

it("a bad OIP request is an error naming the field (a dead letter), not a crash", () => {
	assert.throws(
		() =>
			decodeRequest(
				msg({
					inputs: [{ name: "x", datatype: "FP99", shape: [1], data: [1] }],
				}),
			),
		/datatype/,
	);
	assert.throws(() => decodeRequest(msg("not json")), /not JSON/);
});
