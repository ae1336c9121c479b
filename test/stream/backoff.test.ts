// The stream processor retries a failing broker with jittered delays (drawn from its random source), reset by a success.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { StreamProcessor } from "../../src/stream/processor.ts";
import type { InMessage, Source } from "../../src/stream/types.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { sequence } from "../helpers/random.ts";

let dp: DataPlane;
before(async () => {
	dp = await createDataPlane({
		models: [{ name: "iris", source: bundleDir("iris-logreg") }],
		processMetrics: false,
	});
});
after(() => dp.close());

/** Fails or answers reads by a script: "fail" throws, "empty" gives no messages, and the end of the script ends the stream. */
class ScriptedSource implements Source {
	readonly #script: ("fail" | "empty")[];
	constructor(script: ("fail" | "empty")[]) {
		this.#script = script;
	}
	async read(): Promise<InMessage[] | null> {
		const step = this.#script.shift();
		if (step === undefined) return null;
		if (step === "fail") throw new Error("broker unavailable");
		return [];
	}
	async ack(): Promise<void> {}
	async close(): Promise<void> {}
}

it("read failures wait jittered delays from the random source, and a good read starts them over", async (t) => {
	const delays: number[] = [];
	const realSetTimeout = globalThis.setTimeout;
	t.mock.method(globalThis, "setTimeout", ((fn: () => void, ms?: number) => {
		delays.push(ms ?? 0);
		return realSetTimeout(fn, 0);
	}) as typeof setTimeout);
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "iris",
		source: new ScriptedSource(["fail", "fail", "fail", "empty", "fail"]),
		sink: { write: async () => {}, close: async () => {} },
		random: sequence([0.5, 0.9, 0.1, 0.5]),
	});
	const stats = await p.run();
	t.mock.restoreAll();
	assert.equal(stats.retries, 4);
	// 50 → 100, 275, 128 (see test/protocol/backoff.test.ts), then reset by the good read: 100 again
	assert.deepEqual(delays, [100, 275, 128, 100]);
});
