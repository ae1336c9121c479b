// The monitor report as one self-contained HTML file: inline SVG charts drawn here (no script, no network).
import type { ColumnDrift } from "./drift.ts";
import type { ColumnProfile, Profile } from "./profile/format.ts";
import type { StatsWindowReport } from "./stats.ts";
import type { MonitorReport, MonitorWindow } from "./windows.ts";

const esc = (s: unknown): string =>
	String(s)
		.replaceAll("&", "&amp;")
		.replaceAll("<", "&lt;")
		.replaceAll(">", "&gt;")
		.replaceAll('"', "&quot;")
		.replaceAll("'", "&#39;");

const num = (x: number): string =>
	Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0)
		? x.toExponential(2)
		: Number(x.toPrecision(4)).toString();

const COLORS = [
	"#4c78a8",
	"#f58518",
	"#54a24b",
	"#b279a2",
	"#e45756",
	"#72b7b2",
];
const REF = "#9aa5b1";
const CUR = "#4c78a8";

/** Bars of two distributions (reference vs current) over the same labels, as shares. */
function pairedBars(
	title: string,
	labels: string[],
	ref: number[],
	cur: number[],
	cls: string,
): string {
	const w = 420;
	const h = 170;
	const pad = { l: 36, r: 8, t: 22, b: 34 };
	const max = Math.max(1e-9, ...ref, ...cur);
	const bw = (w - pad.l - pad.r) / Math.max(1, labels.length);
	const y = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - v / max);
	const bars: string[] = [];
	labels.forEach((label, i) => {
		const x = pad.l + i * bw;
		const r = ref[i] ?? 0;
		const c = cur[i] ?? 0;
		bars.push(
			`<rect class="bar ref" x="${(x + bw * 0.08).toFixed(1)}" y="${y(r).toFixed(1)}" width="${(bw * 0.42).toFixed(1)}" height="${(h - pad.b - y(r)).toFixed(1)}" fill="${REF}"><title>${esc(label)}: reference ${(100 * r).toFixed(1)}%</title></rect>`,
			`<rect class="bar cur" x="${(x + bw * 0.5).toFixed(1)}" y="${y(c).toFixed(1)}" width="${(bw * 0.42).toFixed(1)}" height="${(h - pad.b - y(c)).toFixed(1)}" fill="${CUR}"><title>${esc(label)}: current ${(100 * c).toFixed(1)}%</title></rect>`,
		);
	});
	const step = Math.max(1, Math.ceil(labels.length / 6));
	const ticks = labels
		.map((l, i) =>
			i % step === 0
				? `<text x="${(pad.l + (i + 0.5) * bw).toFixed(1)}" y="${h - pad.b + 14}" text-anchor="middle">${esc(l.length > 10 ? `${l.slice(0, 9)}…` : l)}</text>`
				: "",
		)
		.join("");
	return `<svg class="chart ${cls}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">
<text class="title" x="${pad.l}" y="14">${esc(title)}</text>
<line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" stroke="#888"/>
<text x="2" y="${pad.t + 8}">${(100 * max).toFixed(0)}%</text>
${bars.join("\n")}
${ticks}
</svg>`;
}

