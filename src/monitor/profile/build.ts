// Building and merging profiles: a reference profile from whole columns, live profiles on the reference's bin edges.
import { DDSketch } from "@datadog/sketches-js";
import { MlshipError } from "../../protocol/errors.ts";
import {
	type CategoricalProfile,
	type ColumnProfile,
	type NumericProfile,
	PROFILE_FORMAT,
	PROFILE_VERSION,
	type Profile,
} from "./format.ts";

/** Most histogram bins of a numeric reference column (quantile edges; fewer when it has fewer distinct values). */
export const MAX_BINS = 100;
/** Distinct values (with counts) kept for a numeric column while it has at most this many. */
export const MAX_DISTINCT = 32;
/** Categories kept with their counts; the rest are counted in `other`. */
export const MAX_TOP = 100;
/** Relative accuracy of the quantile sketch. */
export const SKETCH_ACCURACY = 0.01;

export type ColumnKind = "numeric" | "categorical";

/** One column to profile: its name, kind and (numeric) the bin edges its histogram uses. */
export interface ColumnLayout {
	name: string;
	kind: ColumnKind;
	/** Histogram edges of a numeric column (from the reference). */
	edges?: readonly number[];
}

/** A value as a number for a numeric column: null for missing (null, undefined, NaN, ±Infinity, unparsable). */
export function numericValue(v: unknown): number | null {
	let x: number;
	if (typeof v === "number") x = v;
	else if (typeof v === "bigint") x = Number(v);
	else if (typeof v === "boolean") x = v ? 1 : 0;
	else if (typeof v === "string" && v.trim() !== "") x = Number(v);
	else return null;
	return Number.isFinite(x) ? x : null;
}

/** A value as a category: null for missing; numbers and bigints by their decimal text (3n and 3 are both "3"). */
export function categoryValue(v: unknown): string | null {
	if (v === null || v === undefined) return null;
	if (typeof v === "number" && Number.isNaN(v)) return null;
	if (typeof v === "string" || typeof v === "number" || typeof v === "bigint")
		return String(v);
	if (typeof v === "boolean") return v ? "true" : "false";
	if (v instanceof Uint8Array) return new TextDecoder().decode(v);
	return JSON.stringify(v);
}

