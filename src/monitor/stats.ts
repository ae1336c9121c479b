// Per-window traffic, latency and feedback quality of each model version, as replicas store them in the registry
// (`monitor_stats`) and the monitor endpoint and report read them back, every replica's rows merged.
import {
	type QualityFigures,
	QualityStats,
	type QualityStatsJson,
} from "../feedback/quality.ts";

/**
 * Upper bounds (ms) of the latency histogram's buckets, then +Inf: those of `mlship_request_duration_seconds`, so
 * a replica stores its histogram as it is (rollouts' version_stats use the same, ROLLOUT_LATENCY_BUCKETS_MS).
 */
export const LATENCY_BOUNDS_MS = [
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

/**
 * One replica's traffic of one model version over one window, as the registry stores it (rewritten as the window
 * fills, merged with other replicas' rows when read).
 */
export interface StatsRow {
	model: string;
	/** Registry version; 1 for a bundle directory (as the server reports it). */
	version: number;
	/** Window start, epoch ms (a multiple of the window length). */
	start: number;
	seconds: number;
	replica: string;
	/** Requests the server answered or failed (outcomes ok, error, timeout; invalid and overloaded ones are not counted). */
	requests: number;
	/** Of those, the server's failures: error and timeout (as rollouts count them). */
	errors: number;
	/** Answered requests per latency bucket (LATENCY_BOUNDS_MS, then +Inf); not cumulative. */
	buckets: number[];
	/** Feedback quality of the answers served in this window (QualityStatsJson as text), when feedback came. */
	quality?: string;
}

/**
 * The q-quantile (0–1) of a histogram (counts per bucket, LATENCY_BOUNDS_MS then +Inf) in ms, interpolated
 * linearly inside its bucket as Prometheus' histogram_quantile does; a quantile in the +Inf bucket is the last
 * finite bound. Null for an empty histogram.
 */
export function histogramQuantile(
	q: number,
	buckets: readonly number[],
	bounds: readonly number[] = LATENCY_BOUNDS_MS,
): number | null {
	let total = 0;
	for (const c of buckets) total += c;
	if (total <= 0) return null;
	const rank = q * total;
	let below = 0;
	for (let i = 0; i < buckets.length; i++) {
		const c = buckets[i] as number;
		if (below + c >= rank && c > 0) {
			if (i >= bounds.length) return bounds[bounds.length - 1] as number;
			const lo = i === 0 ? 0 : (bounds[i - 1] as number);
			const hi = bounds[i] as number;
			return lo + (hi - lo) * ((rank - below) / c);
		}
		below += c;
	}
	return bounds[bounds.length - 1] as number;
}

/** One window of one version, every replica's traffic merged. */
export interface StatsWindowReport {
	version: number;
	start: string;
	end: string;
	replicas: number;
	requests: number;
	errors: number;
	/** errors / requests (null without requests). */
	error_rate: number | null;
	/** Answered requests per latency bucket (bounds: the report's latency_bounds_ms, then +Inf). */
	latency_buckets: number[];
	/** Latency quantiles in ms from the merged histogram (null without answers). */
	p50_ms: number | null;
	p99_ms: number | null;
	/** Feedback quality of the answers served in the window (null: no feedback for them yet). */
	quality: QualityFigures | null;
	/** Replicas' quality statistics left out because they could not be read (the report's `warnings` say which); absent when none. */
	quality_skipped?: number;
	/** Whether the window is still filling (its end is in the future). */
	open: boolean;
}

/**
 * Merges every replica's rows per (version, window) and computes their latency quantiles and quality figures. A row
 * whose quality statistics cannot be read (not JSON, out of bounds, another task) is left out of its window's quality
 * (its traffic still counts), counted in the window's `quality_skipped` and named in `warnings` (model, version,
 * window start, replica and why), so one bad row never hides a model's report.
 */
export function mergeStatsRows(
	rows: readonly StatsRow[],
	now: number = Date.now(),
	warnings: string[] = [],
): StatsWindowReport[] {
	const by = new Map<
		string,
		{
			version: number;
			start: number;
			seconds: number;
			replicas: number;
			requests: number;
			errors: number;
			buckets: number[];
			quality: QualityStats | null;
			skipped: number;
		}
	>();
	for (const r of rows) {
		const key = `${r.version}\u0000${r.start}`;
		let m = by.get(key);
		if (!m) {
			m = {
				version: r.version,
				start: r.start,
				seconds: r.seconds,
				replicas: 0,
				requests: 0,
				errors: 0,
				buckets: new Array(LATENCY_BOUNDS_MS.length + 1).fill(0),
				quality: null,
				skipped: 0,
			};
			by.set(key, m);
		}
		m.replicas++;
		m.requests += r.requests;
		m.errors += r.errors;
		for (let i = 0; i < m.buckets.length; i++)
			m.buckets[i] = (m.buckets[i] as number) + (r.buckets[i] ?? 0);
		if (r.quality !== undefined) {
			const where = `monitor stats ${r.model}@${r.version} ${new Date(r.start).toISOString()} (${r.replica})`;
			let q: QualityStats | undefined;
			try {
				q = QualityStats.fromJSON(JSON.parse(r.quality), where);
				if (m.quality !== null && m.quality.task !== q.task)
					throw new RangeError(
						`${where}: quality statistics are ${q.task}, the window's other replicas' ${m.quality.task}`,
					);
			} catch (err) {
				q = undefined;
				m.skipped++;
				warnings.push(
					`${
						err instanceof SyntaxError
							? `${where}: quality statistics are not JSON`
							: (err as Error).message
					}; left out of that window's quality`,
				);
			}
			if (q === undefined) continue;
			if (m.quality === null) m.quality = q;
			else m.quality.merge(q);
		}
	}
	return [...by.values()]
		.sort((a, b) => a.start - b.start || a.version - b.version)
		.map((m) => {
			const end = m.start + m.seconds * 1000;
			return {
				version: m.version,
				start: new Date(m.start).toISOString(),
				end: new Date(end).toISOString(),
				replicas: m.replicas,
				requests: m.requests,
				errors: m.errors,
				error_rate: m.requests > 0 ? m.errors / m.requests : null,
				latency_buckets: m.buckets,
				p50_ms: histogramQuantile(0.5, m.buckets),
				p99_ms: histogramQuantile(0.99, m.buckets),
				quality: m.quality && m.quality.n > 0 ? m.quality.figures() : null,
				...(m.skipped > 0 ? { quality_skipped: m.skipped } : {}),
				open: end > now,
			};
		});
}

export type { QualityStatsJson };
