// Exact split tests on raw inputs: the set of input doubles a node sends left, found by searching the runtime's own
// arithmetic (float32/float16 rounding of the input, imputation, scaling) so SQL compares raw columns to constants.
//
// Why: the runtime compares fround(x) (FP32 inputs, XGBoost) or (x - offset) * scale (folded scalers) with the
// threshold. Databases lack float32 (SQLite, BigQuery) and would round differently if they did the arithmetic
// themselves. Every such transform is monotone, so "goes left" is an interval (a union of intervals for
// categories) of the raw double: its ends are found here by bisection over the ordered doubles.

/** Closed intervals of doubles, sorted and disjoint; [] is the empty set. */
export type Intervals = [number, number][];

export const MIN = -Number.MAX_VALUE;
export const MAX = Number.MAX_VALUE;
export const ALL: Intervals = [[MIN, MAX]];

const view = new DataView(new ArrayBuffer(8));
const SIGN = -0x8000000000000000n;

/** Orders doubles as integers: key(a) < key(b) ⇔ a < b (both zeros are 0). */
function key(x: number): bigint {
	view.setFloat64(0, x);
	const b = view.getBigInt64(0);
	return b < 0n ? -(b & 0x7fffffffffffffffn) : b;
}

function fromKey(k: bigint): number {
	view.setBigInt64(0, k < 0n ? SIGN | -k : k);
	return view.getFloat64(0);
}

/**
 * The doubles in [MIN, MAX] where `q` holds, for a `q` that is monotone (false then true, or true then false) on
 * them: one interval or none.
 */
export function monotone(q: (x: number) => boolean): Intervals {
	const a = q(MIN);
	const b = q(MAX);
	if (a === b) return a ? ALL : [];
	let lo = key(MIN);
	let hi = key(MAX);
	// Invariant: q(lo) === a, q(hi) === b.
	while (hi - lo > 1n) {
		const mid = (lo + hi) / 2n;
		if (q(fromKey(mid)) === a) lo = mid;
		else hi = mid;
	}
	return a ? [[MIN, fromKey(lo)]] : [[fromKey(hi), MAX]];
}

export function intersect(a: Intervals, b: Intervals): Intervals {
	const out: Intervals = [];
	for (const [l1, h1] of a)
		for (const [l2, h2] of b) {
			const l = Math.max(l1, l2);
			const h = Math.min(h1, h2);
			if (l <= h) out.push([l, h]);
		}
	return out.sort((x, y) => x[0] - y[0]);
}

/** Union of sorted interval lists, touching neighbours (no double between them) merged. */
export function union(parts: Intervals): Intervals {
	const s = [...parts].sort((x, y) => x[0] - y[0]);
	const out: Intervals = [];
	for (const [l, h] of s) {
		const last = out[out.length - 1];
		if (last && key(l) <= key(last[1]) + 1n) last[1] = Math.max(last[1], h);
		else out.push([l, h]);
	}
	return out;
}

/** The complement within [MIN, MAX]. */
export function complement(a: Intervals): Intervals {
	const out: Intervals = [];
	let from = key(MIN);
	for (const [l, h] of a) {
		if (key(l) > from) out.push([fromKey(from), fromKey(key(l) - 1n)]);
		from = key(h) + 1n;
	}
	if (from <= key(MAX)) out.push([fromKey(from), MAX]);
	return out;
}

/** The doubles x with lo ≤ g(x) ≤ hi-ish tests given as predicates on g(x), for a monotone g. */
export function where(
	g: (x: number) => number,
	...tests: ((v: number) => boolean)[]
): Intervals {
	let out = ALL;
	for (const t of tests)
		out = intersect(
			out,
			monotone((x) => t(g(x))),
		);
	return out;
}

/**
 * The doubles x whose trunc(g(x)) is one of `cats` (the runtime's categorical test), g monotone. Non-integer
 * categories never match and are dropped; consecutive ones form one run.
 */
export function inCategories(
	g: (x: number) => number,
	cats: readonly number[],
): Intervals {
	const ints = [...new Set(cats.filter((c) => Number.isInteger(c)))].sort(
		(a, b) => a - b,
	);
	const parts: Intervals = [];
	for (let i = 0; i < ints.length; ) {
		const a = ints[i] as number;
		let b = a;
		while (i + 1 < ints.length && ints[i + 1] === b + 1)
			b = ints[++i] as number;
		i++;
		// trunc(v) ∈ [a, b]: trunc rounds toward zero, so the ends are open or closed by sign.
		const low = a <= 0 ? (v: number) => v > a - 1 : (v: number) => v >= a;
		const high = b >= 0 ? (v: number) => v < b + 1 : (v: number) => v <= b;
		parts.push(...where(g, low, high));
	}
	return union(parts);
}