/** First index i with edges[i] > x (so x falls in counts[i]); binary search. */
export function binOf(edges: readonly number[], x: number): number {
	let lo = 0;
	let hi = edges.length;
	while (lo < hi) {
		const mid = (lo + hi) >> 1;
		if ((edges[mid] as number) <= x) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}

/**
 * Histogram edges for a reference column (finite values): its distinct values when there are at most MAX_BINS,
 * else the distinct values among its quantiles at 0, 1/MAX_BINS, …, 1 (so each bin holds about 1% of the rows).
 */
export function referenceEdges(values: ArrayLike<number>): number[] {
	const sorted = Float64Array.from(values).sort();
	const distinct: number[] = [];
	for (let i = 0; i < sorted.length; i++) {
		const x = sorted[i] as number;
		if (distinct.length === 0 || distinct[distinct.length - 1] !== x) {
			distinct.push(x);
			if (distinct.length > MAX_BINS) break;
		}
	}
	if (distinct.length <= MAX_BINS) return distinct.length > 0 ? distinct : [0];
	const edges: number[] = [];
	for (let b = 0; b <= MAX_BINS; b++) {
		const x = sorted[
			Math.floor((b / MAX_BINS) * (sorted.length - 1))
		] as number;
		if (edges.length === 0 || (edges[edges.length - 1] as number) < x)
			edges.push(x);
	}
	return edges;
}

/** Accumulates a numeric column on fixed edges. */
export class NumericAccumulator {
	readonly edges: readonly number[];
	readonly counts: number[];
	count = 0;
	nulls = 0;
	min = Number.POSITIVE_INFINITY;
	max = Number.NEGATIVE_INFINITY;
	sum = 0;
	sumSquares = 0;
	#distinct: Map<number, number> | undefined = new Map();
	readonly #sketch = new DDSketch({ relativeAccuracy: SKETCH_ACCURACY });

	constructor(edges: readonly number[]) {
		this.edges = edges;
		this.counts = new Array(edges.length + 1).fill(0);
	}

	add(x: number | null): void {
		if (x === null) {
			this.nulls++;
			return;
		}
		this.count++;
		if (x < this.min) this.min = x;
		if (x > this.max) this.max = x;
		this.sum += x;
		this.sumSquares += x * x;
		(this.counts[binOf(this.edges, x)] as number)++;
		this.#sketch.accept(x);
		const d = this.#distinct;
		if (d !== undefined) {
			d.set(x, (d.get(x) ?? 0) + 1);
			if (d.size > MAX_DISTINCT) this.#distinct = undefined;
		}
	}

	profile(): NumericProfile {
		return {
			kind: "numeric",
			count: this.count,
			nulls: this.nulls,
			min: this.count > 0 ? this.min : null,
			max: this.count > 0 ? this.max : null,
			sum: this.sum,
			sum_squares: this.sumSquares,
			histogram: { edges: [...this.edges], counts: [...this.counts] },
			distinct: this.#distinct
				? [...this.#distinct].sort((a, b) => a[0] - b[0])
				: null,
			sketch: Buffer.from(this.#sketch.toProto()).toString("base64"),
		};
	}
}

/** Accumulates a categorical column: exact counts of up to 4×MAX_TOP values, the rest counted as `other`. */
export class CategoricalAccumulator {
	count = 0;
	nulls = 0;
	other = 0;
	readonly #counts = new Map<string, number>();

	add(v: string | null): void {
		if (v === null) {
			this.nulls++;
			return;
		}
		this.count++;
		const n = this.#counts.get(v);
		if (n !== undefined) this.#counts.set(v, n + 1);
		else if (this.#counts.size < 4 * MAX_TOP) this.#counts.set(v, 1);
		else this.other++;
	}

	profile(): CategoricalProfile {
		return topOf(this.count, this.nulls, this.#counts, this.other);
	}
}

function topOf(
	count: number,
	nulls: number,
	counts: Map<string, number>,
	other: number,
): CategoricalProfile {
	const all = [...counts].sort(
		(a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
	);
	const top = all.slice(0, MAX_TOP);
	const rest = all.slice(MAX_TOP).reduce((a, [, n]) => a + n, 0);
	return { kind: "categorical", count, nulls, top, other: other + rest };
}

export type Accumulator = NumericAccumulator | CategoricalAccumulator;

/** An accumulator for a column; a numeric column needs edges. */
export function accumulator(layout: ColumnLayout): Accumulator {
	if (layout.kind === "categorical") return new CategoricalAccumulator();
	if (!layout.edges || layout.edges.length === 0)
		throw new MlshipError(
			"MLSHIP_INTERNAL",
			`numeric column '${layout.name}' has no histogram edges`,
		);
	return new NumericAccumulator(layout.edges);
}

/** Adds one raw value to an accumulator, as its kind reads it. */
export function addValue(acc: Accumulator, v: unknown): void {
	if (acc instanceof NumericAccumulator) acc.add(numericValue(v));
	else acc.add(categoryValue(v));
}

/** One column of a table to profile as reference: name, kind and all its values. */
export interface ReferenceColumn {
	name: string;
	kind: ColumnKind;
	values: ArrayLike<unknown>;
}

/** Profiles a whole column as reference: numeric edges come from its own values. */
export function profileColumn(c: ReferenceColumn): ColumnProfile {
	if (c.kind === "categorical") {
		const acc = new CategoricalAccumulator();
		for (let i = 0; i < c.values.length; i++)
			acc.add(categoryValue(c.values[i]));
		return acc.profile();
	}
	const nums: (number | null)[] = new Array(c.values.length);
	const finite: number[] = [];
	for (let i = 0; i < c.values.length; i++) {
		const x = numericValue(c.values[i]);
		nums[i] = x;
		if (x !== null) finite.push(x);
	}
	const acc = new NumericAccumulator(referenceEdges(finite));
	for (const x of nums) acc.add(x);
	return acc.profile();
}

/** A reference profile of a table's feature and output columns. */
export function referenceProfile(
	rows: number,
	features: readonly ReferenceColumn[],
	outputs: readonly ReferenceColumn[],
): Profile {
	return {
		format: PROFILE_FORMAT,
		version: PROFILE_VERSION,
		rows,
		features: Object.fromEntries(
			features.map((c) => [c.name, profileColumn(c)]),
		),
		outputs: Object.fromEntries(outputs.map((c) => [c.name, profileColumn(c)])),
	};
}

/** The layout of every column of a profile (live profiles are built on the reference's layout). */
export function layoutOf(p: Profile): {
	features: ColumnLayout[];
	outputs: ColumnLayout[];
} {
	const of = (cols: Profile["features"]): ColumnLayout[] =>
		Object.entries(cols).map(([name, c]) =>
			c.kind === "numeric"
				? { name, kind: "numeric", edges: c.histogram.edges }
				: { name, kind: "categorical" },
		);
	return { features: of(p.features), outputs: of(p.outputs) };
}

function sameEdges(a: readonly number[], b: readonly number[]): boolean {
	return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Merges two profiles of one column: counts and histograms add (exactly: merge(a, b) = profile(a ∪ b)); the
 * sketch merges within its error bound; `distinct` and `top` are exact while the union stays within their caps.
 */
export function mergeColumns(
	a: ColumnProfile,
	b: ColumnProfile,
	where: string,
): ColumnProfile {
	if (a.kind === "categorical" && b.kind === "categorical") {
		const counts = new Map<string, number>(a.top);
		for (const [v, n] of b.top) counts.set(v, (counts.get(v) ?? 0) + n);
		return topOf(
			a.count + b.count,
			a.nulls + b.nulls,
			counts,
			a.other + b.other,
		);
	}
	if (a.kind !== "numeric" || b.kind !== "numeric")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`cannot merge profiles of '${where}': one is numeric, the other categorical`,
		);
	if (!sameEdges(a.histogram.edges, b.histogram.edges))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`cannot merge profiles of '${where}': their histograms have different bin edges (profiles of different reference versions?)`,
		);
	let distinct: [number, number][] | null = null;
	if (a.distinct && b.distinct) {
		const m = new Map<number, number>(a.distinct);
		for (const [v, n] of b.distinct) m.set(v, (m.get(v) ?? 0) + n);
		distinct =
			m.size <= MAX_DISTINCT ? [...m].sort((x, y) => x[0] - y[0]) : null;
	}
	const sa = DDSketch.fromProto(Buffer.from(a.sketch, "base64"));
	sa.merge(DDSketch.fromProto(Buffer.from(b.sketch, "base64")));
	const mins = [a.min, b.min].filter((x): x is number => x !== null);
	const maxs = [a.max, b.max].filter((x): x is number => x !== null);
	return {
		kind: "numeric",
		count: a.count + b.count,
		nulls: a.nulls + b.nulls,
		min: mins.length > 0 ? Math.min(...mins) : null,
		max: maxs.length > 0 ? Math.max(...maxs) : null,
		sum: a.sum + b.sum,
		sum_squares: a.sum_squares + b.sum_squares,
		histogram: {
			edges: [...a.histogram.edges],
			counts: a.histogram.counts.map(
				(n, i) => n + (b.histogram.counts[i] ?? 0),
			),
		},
		distinct,
		sketch: Buffer.from(sa.toProto()).toString("base64"),
	};
}

function mergeGroup(
	a: Profile["features"],
	b: Profile["features"],
	group: string,
): Profile["features"] {
	const out: Profile["features"] = { ...a };
	for (const [name, c] of Object.entries(b)) {
		const mine = out[name];
		out[name] = mine ? mergeColumns(mine, c, `${group}.${name}`) : c;
	}
	return out;
}

/** Merges two profiles (e.g. one window from several replicas, or several windows). */
export function mergeProfiles(a: Profile, b: Profile): Profile {
	return {
		format: PROFILE_FORMAT,
		version: PROFILE_VERSION,
		rows: a.rows + b.rows,
		features: mergeGroup(a.features, b.features, "features"),
		outputs: mergeGroup(a.outputs, b.outputs, "outputs"),
	};
}

/** The value at quantile q (0…1) of a numeric profile's sketch, or null when it has no values. */
export function quantileOf(c: NumericProfile, q: number): number | null {
	if (c.count === 0) return null;
	return DDSketch.fromProto(Buffer.from(c.sketch, "base64")).getValueAtQuantile(
		q,
	);
}

/** Mean and population standard deviation of a numeric profile (as numpy's std, ddof = 0). */
export function meanStd(c: NumericProfile): { mean: number; std: number } {
	if (c.count === 0) return { mean: Number.NaN, std: Number.NaN };
	const mean = c.sum / c.count;
	const v = Math.max(0, c.sum_squares / c.count - mean * mean);
	return { mean, std: Math.sqrt(v) };
}

/** Accumulates a live profile on a reference's layout: call add() per batch of columns, profile() when due. */
export class ProfileAccumulator {
	rows = 0;
	readonly features: Map<string, Accumulator>;
	readonly outputs: Map<string, Accumulator>;

	constructor(layout: { features: ColumnLayout[]; outputs: ColumnLayout[] }) {
		this.features = new Map(
			layout.features.map((l) => [l.name, accumulator(l)]),
		);
		this.outputs = new Map(layout.outputs.map((l) => [l.name, accumulator(l)]));
	}

	profile(): Profile {
		const of = (m: Map<string, Accumulator>) =>
			Object.fromEntries([...m].map(([k, a]) => [k, a.profile()]));
		return {
			format: PROFILE_FORMAT,
			version: PROFILE_VERSION,
			rows: this.rows,
			features: of(this.features),
			outputs: of(this.outputs),
		};
	}
}