/** Reference vs current distribution of one column: numeric bins pooled to ≤ 20, or the top categories. */
function histogram(
	name: string,
	ref: ColumnProfile,
	cur: ColumnProfile | undefined,
): string {
	if (ref.kind === "categorical") {
		const curMap = new Map(cur?.kind === "categorical" ? cur.top : []);
		const labels = ref.top.slice(0, 12).map(([v]) => v);
		for (const [v] of cur?.kind === "categorical" ? cur.top : [])
			if (labels.length < 15 && !labels.includes(v)) labels.push(v);
		const refMap = new Map(ref.top);
		return pairedBars(
			name,
			labels,
			labels.map((l) => (refMap.get(l) ?? 0) / Math.max(1, ref.count)),
			labels.map((l) => (curMap.get(l) ?? 0) / Math.max(1, cur?.count ?? 1)),
			"hist",
		);
	}
	const edges = ref.histogram.edges;
	const rc = ref.histogram.counts;
	const cc = cur?.kind === "numeric" ? cur.histogram.counts : rc.map(() => 0);
	// Pool adjacent bins so each holds about 1/20 of the reference (plus the outer bins, kept apart).
	const groups: { label: string; r: number; c: number }[] = [];
	groups.push({
		label: `<${num(edges[0] ?? 0)}`,
		r: rc[0] ?? 0,
		c: cc[0] ?? 0,
	});
	const target = Math.max(1, (ref.count - (rc[0] ?? 0)) / 20);
	let acc = { from: 1, r: 0, c: 0 };
	for (let i = 1; i < rc.length; i++) {
		acc.r += rc[i] ?? 0;
		acc.c += cc[i] ?? 0;
		if (acc.r >= target || i === rc.length - 1) {
			groups.push({ label: num(edges[acc.from - 1] ?? 0), r: acc.r, c: acc.c });
			acc = { from: i + 1, r: 0, c: 0 };
		}
	}
	const curCount = cur?.count ?? 0;
	return pairedBars(
		name,
		groups.map((g) => g.label),
		groups.map((g) => g.r / Math.max(1, ref.count)),
		groups.map((g) => g.c / Math.max(1, curCount)),
		"hist",
	);
}

/** Dataset drift share per window, one line per version, with the drift-share threshold. */
function shareChart(windows: MonitorWindow[], driftShare: number): string {
	const w = 860;
	const h = 200;
	const pad = { l: 40, r: 12, t: 24, b: 36 };
	// x = the window's time slot; one line per version.
	const starts = [...new Set(windows.map((x) => x.start))].sort();
	const slot = new Map(starts.map((s, i) => [s, i]));
	const n = Math.max(1, starts.length - 1);
	const x = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / n;
	const y = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - v);
	const versions = [...new Set(windows.map((x) => x.version))].sort(
		(a, b) => a - b,
	);
	const lines: string[] = [];
	const dots: string[] = [];
	versions.forEach((v, k) => {
		const color = COLORS[k % COLORS.length];
		const pts = windows.filter(
			(p) => p.version === v && p.dataset.share !== null,
		);
		const d = pts
			.map(
				(p, i) =>
					`${i === 0 ? "M" : "L"}${x(slot.get(p.start) ?? 0).toFixed(1)},${y(p.dataset.share ?? 0).toFixed(1)}`,
			)
			.join(" ");
		lines.push(
			`<path class="line" d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>v${v}</title></path>`,
		);
		for (const p of pts)
			dots.push(
				`<circle class="point" cx="${x(slot.get(p.start) ?? 0).toFixed(1)}" cy="${y(p.dataset.share ?? 0).toFixed(1)}" r="3.5" fill="${p.dataset.drifted_dataset ? "#e45756" : "#54a24b"}" stroke="${color}"><title>${esc(p.start)} v${p.version}: ${((p.dataset.share ?? 0) * 100).toFixed(0)}% of features drifted</title></circle>`,
			);
	});
	const legend = versions
		.map((v, k) => {
			const lx = w - 70 * (versions.length - k);
			return `<line x1="${lx}" y1="11" x2="${lx + 14}" y2="11" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"/><text x="${lx + 18}" y="15">v${v}</text>`;
		})
		.join("");
	const step = Math.max(1, Math.ceil(starts.length / 8));
	const ticks = starts
		.map((s, i) =>
			i % step === 0
				? `<text x="${x(i).toFixed(1)}" y="${h - pad.b + 16}" text-anchor="middle">${esc(s.slice(11, 16))}</text>`
				: "",
		)
		.join("");
	return `<svg class="chart share" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="share of drifted features per window">
<text class="title" x="${pad.l}" y="14">Share of drifted features per window (dataset drift at ≥ ${(driftShare * 100).toFixed(0)}%; red points: dataset drift)</text>
<line x1="${pad.l}" y1="${y(driftShare).toFixed(1)}" x2="${w - pad.r}" y2="${y(driftShare).toFixed(1)}" stroke="#e45756" stroke-dasharray="4 3"/>
<line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" stroke="#888"/>
<text x="4" y="${y(1) + 4}">100%</text><text x="12" y="${y(0) + 4}">0%</text>
${legend}
${lines.join("\n")}
${dots.join("")}
${ticks}
</svg>`;
}

