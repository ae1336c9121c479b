// Dead-letter replay: a dead letter in either format gives back the original record.
import assert from "node:assert/strict";
import { it } from "node:test";
import { invalidInput } from "../../src/protocol/errors.ts";
import { encodeDeadLetter } from "../../src/stream/message.ts";
import { originalOf } from "../../src/stream/replay.ts";
import type { InMessage, OutMessage } from "../../src/stream/types.ts";

const original: InMessage = {
	id: "3:41",
	key: Buffer.from([0x00, 0xff]),
	value: Buffer.from([0x7b, 0x80, 0xff]),
	headers: [
		["hop", Buffer.from("a")],
		["nul", null],
		["hop", Buffer.from("b")],
	],
	timestamp: 1_700_000_000_000,
	origin: { topic: "requests", partition: 3, offset: "41" },
};
const asRead = (d: OutMessage, id = "dlq:1"): InMessage => ({ ...d, id });
const want: OutMessage = {
	key: original.key,
	value: original.value,
	headers: [...original.headers],
	timestamp: original.timestamp,
};

it("a Connect-style dead letter replays as the original record: error headers gone, everything else byte for byte", () => {
	const d = encodeDeadLetter(original, invalidInput("bad"), "connect");
	assert.ok(d.headers.length > original.headers.length);
	assert.deepEqual(originalOf(asRead(d)), want);
});

it("an envelope dead letter replays its payload (base64 when binary; null stays a tombstone)", () => {
	const d = encodeDeadLetter(original, invalidInput("bad"), "envelope");
	assert.deepEqual(originalOf(asRead(d)), want);
	const tomb = encodeDeadLetter(
		{ ...original, value: null },
		invalidInput("a tombstone"),
		"envelope",
	);
	assert.equal(originalOf(asRead(tomb)).value, null);
	assert.throws(
		() =>
			originalOf({
				...asRead(d),
				value: Buffer.from('{"error":"x"}'),
			}),
		/no payload/,
	);
});
