// Drift between a reference profile and a live window: the test chosen by type and size, with Evidently's defaults.
//
// Evidently runs its tests on raw values; mlship only keeps profiles, so every test here reads a profile:
// - KS: the statistic is the largest CDF difference at the reference's histogram edges (its ~100 quantiles, or every
//   distinct value when it has ≤ 100): a lower bound of the exact statistic, off by at most the mass of one bin;
//   the p-value is the asymptotic Kolmogorov distribution with Stephens' small-sample correction at the effective
//   n = n·m/(n+m) (scipy uses the exact distribution below 10,000 rows).
// - KS and Wasserstein are exact when both profiles list every distinct value (≤ 32: integer counts, codes).
// - Wasserstein: ∫|F_ref − F_cur| with each CDF linear inside its bins (values spread evenly within a bin), over the
//   edges plus both profiles' min and max; divided by the reference's population std (as Evidently, at least 0.001).
// - chi², Z-test and Jensen–Shannon on categories, or on the distinct values of a numeric column with ≤ 5 values:
//   exact, from counts (while a categorical column has ≤ 400 distinct values; the rest are pooled as `other`).
// - PSI (optional): on the reference's histogram bins pooled to ten (deciles of the reference), zeros filled with
//   0.0001, as is usual for PSI.
import jStat from "jstat";
import { meanStd } from "./profile/build.ts";
import type {
	CategoricalProfile,
	ColumnProfile,
	NumericProfile,
} from "./profile/format.ts";

/** The tests a column's drift is measured with. */
export type DriftMethod =
	| "ks"
	| "chisquare"
	| "z"
	| "wasserstein"
	| "jensenshannon"
	| "psi";

