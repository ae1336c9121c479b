// Deterministic random sources for tests that inject one (jitter, sampling).
import assert from "node:assert/strict";

/** A random source that returns the given values in turn, cycling. */
export function sequence(values: number[]): () => number {
	let i = 0;
	return () => {
		const v = values[i++ % values.length];
		assert.ok(v !== undefined);
		return v;
	};
}
