// Deterministic random sources for tests that inject one (jitter, sampling).
import assert from "node:assert/strict";
import { seededRandom } from "../../src/dataplane/kernel.ts";

/** A random source that returns the given values in turn, cycling. */
export function sequence(values: number[]): () => number {
	let i = 0;
	return () => {
		const v = values[i++ % values.length];
		assert.ok(v !== undefined);
		return v;
	};
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1), so a failing run can be replayed from its seed. */
export const prng = seededRandom;
