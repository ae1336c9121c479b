// Prometheus series updated on the request path without prom-client's per-call label work (hashing, validation).
import type { Counter, Gauge, Histogram } from "prom-client";

/**
 * prom-client 15 keeps each series in `hashMap[key]` (histograms: `{sum, count, bucketValues}` with per-bound,
 * non-cumulative counts; counters and gauges: `{value}`) and `upperBounds` for histograms. A labelled child
 * (`h.labels(...)`) still hashes its label object on every call: ~0.5–1 µs each, several times per request. These
 * updaters find their series once and change it in place, so `/metrics` reads the same text; when the series was
 * removed or the metric reset, they go through prom-client's own call once and find it again.
 */
interface Internals {
	hashMap: Record<string, SeriesEntry>;
	upperBounds?: number[];
}
interface SeriesEntry {
	labels: Record<string, string | number>;
	value?: number;
	sum?: number;
	count?: number;
	bucketValues?: Record<number, number>;
}

type Labels = Record<string, string | number>;

function sameLabels(a: Labels, b: Labels): boolean {
	const ka = Object.keys(a);
	if (ka.length !== Object.keys(b).length) return false;
	for (const k of ka) if (String(a[k]) !== String(b[k])) return false;
	return true;
}

/** The series of `labels` in a metric's map: its key and entry (made by `create` when missing). */
function find(
	metric: object,
	labels: Labels,
	create: () => void,
): { m: Internals; key: string; entry: SeriesEntry } {
	const m = metric as Internals;
	for (let pass = 0; pass < 2; pass++) {
		for (const [key, entry] of Object.entries(m.hashMap))
			if (sameLabels(entry.labels, labels)) return { m, key, entry };
		create();
	}
	throw new Error("prom-client series not found after creating it");
}

/**
 * An observe function for one histogram series, equal in effect to `h.observe(labels, v)`.
 * @example const observe = histogramSeries(m.latency, { model: "iris", version: "1" }); observe(0.002);
 */
export function histogramSeries<T extends string>(
	h: Histogram<T>,
	labels: Partial<Record<T, string | number>>,
): (v: number) => void {
	const bounds = (h as unknown as Internals).upperBounds ?? [];
	let s = find(h, labels as Labels, () => h.zero(labels));
	return (v) => {
		if (s.m.hashMap[s.key] !== s.entry || !Number.isFinite(v)) {
			h.observe(labels, v); // recreates the series (or throws as prom-client does for NaN)
			s = find(h, labels as Labels, () => h.zero(labels));
			return;
		}
		const e = s.entry as Required<SeriesEntry>;
		e.sum += v;
		e.count += 1;
		for (let i = 0; i < bounds.length; i++) {
			const b = bounds[i] as number;
			if (v <= b) {
				e.bucketValues[b] = (e.bucketValues[b] as number) + 1;
				break;
			}
		}
	};
}

/** An increment function for one counter series, equal in effect to `c.inc(labels, n)` (n ≥ 0, default 1). */
export function counterSeries<T extends string>(
	c: Counter<T>,
	labels: Partial<Record<T, string | number>>,
): (n?: number) => void {
	let s = find(c, labels as Labels, () => c.inc(labels, 0));
	return (n = 1) => {
		if (s.m.hashMap[s.key] !== s.entry || !(n >= 0) || !Number.isFinite(n)) {
			c.inc(labels, n);
			s = find(c, labels as Labels, () => c.inc(labels, 0));
			return;
		}
		s.entry.value = (s.entry.value as number) + n;
	};
}

/** A set function for one gauge series, equal in effect to `g.set(labels, v)`. */
export function gaugeSeries<T extends string>(
	g: Gauge<T>,
	labels: Partial<Record<T, string | number>>,
): (v: number) => void {
	let s = find(g, labels as Labels, () => g.set(labels, 0));
	return (v) => {
		if (s.m.hashMap[s.key] !== s.entry || typeof v !== "number") {
			g.set(labels, v);
			s = find(g, labels as Labels, () => g.set(labels, 0));
			return;
		}
		s.entry.value = v;
	};
}