/** Features × windows: red drifted, green not, grey without enough data. */
function heatmap(windows: MonitorWindow[], features: string[]): string {
	const cell = 18;
	const left = 110;
	const top = 26;
	const w = Math.max(
		620,
		Math.min(860, left + Math.max(1, windows.length) * cell + 10),
	);
	const cw =
		windows.length > 0
			? Math.min(cell, (w - left - 10) / windows.length)
			: cell;
	const h = top + features.length * cell + 10;
	const cells: string[] = [];
	features.forEach((f, r) => {
		cells.push(
			`<text x="${left - 6}" y="${top + r * cell + 13}" text-anchor="end">${esc(f)}</text>`,
		);
		windows.forEach((win, c) => {
			const d: ColumnDrift | undefined = win.features[f];
			const color =
				d?.drifted === true
					? "#e45756"
					: d?.drifted === false
						? "#54a24b"
						: "#d0d4d9";
			const what = d
				? `${d.method} ${d.statistic === null ? "–" : num(d.statistic)} (threshold ${d.threshold})${d.reason ? `: ${d.reason}` : ""}`
				: "no data";
			cells.push(
				`<rect class="cell" x="${(left + c * cw).toFixed(1)}" y="${top + r * cell}" width="${Math.max(1, cw - 2).toFixed(1)}" height="${cell - 2}" fill="${color}"><title>${esc(f)} · ${esc(win.start)} v${win.version}: ${esc(what)}</title></rect>`,
			);
		});
	});
	return `<svg class="chart heatmap" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="drift per feature and window">
<text class="title" x="4" y="14">Drift per feature and window, oldest first (red: drift · green: none · grey: too few rows)</text>
${cells.join("\n")}
</svg>`;
}

/** One bar per window: rows (drift windows) or requests (traffic windows), stacked by version. */
interface TrafficBar {
	start: string;
	version: number;
	count: number;
	errors: number;
}

/** Requests (or profiled rows) per window, stacked by version; the errors' share of a bar in dark red. */
function trafficChart(items: TrafficBar[], what: string): string {
	const w = 860;
	const h = 180;
	const pad = { l: 48, r: 12, t: 24, b: 30 };
	const starts = [...new Set(items.map((x) => x.start))].sort();
	const versions = [...new Set(items.map((x) => x.version))].sort(
		(a, b) => a - b,
	);
	const totals = starts.map((s) =>
		items.filter((x) => x.start === s).reduce((a, x) => a + x.count, 0),
	);
	const max = Math.max(1, ...totals);
	const bw = (w - pad.l - pad.r) / Math.max(1, starts.length);
	const bars: string[] = [];
	starts.forEach((s, i) => {
		let base = h - pad.b;
		for (const [k, v] of versions.entries()) {
			const it = items.find((x) => x.start === s && x.version === v);
			if (!it || it.count === 0) continue;
			const bh = ((h - pad.t - pad.b) * it.count) / max;
			base -= bh;
			const x = (pad.l + i * bw + bw * 0.1).toFixed(1);
			bars.push(
				`<rect class="bar traffic" x="${x}" y="${base.toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${bh.toFixed(1)}" fill="${COLORS[k % COLORS.length]}"><title>${esc(s)} v${v}: ${it.count} ${what}${it.errors > 0 ? `, ${it.errors} errors` : ""}</title></rect>`,
			);
			if (it.errors > 0) {
				const eh = Math.max(1, (bh * it.errors) / it.count);
				bars.push(
					`<rect class="bar errors" x="${x}" y="${base.toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${eh.toFixed(1)}" fill="#8b1a1a"><title>${esc(s)} v${v}: ${it.errors} errors of ${it.count}</title></rect>`,
				);
			}
		}
	});
	const legend = versions
		.map(
			(v, k) =>
				`<rect x="${w - 80 * (versions.length - k)}" y="6" width="10" height="10" fill="${COLORS[k % COLORS.length]}"/><text x="${w - 80 * (versions.length - k) + 14}" y="15">v${v}</text>`,
		)
		.join("");
	return `<svg class="chart traffic" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(what)} per window by version">
<text class="title" x="${pad.l}" y="14">Traffic: ${esc(what)} per window by version (max ${max}; dark red: errors)</text>
${legend}
<line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" stroke="#888"/>
${xTicks(starts, (i) => pad.l + (i + 0.5) * bw, h - pad.b + 16)}
${bars.join("\n")}
</svg>`;
}

