// The Kafka harness's cluster ids: one starting with "-" is read by kafka-storage as an option and the broker never
// starts (1 start in 64 failed that way, in tests that had nothing to do with it).
import assert from "node:assert/strict";
import { it } from "node:test";
import { kafkaClusterId } from "./kafka.ts";

it("a KRaft cluster id never starts with '-': one that would is drawn again", () => {
	// 0xF8 makes the first base64url character '-' (index 62).
	const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x41)];
	assert.ok(Buffer.alloc(16, 0xf8).toString("base64url").startsWith("-"));
	const id = kafkaClusterId(() => draws.shift() as Buffer);
	assert.equal(id, Buffer.alloc(16, 0x41).toString("base64url"));
	assert.equal(draws.length, 0, "the '-' id was drawn and refused");
	for (let i = 0; i < 2000; i++) assert.ok(!kafkaClusterId().startsWith("-"));
});
