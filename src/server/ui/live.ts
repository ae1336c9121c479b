// The dashboard's live figures: a server's Prometheus exposition read into per-model, per-version series, and the
// rates between two reads (requests/s, errors/s, p50/p99 latency, mean batch size, queue depth).
import { histogramQuantile } from "../../monitor/stats.ts";

/** One sample of the exposition: metric name, labels, value. */
export interface Sample {
	name: string;
	labels: Record<string, string>;
	value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;

/** Largest exposition read (a server with thousands of models is still far below). */
export const MAX_EXPOSITION_BYTES = 32 * 1024 * 1024;

/**
 * Parses the Prometheus text format (comments and malformed lines are skipped).
 * @example parseExposition('mlship_queue_depth{model="iris",version="1"} 3')
 */
export function parseExposition(text: string): Sample[] {
	const out: Sample[] = [];
	for (const line of text.split("\n")) {
		if (line === "" || line.startsWith("#")) continue;
		const m = LINE.exec(line);
		if (!m) continue;
		const labels: Record<string, string> = {};
		if (m[2])
			for (const l of m[2].matchAll(LABEL))
				labels[l[1] as string] = (l[2] as string).replace(
					/\\(.)/g,
					(_s, c: string) => (c === "n" ? "\n" : c),
				);
		const raw = m[3] as string;
		const value =
			raw === "+Inf"
				? Number.POSITIVE_INFINITY
				: raw === "-Inf"
					? Number.NEGATIVE_INFINITY
					: Number(raw);
		if (Number.isNaN(value) && raw !== "NaN") continue;
		out.push({ name: m[1] as string, labels, value });
	}
	return out;
}

/** Cumulative counters of one model version at one read. */
interface VersionCounters {
	requests: number;
	errors: number;
	latencyCount: number;
	/** Cumulative bucket counts by upper bound (seconds). */
	latencyBuckets: Map<number, number>;
	batchSum: number;
	batchCount: number;
	queueDepth: number;
}

/** What one read of a server's metrics holds for the dashboard. */
export interface Snapshot {
	/** When it was read, ms since the epoch. */
	at: number;
	/** Keyed `model\u0000version`. */
	versions: Map<string, VersionCounters>;
	/** mlship_models_loaded_bytes, mlship_models_loaded, mlship_registry_available when present. */
	loadedBytes?: number;
	loadedModels?: number;
	registryAvailable?: number;
	/** process_resident_memory_bytes when present. */
	residentBytes?: number;
}

function counters(
	map: Map<string, VersionCounters>,
	labels: Record<string, string>,
): VersionCounters | undefined {
	const { model, version } = labels;
	if (model === undefined || version === undefined) return undefined;
	const key = `${model}\u0000${version}`;
	let c = map.get(key);
	if (!c) {
		c = {
			requests: 0,
			errors: 0,
			latencyCount: 0,
			latencyBuckets: new Map(),
			batchSum: 0,
			batchCount: 0,
			queueDepth: 0,
		};
		map.set(key, c);
	}
	return c;
}

/** Reads what the dashboard needs from an exposition. */
export function snapshot(text: string, at: number): Snapshot {
	const versions = new Map<string, VersionCounters>();
	const snap: Snapshot = { at, versions };
	for (const s of parseExposition(text)) {
		switch (s.name) {
			case "mlship_requests_total": {
				const c = counters(versions, s.labels);
				if (!c) break;
				c.requests += s.value;
				if (s.labels.outcome !== "ok") c.errors += s.value;
				break;
			}
			case "mlship_request_duration_seconds_bucket": {
				const c = counters(versions, s.labels);
				const le = Number(
					s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : s.labels.le,
				);
				if (c && !Number.isNaN(le)) c.latencyBuckets.set(le, s.value);
				break;
			}
			case "mlship_request_duration_seconds_count": {
				const c = counters(versions, s.labels);
				if (c) c.latencyCount = s.value;
				break;
			}
			case "mlship_batch_size_sum": {
				const c = counters(versions, s.labels);
				if (c) c.batchSum = s.value;
				break;
			}
			case "mlship_batch_size_count": {
				const c = counters(versions, s.labels);
				if (c) c.batchCount = s.value;
				break;
			}
			case "mlship_queue_depth": {
				const c = counters(versions, s.labels);
				if (c) c.queueDepth = s.value;
				break;
			}
			case "mlship_models_loaded_bytes":
				snap.loadedBytes = (snap.loadedBytes ?? 0) + s.value;
				break;
			case "mlship_models_loaded":
				snap.loadedModels = (snap.loadedModels ?? 0) + s.value;
				break;
			case "mlship_registry_available":
				snap.registryAvailable = s.value;
				break;
			case "process_resident_memory_bytes":
				snap.residentBytes = s.value;
				break;
		}
	}
	return snap;
}

/** One model version's figures over the interval between two reads. */
export interface VersionRates {
	model: string;
	version: string;
	/** Requests per second (every outcome); null on a server's first read (no interval yet). */
	rps: number | null;
	/** Failed requests per second (outcome other than ok); null on a first read. */
	errors: number | null;
	/** Latency quantiles in ms over the interval, null without requests. */
	p50: number | null;
	p99: number | null;
	/** Mean rows per batch over the interval, null without batches. */
	batch: number | null;
	/** Requests waiting at the second read. */
	queue: number;
}

/**
 * The q-quantile of a histogram's cumulative bucket increments (`[le, count]`), interpolated inside its bucket as
 * histogram_quantile() does (one implementation: the monitor's `histogramQuantile`); a quantile in the +Inf bucket
 * is the last finite bound. Null without requests.
 */
export function quantile(
	q: number,
	buckets: readonly (readonly [number, number])[],
): number | null {
	const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
	const bounds: number[] = [];
	const counts: number[] = [];
	let below = 0;
	for (const [bound, count] of sorted) {
		if (Number.isFinite(bound)) bounds.push(bound);
		counts.push(Math.max(0, count - below));
		below = count;
	}
	if (bounds.length === 0) return below > 0 ? 0 : null;
	return histogramQuantile(q, counts, bounds);
}

/** The figures between two reads of one server (versions seen in the later read). */
export function rates(
	prev: Snapshot | undefined,
	cur: Snapshot,
): VersionRates[] {
	const dt = prev ? (cur.at - prev.at) / 1000 : 0;
	const out: VersionRates[] = [];
	for (const [key, c] of cur.versions) {
		const [model, version] = key.split("\u0000") as [string, string];
		const p = prev?.versions.get(key);
		// A restarted server's counters start again from 0: then the later read alone is the interval.
		const reset = p !== undefined && c.requests < p.requests;
		const base = reset ? undefined : p;
		const d = (a: number, b: number | undefined) => Math.max(0, a - (b ?? 0));
		const buckets = [...c.latencyBuckets].map(
			([le, n]) => [le, d(n, base?.latencyBuckets.get(le))] as const,
		);
		const batches = d(c.batchCount, base?.batchCount);
		out.push({
			model,
			version,
			rps: dt > 0 && base ? d(c.requests, base.requests) / dt : null,
			errors: dt > 0 && base ? d(c.errors, base.errors) / dt : null,
			p50: base ? msOrNull(quantile(0.5, buckets)) : null,
			p99: base ? msOrNull(quantile(0.99, buckets)) : null,
			batch:
				base && batches > 0 ? d(c.batchSum, base.batchSum) / batches : null,
			queue: c.queueDepth,
		});
	}
	return out;
}

function msOrNull(seconds: number | null): number | null {
	return seconds === null ? null : seconds * 1000;
}