/** Time labels (HH:MM) under a chart, at most 8. */
function xTicks(starts: string[], x: (i: number) => number, y: number): string {
	const step = Math.max(1, Math.ceil(starts.length / 8));
	return starts
		.map((s, i) =>
			i % step === 0
				? `<text x="${x(i).toFixed(1)}" y="${y}" text-anchor="middle">${esc(s.slice(11, 16))}</text>`
				: "",
		)
		.join("");
}

/** A line of a line chart: its points by window start, its colour and dash. */
interface Series {
	label: string;
	cls: string;
	color: string;
	dash?: string;
	points: { start: string; value: number; tip: string }[];
}

/**
 * Lines over the windows (one x slot per window start): y from 0 to the largest value (or `fixedMax`), or on a
 * log scale (latency) between the smallest and largest value with a label at each power of ten.
 */
function lineChart(
	cls: string,
	title: string,
	starts: string[],
	series: Series[],
	unit: string,
	scale: { max?: number; log?: boolean } = {},
): string {
	const w = 860;
	const h = 200;
	const pad = { l: 58, r: 12, t: 40, b: 34 };
	const slot = new Map(starts.map((s, i) => [s, i]));
	const n = Math.max(1, starts.length - 1);
	const x = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / n;
	const values = series.flatMap((s) => s.points.map((p) => p.value));
	const max = scale.max ?? Math.max(1e-9, ...values);
	const inner = h - pad.t - pad.b;
	let y: (v: number) => number;
	let labels: number[];
	if (scale.log) {
		const positive = values.filter((v) => v > 0);
		const lo = Math.log10(Math.max(1e-6, Math.min(...positive, max) / 1.5));
		const hi = Math.log10(max * 1.5);
		y = (v: number) =>
			pad.t + inner * (1 - (Math.log10(Math.max(v, 1e-6)) - lo) / (hi - lo));
		labels = [];
		for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
			for (const m of [1, 2.5, 5]) {
				const v = m * 10 ** e;
				if (Math.log10(v) >= lo && Math.log10(v) <= hi) labels.push(v);
			}
	} else {
		y = (v: number) => pad.t + inner * (1 - v / max);
		labels = [0, max];
	}
	const lines: string[] = [];
	const dots: string[] = [];
	for (const s of series) {
		if (s.points.length === 0) continue;
		const d = s.points
			.map(
				(p, i) =>
					`${i === 0 ? "M" : "L"}${x(slot.get(p.start) ?? 0).toFixed(1)},${y(p.value).toFixed(1)}`,
			)
			.join(" ");
		lines.push(
			`<path class="line ${s.cls}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}><title>${esc(s.label)}</title></path>`,
		);
		for (const p of s.points)
			dots.push(
				`<circle class="point ${s.cls}" cx="${x(slot.get(p.start) ?? 0).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(p.tip)}</title></circle>`,
			);
	}
	// The legend is a row under the title, so a long title never runs into it.
	const legend = series
		.filter((s) => s.points.length > 0)
		.map((s, k) => {
			const lx = pad.l + 100 * k;
			return `<line x1="${lx}" y1="26" x2="${lx + 16}" y2="26" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/><text x="${lx + 20}" y="30">${esc(s.label)}</text>`;
		})
		.join("");
	const grid = labels
		.map(
			(v) =>
				`<line x1="${pad.l}" y1="${y(v).toFixed(1)}" x2="${w - pad.r}" y2="${y(v).toFixed(1)}" stroke="#e3e6ea"/><text x="${pad.l - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${esc(num(v))}${esc(unit)}</text>`,
		)
		.join("");
	return `<svg class="chart ${cls}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">
<text class="title" x="${pad.l}" y="14">${esc(title)}</text>
${legend}
${grid}
<line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" stroke="#888"/>
${lines.join("\n")}
${dots.join("")}
${xTicks(starts, x, h - pad.b + 16)}
</svg>`;
}

