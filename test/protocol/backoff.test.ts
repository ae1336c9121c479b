// Retry delays: decorrelated jitter, checked with an injected random source.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff } from "../../src/protocol/backoff.ts";
import { prng, sequence } from "../helpers/random.ts";

describe("Backoff", () => {
	it("draws each delay between the minimum and 3x the previous one, capped", () => {
		const b = new Backoff({
			minMs: 50,
			maxMs: 2000,
			random: sequence([0.5, 0.9, 0.1, 0.99, 0, 0.7]),
		});
		// 50+.5*(150-50)=100, 50+.9*(300-50)=275, 50+.1*(825-50)=127.5→128, 50+.99*(384-50)=380.66→381, 50, 50+.7*100
		assert.deepEqual(
			Array.from({ length: 6 }, () => b.next()),
			[100, 275, 128, 381, 50, 120],
		);
	});

	it("grows to the cap and stays there when the draws are high; reset starts over", () => {
		const b = new Backoff({ minMs: 100, maxMs: 2000, random: () => 0.999999 });
		assert.deepEqual(
			Array.from({ length: 6 }, () => b.next()),
			[300, 900, 2000, 2000, 2000, 2000],
		);
		b.reset();
		assert.equal(b.next(), 300);
	});

	it("two clients failing together spread apart (no lockstep)", () => {
		const lcg = prng(7);
		const a = new Backoff({ minMs: 100, maxMs: 2000, random: lcg });
		const b = new Backoff({ minMs: 100, maxMs: 2000, random: lcg });
		const da = Array.from({ length: 20 }, () => a.next());
		const db = Array.from({ length: 20 }, () => b.next());
		assert.notDeepEqual(da, db);
		for (const d of [...da, ...db]) assert.ok(d >= 100 && d <= 2000, `${d}`);
	});

	it("defaults to Math.random", (t) => {
		t.mock.method(Math, "random", () => 0.5);
		const b = new Backoff({ minMs: 100, maxMs: 2000 });
		assert.deepEqual([b.next(), b.next()], [200, 350]);
	});

	it("refuses bounds that make no sense", () => {
		assert.throws(
			() => new Backoff({ minMs: 0, maxMs: 10 }),
			/need 0 < minMs <= maxMs, got 0 and 10/,
		);
		assert.throws(() => new Backoff({ minMs: 100, maxMs: 10 }), RangeError);
	});
});