/** Choosing the test: Evidently's defaults unless set. */
export interface DriftOptions {
	/** Reference rows up to which p-value tests are used (default 1000, Evidently's). */
	smallReference?: number;
	/** Fewest live rows (non-null values) a column needs for a verdict (default 50); below: "not enough data". */
	minRows?: number;
	/** Use this method for every column instead of the default choice ("psi" is the usual override). */
	method?: DriftMethod;
	/** Threshold per method (defaults: p-value tests 0.05, distances 0.1, PSI 0.1). */
	thresholds?: Partial<Record<DriftMethod, number>>;
	/** Share of drifted columns at or above which the dataset has drifted (default 0.5). */
	driftShare?: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Record<DriftMethod, number>> = {
	ks: 0.05,
	chisquare: 0.05,
	z: 0.05,
	wasserstein: 0.1,
	jensenshannon: 0.1,
	psi: 0.1,
};

/** A p-value test drifts when its statistic (the p-value) is below the threshold; a distance when at or above. */
export function isPValueTest(m: DriftMethod): boolean {
	return m === "ks" || m === "chisquare" || m === "z";
}

/** One column's verdict. `drifted` is null with "not enough data" (fewer live rows than minRows). */
export interface ColumnDrift {
	method: DriftMethod;
	/** p-value for ks/chisquare/z, distance for the others; null without enough data. */
	statistic: number | null;
	threshold: number;
	drifted: boolean | null;
	/** Why there is no verdict, when there is none. */
	reason?: string;
	/** Live values (non-null) the verdict is on, and the reference's. */
	current_rows: number;
	reference_rows: number;
}

/** Counts per value of a categorical column, or of a numeric column that has few distinct values. */
function valueCounts(c: ColumnProfile): Map<string, number> | undefined {
	if (c.kind === "categorical") {
		const m = new Map<string, number>(c.top);
		if (c.other > 0) m.set("\u0000other", c.other);
		return m;
	}
	if (!c.distinct) return undefined;
	return new Map(c.distinct.map(([v, n]) => [String(v), n]));
}

/** Distinct values of ref ∪ cur; undefined when there are more than a numeric profile tracks (many). */
function unionValues(
	ref: ColumnProfile,
	cur: ColumnProfile,
): string[] | undefined {
	const a = valueCounts(ref);
	const b = valueCounts(cur);
	if (!a || !b) return undefined;
	const keys = new Set<string>();
	for (const [k, n] of a) if (n > 0) keys.add(k);
	for (const [k, n] of b) if (n > 0) keys.add(k);
	return [...keys].sort();
}

/** The default test for a column, as Evidently's `get_default_stattest`. */
export function defaultMethod(
	ref: ColumnProfile,
	cur: ColumnProfile,
	smallReference = 1000,
): DriftMethod {
	const values = unionValues(ref, cur);
	const n = values?.length ?? Number.POSITIVE_INFINITY;
	const small = ref.count <= smallReference;
	if (ref.kind === "categorical")
		return small ? (n > 2 ? "chisquare" : "z") : "jensenshannon";
	if (n <= 5) return small ? (n > 2 ? "chisquare" : "z") : "jensenshannon";
	return small ? "ks" : "wasserstein";
}

/** Kolmogorov's Q_KS(λ) = 2 Σ (−1)^(k−1) e^(−2k²λ²). */
function kolmogorovQ(lambda: number): number {
	if (lambda < 0.2) return 1;
	let sum = 0;
	let sign = 1;
	for (let k = 1; k <= 100; k++) {
		const term = sign * Math.exp(-2 * k * k * lambda * lambda);
		sum += term;
		if (Math.abs(term) < 1e-12) break;
		sign = -sign;
	}
	return Math.min(1, Math.max(0, 2 * sum));
}

/**
 * When both profiles know every distinct value (≤ 32 each): [x, F_ref(x), F_cur(x)] at each value of the union, with
 * F(x) = P(X ≤ x). KS and Wasserstein are then exact, as on raw values.
 */
function discreteCdfs(
	ref: NumericProfile,
	cur: NumericProfile,
): [number, number, number][] | undefined {
	if (!ref.distinct || !cur.distinct) return undefined;
	const xs = [
		...new Set([...ref.distinct, ...cur.distinct].map(([v]) => v)),
	].sort((a, b) => a - b);
	const r = new Map(ref.distinct);
	const c = new Map(cur.distinct);
	let fr = 0;
	let fc = 0;
	return xs.map((x) => {
		fr += (r.get(x) ?? 0) / ref.count;
		fc += (c.get(x) ?? 0) / cur.count;
		return [x, fr, fc];
	});
}

/** CDF P(X < e_i) at every histogram edge of a numeric profile (fractions of its count). */
function edgeCdf(c: NumericProfile): number[] {
	const out: number[] = [];
	let acc = 0;
	for (let i = 0; i < c.histogram.edges.length; i++) {
		acc += c.histogram.counts[i] as number;
		out.push(acc / c.count);
	}
	return out;
}

/** Two-sample KS from two profiles on the same edges: {statistic D, p-value}. */
export function ksTest(
	ref: NumericProfile,
	cur: NumericProfile,
): { d: number; p: number } {
	let d = 0;
	const exact = discreteCdfs(ref, cur);
	if (exact) for (const [, a, b] of exact) d = Math.max(d, Math.abs(a - b));
	else {
		const a = edgeCdf(ref);
		const b = edgeCdf(cur);
		for (let i = 0; i < a.length; i++)
			d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
	}
	const en = (ref.count * cur.count) / (ref.count + cur.count);
	const s = Math.sqrt(en);
	return { d, p: kolmogorovQ((s + 0.12 + 0.11 / s) * d) };
}

/** CDF of a numeric profile at x, values spread evenly inside each bin (bins clipped to the profile's min/max). */
function cdfAt(c: NumericProfile, x: number): number {
	const { edges, counts } = c.histogram;
	const lo = c.min as number;
	const hi = c.max as number;
	if (x < lo) return 0;
	if (x >= hi) return 1;
	let acc = 0;
	for (let i = 0; i <= edges.length; i++) {
		const n = counts[i] as number;
		const a = Math.max(i === 0 ? lo : (edges[i - 1] as number), lo);
		const b = Math.min(i === edges.length ? hi : (edges[i] as number), hi);
		if (x < b || i === edges.length) {
			if (n === 0) return acc / c.count;
			if (x <= a) return acc / c.count;
			return (acc + (n * (x - a)) / (b - a)) / c.count;
		}
		acc += n;
	}
	return 1;
}

/** ∫|f| over [a, b] for f linear from fa to fb. */
function absLinearIntegral(
	a: number,
	b: number,
	fa: number,
	fb: number,
): number {
	const w = b - a;
	if (w <= 0) return 0;
	if (fa * fb >= 0) return (w * (Math.abs(fa) + Math.abs(fb))) / 2;
	const t = (fa / (fa - fb)) * w;
	return (t * Math.abs(fa) + (w - t) * Math.abs(fb)) / 2;
}

/** Wasserstein-1 distance between two numeric profiles (see the file header), not normed. */
export function wasserstein(ref: NumericProfile, cur: NumericProfile): number {
	const exact = discreteCdfs(ref, cur);
	if (exact) {
		let total = 0;
		for (let i = 0; i + 1 < exact.length; i++) {
			const [x, a, b] = exact[i] as [number, number, number];
			total +=
				Math.abs(a - b) * ((exact[i + 1] as [number, number, number])[0] - x);
		}
		return total;
	}
	const points = new Set<number>(ref.histogram.edges);
	for (const x of [ref.min, ref.max, cur.min, cur.max])
		if (x !== null) points.add(x);
	const xs = [...points].sort((a, b) => a - b);
	let total = 0;
	for (let i = 1; i < xs.length; i++) {
		const a = xs[i - 1] as number;
		const b = xs[i] as number;
		// Just inside the segment: a point mass at `a` (a bin of zero width) belongs to the left of it.
		const eps = (b - a) * 1e-9;
		const fa = cdfAt(ref, a + eps) - cdfAt(cur, a + eps);
		const fb = cdfAt(ref, b - eps) - cdfAt(cur, b - eps);
		total += absLinearIntegral(a, b, fa, fb);
	}
	return total;
}

function chisquareP(obs: number[], exp: number[]): number {
	let stat = 0;
	for (let i = 0; i < obs.length; i++) {
		const e = exp[i] as number;
		const o = obs[i] as number;
		if (e === 0) {
			if (o !== 0) return 0; // scipy: infinite statistic, p = 0
			continue;
		}
		stat += ((o - e) * (o - e)) / e;
	}
	const dof = obs.length - 1;
	if (dof < 1) return 1;
	return 1 - jStat.chisquare.cdf(stat, dof);
}

function countsOf(m: Map<string, number>, keys: string[]): number[] {
	return keys.map((k) => m.get(k) ?? 0);
}

/** Jensen–Shannon distance (natural log, as scipy's default) of two count vectors. */
function jensenShannon(p: number[], q: number[]): number {
	const sp = p.reduce((a, b) => a + b, 0);
	const sq = q.reduce((a, b) => a + b, 0);
	let js = 0;
	for (let i = 0; i < p.length; i++) {
		const a = (p[i] as number) / sp;
		const b = (q[i] as number) / sq;
		const m = (a + b) / 2;
		if (a > 0) js += a * Math.log(a / m);
		if (b > 0) js += b * Math.log(b / m);
	}
	return Math.sqrt(Math.max(0, js / 2));
}

/** PSI on ten bins of the reference (its histogram bins pooled by reference mass), or on categories. */
function psi(ref: ColumnProfile, cur: ColumnProfile): number {
	let p: number[];
	let q: number[];
	const values = unionValues(ref, cur);
	if (values) {
		p = countsOf(valueCounts(ref) as Map<string, number>, values);
		q = countsOf(valueCounts(cur) as Map<string, number>, values);
	} else {
		const r = ref as NumericProfile;
		const c = cur as NumericProfile;
		p = [];
		q = [];
		let accR = 0;
		let accC = 0;
		let seen = 0;
		for (let i = 0; i < r.histogram.counts.length; i++) {
			accR += r.histogram.counts[i] as number;
			accC += c.histogram.counts[i] as number;
			seen += r.histogram.counts[i] as number;
			const last = i === r.histogram.counts.length - 1;
			if (seen >= ((p.length + 1) * r.count) / 10 || last) {
				p.push(accR);
				q.push(accC);
				accR = 0;
				accC = 0;
			}
		}
	}
	const sp = p.reduce((a, b) => a + b, 0);
	const sq = q.reduce((a, b) => a + b, 0);
	let total = 0;
	for (let i = 0; i < p.length; i++) {
		const a = Math.max((p[i] as number) / sp, 0.0001);
		const b = Math.max((q[i] as number) / sq, 0.0001);
		total += (a - b) * Math.log(a / b);
	}
	return total;
}

/** Z-test for two proportions (Evidently's z_stat_test): the share of values other than the first key. */
function zTest(
	ref: Map<string, number>,
	cur: Map<string, number>,
	keys: string[],
): number {
	const refKeys = [...ref].filter(([, n]) => n > 0);
	const curKeys = [...cur].filter(([, n]) => n > 0);
	if (
		refKeys.length === 1 &&
		curKeys.length === 1 &&
		refKeys[0]?.[0] === curKeys[0]?.[0]
	)
		return 1;
	const n1 = [...ref.values()].reduce((a, b) => a + b, 0);
	const n2 = [...cur.values()].reduce((a, b) => a + b, 0);
	const first = keys[0] as string;
	const p1 = (n1 - (ref.get(first) ?? 0)) / n1;
	const p2 = (n2 - (cur.get(first) ?? 0)) / n2;
	const pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
	const z = (p1 - p2) / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
	if (!Number.isFinite(z)) return Number.isNaN(z) ? 1 : 0;
	return 2 * (1 - jStat.normal.cdf(Math.abs(z), 0, 1));
}

/** Keys sorted as Evidently sorts a numeric column's values (by number), else as text. */
function sortedKeys(c: ColumnProfile, keys: string[]): string[] {
	return c.kind === "numeric"
		? [...keys].sort((a, b) => Number(a) - Number(b))
		: keys;
}

/** Drift of one column: the reference's profile against a live window's. */
export function columnDrift(
	ref: ColumnProfile,
	cur: ColumnProfile,
	opts: DriftOptions = {},
): ColumnDrift {
	const minRows = opts.minRows ?? 50;
	const method = opts.method ?? defaultMethod(ref, cur, opts.smallReference);
	const threshold = opts.thresholds?.[method] ?? DEFAULT_THRESHOLDS[method];
	const base = {
		method,
		threshold,
		current_rows: cur.count,
		reference_rows: ref.count,
	};
	if (cur.count < minRows || ref.count === 0)
		return {
			...base,
			statistic: null,
			drifted: null,
			reason:
				ref.count === 0
					? "the reference has no values"
					: `not enough data: ${cur.count} of ${minRows} rows`,
		};
	let statistic: number;
	if (method === "psi") statistic = psi(ref, cur);
	else if (method === "ks" || method === "wasserstein") {
		if (ref.kind !== "numeric" || cur.kind !== "numeric")
			throw new Error(`${method} needs a numeric column`);
		if (method === "ks") statistic = ksTest(ref, cur).p;
		else statistic = wasserstein(ref, cur) / Math.max(meanStd(ref).std, 0.001);
	} else {
		const keys = unionValues(ref, cur) ?? [];
		const a = valueCounts(ref) as Map<string, number>;
		const b = valueCounts(cur) as Map<string, number>;
		if (method === "z") statistic = zTest(a, b, sortedKeys(ref, keys));
		else if (method === "chisquare") {
			const k = cur.count / ref.count;
			statistic = chisquareP(
				countsOf(b, keys),
				countsOf(a, keys).map((n) => n * k),
			);
		} else statistic = jensenShannon(countsOf(a, keys), countsOf(b, keys));
	}
	const drifted = isPValueTest(method)
		? method === "ks"
			? statistic <= threshold
			: statistic < threshold
		: statistic >= threshold;
	return { ...base, statistic, drifted };
}

/** Drift of a whole window: per column, and the dataset's (share of drifted columns ≥ driftShare). */
export interface WindowDrift {
	features: Record<string, ColumnDrift>;
	outputs: Record<string, ColumnDrift>;
	/** Columns with a verdict, drifted ones, their share; dataset drift null when no feature has a verdict. */
	dataset: {
		columns: number;
		drifted: number;
		share: number | null;
		drift_share: number;
		drifted_dataset: boolean | null;
	};
	/** Whether any output drifted (prediction drift); null when no output has a verdict. */
	prediction_drift: boolean | null;
}

/** Compares every column of a live profile with the reference's. Columns missing from the live profile are skipped. */
export function windowDrift(
	reference: {
		features: Record<string, ColumnProfile>;
		outputs: Record<string, ColumnProfile>;
	},
	current: {
		features: Record<string, ColumnProfile>;
		outputs: Record<string, ColumnProfile>;
	},
	opts: DriftOptions = {},
): WindowDrift {
	const group = (
		ref: Record<string, ColumnProfile>,
		cur: Record<string, ColumnProfile>,
	): Record<string, ColumnDrift> => {
		const out: Record<string, ColumnDrift> = {};
		for (const [name, r] of Object.entries(ref)) {
			const c = cur[name];
			if (c && c.kind === r.kind) out[name] = columnDrift(r, c, opts);
		}
		return out;
	};
	const features = group(reference.features, current.features);
	const outputs = group(reference.outputs, current.outputs);
	const judged = Object.values(features).filter((d) => d.drifted !== null);
	const drifted = judged.filter((d) => d.drifted).length;
	const driftShare = opts.driftShare ?? 0.5;
	const share = judged.length > 0 ? drifted / judged.length : null;
	const outVerdicts = Object.values(outputs).filter((d) => d.drifted !== null);
	return {
		features,
		outputs,
		dataset: {
			columns: judged.length,
			drifted,
			share,
			drift_share: driftShare,
			drifted_dataset: share === null ? null : share >= driftShare,
		},
		prediction_drift:
			outVerdicts.length === 0 ? null : outVerdicts.some((d) => d.drifted),
	};
}

export type { CategoricalProfile };