/** p50 (solid) and p99 (dashed) latency per window, one colour per version. */
function latencyChart(stats: StatsWindowReport[]): string {
	const starts = [...new Set(stats.map((s) => s.start))].sort();
	const versions = [...new Set(stats.map((s) => s.version))].sort(
		(a, b) => a - b,
	);
	const series: Series[] = [];
	versions.forEach((v, k) => {
		const color = COLORS[k % COLORS.length] as string;
		const mine = stats.filter((s) => s.version === v);
		for (const [q, dash] of [
			["p50", undefined],
			["p99", "5 3"],
		] as const) {
			series.push({
				label: `v${v} ${q}`,
				cls: q,
				color,
				...(dash ? { dash } : {}),
				points: mine.flatMap((s) => {
					const ms = q === "p50" ? s.p50_ms : s.p99_ms;
					return ms === null
						? []
						: [
								{
									start: s.start,
									value: ms,
									tip: `${s.start} v${v}: ${q} ${num(ms)} ms (${s.requests - s.errors} answers)`,
								},
							];
				}),
			});
		}
	});
	return lineChart(
		"latency",
		"Latency per window by version: p50 (solid) and p99 (dashed), from every replica's histogram merged (log scale)",
		starts,
		series,
		" ms",
		{ log: true },
	);
}

const QUALITY: {
	key: keyof NonNullable<StatsWindowReport["quality"]>;
	title: string;
	max?: number;
}[] = [
	{ key: "accuracy", title: "accuracy", max: 1 },
	{ key: "f1_macro", title: "F1 (macro)", max: 1 },
	{ key: "roc_auc", title: "ROC AUC", max: 1 },
	{ key: "log_loss", title: "log-loss (lower is better)" },
	{ key: "mae", title: "MAE (lower is better)" },
	{ key: "rmse", title: "RMSE (lower is better)" },
];

/** One chart per quality figure that some window has, one line per version. */
function qualityCharts(stats: StatsWindowReport[]): string {
	const starts = [...new Set(stats.map((s) => s.start))].sort();
	const versions = [...new Set(stats.map((s) => s.version))].sort(
		(a, b) => a - b,
	);
	const charts: string[] = [];
	for (const m of QUALITY) {
		const series: Series[] = versions.map((v, k) => ({
			label: `v${v}`,
			cls: `q-${m.key}`,
			color: COLORS[k % COLORS.length] as string,
			points: stats.flatMap((s) => {
				const value = s.version === v ? s.quality?.[m.key] : undefined;
				return value === undefined
					? []
					: [
							{
								start: s.start,
								value,
								tip: `${s.start} v${v}: ${m.title} ${num(value)} (${s.quality?.rows} rows with feedback)`,
							},
						];
			}),
		}));
		if (series.every((s) => s.points.length === 0)) continue;
		charts.push(
			lineChart(
				`quality q-${m.key}`,
				`Quality per window by version (answers served in the window, with feedback): ${m.title}`,
				starts,
				series,
				"",
				m.max !== undefined ? { max: m.max } : {},
			),
		);
	}
	return charts.join("\n");
}

/**
 * The report page. Included: per-feature reference vs current histograms (current = every window of the period
 * merged, per version), drift per feature and window, dataset drift share over time, traffic (requests, errors),
 * latency p50/p99 and feedback quality per window by version, and the newest verdicts.
 */
