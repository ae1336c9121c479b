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

/** mulberry32: a small seeded PRNG, uniform in [0, 1), so a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