export function reportHtml(r: MonitorReport): string {
	const windows = r.windows;
	const versionsHtml = r.versions
		.map((v) => {
			const ref: Profile | undefined = r.references[String(v.version)];
			const cur = r.current[String(v.version)];
			if (!ref)
				return `<section><h2>Version ${esc(v.version)}</h2><p>No reference profile: add one with <code>mlship bundle init DIR --reference train.parquet</code> and register the bundle again.</p></section>`;
			const charts = [
				...Object.entries(ref.features).map(([name, c]) =>
					histogram(name, c, cur?.features[name]),
				),
				...Object.entries(ref.outputs).map(([name, c]) =>
					histogram(`output: ${name}`, c, cur?.outputs[name]),
				),
			];
			return `<section><h2>Version ${esc(v.version)}: reference (${esc(ref.rows)} rows) vs current (${esc(cur?.rows ?? 0)} rows)</h2>
<p class="legend"><span style="background:${REF}"></span> reference <span style="background:${CUR}"></span> current (every window since ${esc(r.since)})</p>
<div class="grid">${charts.join("\n")}</div></section>`;
		})
		.join("\n");
	const features = [
		...new Set(windows.flatMap((w) => Object.keys(w.features))),
	];
	const latest = r.latest
		.map((w) => {
			const rows = Object.entries(w.features)
				.map(
					([f, d]) =>
						`<tr class="${d.drifted ? "drift" : ""}"><td>${esc(f)}</td><td>${esc(d.method)}</td><td>${d.statistic === null ? "–" : esc(num(d.statistic))}</td><td>${esc(d.threshold)}</td><td>${d.drifted === null ? "not enough data" : d.drifted ? "drift" : "no drift"}</td></tr>`,
				)
				.join("");
			return `<h3>v${esc(w.version)}, window ${esc(w.start)} – ${esc(w.end)} (${esc(w.rows)} rows): ${w.dataset.drifted_dataset ? "<b>dataset drift</b>" : "no dataset drift"}${w.prediction_drift ? ", <b>prediction drift</b>" : ""}</h3>
<table><tr><th>feature</th><th>method</th><th>statistic</th><th>threshold</th><th>verdict</th></tr>${rows}</table>`;
		})
		.join("\n");
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>mlship monitor: ${esc(r.model)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:14px 0 6px}
.meta{color:#555}.grid{display:flex;flex-wrap:wrap;gap:10px}
svg.chart{background:#fafbfc;border:1px solid #e3e6ea;border-radius:4px}svg text{font-size:10px;fill:#333}svg text.title{font-size:12px;font-weight:600}
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}tr.drift td{color:#b3261e;font-weight:600}
.warn{color:#8a4b00}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
</style></head><body>
<h1>Monitoring report: ${esc(r.model)}</h1>
<p class="meta">${esc(windows.length)} windows since ${esc(r.since)} · versions ${r.versions.map((v) => esc(v.version)).join(", ") || "none"} · a verdict needs ≥ ${esc(r.min_rows)} rows per window · generated ${esc(new Date().toISOString())}</p>
${r.warnings.length > 0 ? `<p class="warn"><b>Left out (${esc(r.warnings.length)} stored rows could not be read):</b></p><ul class="warn">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>` : ""}
${windows.length === 0 && r.stats.length === 0 ? "<p><b>No windows in this period.</b> Is the server running with <code>--monitor-window</code>, and has it had traffic?</p>" : ""}
<h2>Drift over time</h2>
${shareChart(windows, windows[0]?.dataset.drift_share ?? 0.5)}
${heatmap(windows, features)}
<h2>Traffic and latency by version</h2>
${
	r.stats.length > 0
		? trafficChart(
				r.stats.map((x) => ({
					start: x.start,
					version: x.version,
					count: x.requests,
					errors: x.errors,
				})),
				"requests",
			)
		: trafficChart(
				windows.map((x) => ({
					start: x.start,
					version: x.version,
					count: x.rows,
					errors: 0,
				})),
				"rows",
			)
}
${r.stats.length > 0 ? latencyChart(r.stats) : "<p>No traffic windows: latency per window is recorded by servers started with <code>--monitor-window</code>.</p>"}
<h2>Quality from feedback</h2>
${qualityCharts(r.stats) || "<p>No feedback joined to answers in this period: send ground truth to <code>POST /v2/models/{model}/feedback</code> with the answers' request ids (serve keeps ids with <code>--feedback-max-ids</code>).</p>"}
<h2>Newest verdicts</h2>
${latest || "<p>No closed window with enough data yet.</p>"}
${versionsHtml}
<p class="meta">Included: reference vs current histograms per feature and output, drift per window, dataset drift share, traffic (requests and errors), latency p50/p99 and quality from feedback per window by version.</p>
</body></html>
`;
}
