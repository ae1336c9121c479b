// Per-window traffic, latency and feedback quality kept in the registry: two replicas (each a real data plane and
// monitor) serving a model without a reference profile share one registry (SQLite and PostgreSQL); the report merges
// their requests, latency histograms and quality statistics per version and window. Plus the pure parts: mergeable
// quality statistics, histogram quantiles, window-aligned ticks.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DriftMonitor, tickMsOf } from "../../src/dataplane/drift-monitor.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import {
	type ClassRow,
	classFigures,
	QualityStats,
} from "../../src/feedback/quality.ts";
import { reportHtml } from "../../src/monitor/report-html.ts";
import {
	histogramQuantile,
	LATENCY_BOUNDS_MS,
	mergeStatsRows,
} from "../../src/monitor/stats.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { ROLLOUT_LATENCY_BUCKETS_MS } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { monitoredPlane } from "./monitored.ts";

const WINDOW = 60;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MODEL = "breast-cancer-gbdt"; // a classifier without a reference profile
const records = golden(MODEL).records as Record<string, number>[];

let pg: PostgresServer;
before(async () => {
	pg = await startPostgres();
});
after(async () => {
	await pg?.stop();
});

for (const kind of ["sqlite", "postgres"] as const)
	test(`${kind}: two replicas' requests, latency and feedback quality per window merge in the report (no reference profile needed)`, async () => {
		const store = await openRegistry(
			kind === "sqlite"
				? "sqlite::memory:"
				: await createDatabase(pg.url, uniqueDatabaseName("stats")),
		);
		const clock = { t: T0 + 1000 };
		const planes: DataPlane[] = [];
		const monitors: DriftMonitor[] = [];
		try {
			for (const replica of ["a", "b"]) {
				const m = await monitoredPlane({
					name: MODEL,
					source: bundleDir(MODEL),
					clock,
					windowSeconds: WINDOW,
					monitor: { store, replica },
					feedback: true,
				});
				planes.push(m.dp);
				monitors.push(m.mon);
			}
			const [a, b] = planes as [DataPlane, DataPlane];
			const [ma, mb] = monitors as [DriftMonitor, DriftMonitor];
			// Window 0: 30 answers on a, 20 on b.
			const served: { plane: DataPlane; id: string; row: ClassRow }[] = [];
			for (let i = 0; i < 50; i++) {
				const plane = i < 30 ? a : b;
				const id = `req-${i}`;
				const r = await plane.predict(
					MODEL,
					undefined,
					[records[i % records.length] as Record<string, number>],
					{ requestId: id },
				);
				const p = r.predictions[0] as {
					label: string;
					probabilities: [number, number];
				};
				const pred = p.probabilities[1] > p.probabilities[0] ? 1 : 0;
				// Every 5th answer was wrong: its truth is the other class.
				const truth = i % 5 === 0 ? 1 - pred : pred;
				served.push({
					plane,
					id,
					row: { pred, truth, probs: p.probabilities },
				});
			}
			clock.t = T0 + 30_000;
			await ma.flush();
			await mb.flush();
			// Window 1: 10 answers on a; the truths of window 0's answers arrive now and count for window 0.
			clock.t = T0 + WINDOW * 1000 + 1000;
			for (let i = 0; i < 10; i++)
				await a.predict(MODEL, undefined, [
					records[i] as Record<string, number>,
				]);
			for (const s of served) {
				const out = s.plane.feedback?.(MODEL, [
					{ id: s.id, truth: s.row.truth },
				]);
				assert.equal(out?.joined, 1);
			}
			clock.t = T0 + WINDOW * 1000 + 30_000;
			await ma.flush();
			await mb.flush();

			const report = await mb.report(MODEL, T0);
			assert.deepEqual(report.versions, [{ version: 1, reference_rows: null }]);
			assert.equal(report.windows.length, 0, "no reference: no drift windows");
			assert.deepEqual(report.latency_bounds_ms, ROLLOUT_LATENCY_BUCKETS_MS);
			assert.equal(report.stats.length, 2, JSON.stringify(report.stats));
			const [w0, w1] = report.stats;
			assert.ok(w0 && w1);
			assert.equal(w0.start, new Date(T0).toISOString());
			assert.equal(w0.replicas, 2);
			assert.equal(w0.requests, 50);
			assert.equal(w0.errors, 0);
			assert.equal(w0.error_rate, 0);
			assert.equal(
				w0.latency_buckets.reduce((x, y) => x + y, 0),
				50,
				"every answer is in the merged latency histogram",
			);
			assert.ok(w0.p50_ms !== null && w0.p50_ms > 0, String(w0.p50_ms));
			assert.ok(w0.p99_ms !== null && w0.p99_ms >= w0.p50_ms);
			assert.equal(w1.requests, 10);
			assert.equal(w1.replicas, 1, "b served nothing in window 1");
			assert.equal(w1.quality, null, "no feedback for window 1's answers");
			// Quality of window 0 merged from both replicas' statistics: as computed over all 50 rows at once.
			const q = w0.quality;
			assert.ok(q);
			assert.equal(q.rows, 50);
			assert.equal(q.accuracy, 0.8);
			const exact = classFigures(served.map((s) => s.row));
			assert.equal(q.f1_macro, exact.f1_macro);
			assert.ok(
				Math.abs((q.log_loss as number) - (exact.log_loss as number)) < 1e-9,
			);
			// AUC from the binned histograms is that of one process over all rows (the cumulative gauge's).
			const one = new QualityStats("classification");
			for (const s of served) one.addClass(s.row);
			const want = one.figures();
			assert.deepEqual(Object.keys(q).sort(), Object.keys(want).sort());
			const got: Record<string, number> = { ...q };
			for (const [k, v] of Object.entries(want))
				assert.ok(
					Math.abs((got[k] as number) - v) < 1e-12,
					`${k}: ${got[k]} vs ${v}`,
				);
			assert.ok(q.roc_auc !== undefined && q.roc_auc > 0.5);
			// The same figures from either replica's view, and from the rows the registry holds.
			assert.deepEqual((await ma.report(MODEL, T0)).stats, report.stats);
			const rows = await store.statsWindows(MODEL, T0);
			assert.deepEqual(
				rows.map((r) => [r.replica, r.start - T0, r.requests]),
				[
					["a", 0, 30],
					["b", 0, 20],
					["a", WINDOW * 1000, 10],
				],
			);
		} finally {
			for (const m of monitors) await m.close();
			for (const p of planes) await p.close();
			await store.close();
		}
	});

test("without a registry, traffic windows stay in the process; closing counts the traffic since the last tick", async () => {
	const clock = { t: T0 + 1000 };
	const { dp, mon } = await monitoredPlane({
		name: MODEL,
		source: bundleDir(MODEL),
		clock,
		windowSeconds: WINDOW,
	});
	try {
		await mon.flush();
		for (let i = 0; i < 7; i++)
			await dp.predict(MODEL, undefined, [
				records[i] as Record<string, number>,
			]);
		const r = await mon.report(MODEL, T0);
		// report() writes what is open but reads traffic only at ticks: nothing counted yet.
		assert.equal(r.stats.length, 0);
		await mon.close();
		const after = await mon.report(MODEL, T0);
		assert.equal(after.stats.length, 1);
		assert.equal(after.stats[0]?.requests, 7);
	} finally {
		await mon.close();
		await dp.close();
	}
});

test("errors are counted per window: a model that fails some rows (server errors, not in the latency histogram)", async () => {
	const clock = { t: T0 + 1000 };
	const name = "iris-fails-long-sepals"; // its model fails rows with sepal_length >= 6.5
	const { dp, mon } = await monitoredPlane({
		name,
		source: bundleDir("rollout/iris-fails-long-sepals"),
		clock,
		windowSeconds: WINDOW,
	});
	try {
		await mon.flush();
		let failed = 0;
		for (let i = 0; i < 10; i++) {
			const row = {
				sepal_length: i < 3 ? 7.2 : 5.0,
				sepal_width: 3.4,
				petal_length: 1.5,
				petal_width: 0.2,
			};
			await dp.predict(name, undefined, [row]).catch(() => failed++);
		}
		assert.equal(failed, 3);
		clock.t = T0 + 30_000;
		await mon.flush();
		const [w] = (await mon.report(name, T0)).stats;
		assert.ok(w);
		assert.deepEqual([w.requests, w.errors, w.error_rate], [10, 3, 0.3]);
		assert.equal(
			w.latency_buckets.reduce((a, b) => a + b, 0),
			7,
			"answers only",
		);
	} finally {
		await mon.close();
		await dp.close();
	}
});

test("while the registry refuses writes, traffic windows wait in memory up to a cap; past it the oldest go, counted", async () => {
	const store = await openRegistry("sqlite::memory:");
	await store.close(); // every call now fails with MLSHIP_CLOSED
	const errors: string[] = [];
	const clock = { t: T0 + 1000 };
	const { dp, mon } = await monitoredPlane({
		name: MODEL,
		source: bundleDir(MODEL),
		clock,
		windowSeconds: WINDOW,
		monitor: {
			store,
			maxOpenWindows: 3,
			onError: (e) => errors.push(e.message),
		},
	});
	try {
		await mon.flush();
		for (let i = 0; i < 6; i++) {
			clock.t = T0 + i * WINDOW * 1000 + 1000;
			await dp.predict(MODEL, undefined, [
				records[0] as Record<string, number>,
			]);
			clock.t += 30_000;
			await mon.flush();
		}
		assert.ok(
			errors.some((e) => /cannot write the traffic window/.test(e)),
			errors.join("\n"),
		);
		const text = (await mon.metricsText()).body;
		assert.match(text, /^mlship_monitor_stats_dropped_total 3$/m);
	} finally {
		await mon.close();
		await dp.close();
	}
});

test("quality statistics merge: two halves through JSON give the figures of all rows; bad stored statistics are named", () => {
	const rows: ClassRow[] = [];
	for (let i = 0; i < 200; i++) {
		const p = ((i * 37) % 100) / 100;
		const truth = (i * 7) % 3 === 0 ? 1 : 0;
		rows.push({ pred: p >= 0.5 ? 1 : 0, truth, probs: [1 - p, p] });
	}
	const all = new QualityStats("classification");
	const h1 = new QualityStats("classification");
	const h2 = new QualityStats("classification");
	rows.forEach((r, i) => {
		all.addClass(r);
		(i % 3 === 0 ? h1 : h2).addClass(r);
	});
	const back = (s: QualityStats) =>
		QualityStats.fromJSON(JSON.parse(JSON.stringify(s.toJSON())), "test");
	const merged = back(h1);
	merged.merge(back(h2));
	assert.deepEqual(merged.figures(), all.figures());
	const exact = classFigures(rows);
	assert.equal(all.figures().accuracy, exact.accuracy);
	assert.equal(all.figures().f1_macro, exact.f1_macro);
	// Probabilities on a 0.01 grid fall on bin edges exactly: the binned AUC is the exact one.
	assert.ok(
		Math.abs((all.figures().roc_auc as number) - (exact.roc_auc as number)) <
			1e-12,
	);
	const reg = new QualityStats("regression");
	reg.addValue(3, 1);
	reg.addValue(1, 2);
	assert.deepEqual(back(reg).figures(), {
		rows: 2,
		mae: 1.5,
		rmse: Math.sqrt(2.5),
	});
	assert.throws(
		() => QualityStats.fromJSON({ task: "ranking", n: 1 }, "window W"),
		/window W: quality statistics have an unknown task "ranking"/,
	);
});

test("a stored quality row that cannot be read is left out of its window's quality, counted and named; the report still answers", async () => {
	const row = (replica: string, quality: string) => ({
		model: "m",
		version: 1,
		start: 0,
		seconds: 60,
		replica,
		requests: 1,
		errors: 0,
		buckets: [1],
		quality,
	});
	const good = new QualityStats("classification");
	good.addClass({ pred: 1, truth: 1 });
	good.addClass({ pred: 0, truth: 1 });
	const goodText = JSON.stringify(good.toJSON());
	// What a 50,000,000 class index used to store: per-class counts past fromJSON's 100,000 entries.
	const huge = JSON.stringify({
		...good.toJSON(),
		fn: new Array(100_001).fill(0),
	});
	const warnings: string[] = [];
	const [w] = mergeStatsRows(
		[
			row("r1", "{not json"),
			row("r2", goodText),
			row("r3", huge),
			row("r4", JSON.stringify(new QualityStats("regression").toJSON())),
		],
		0,
		warnings,
	);
	assert.ok(w);
	assert.equal(w.requests, 4, "the traffic of every row counts");
	assert.equal(w.replicas, 4);
	assert.deepEqual(w.quality, good.figures(), "quality from the readable row");
	assert.equal(w.quality_skipped, 3);
	assert.deepEqual(warnings, [
		"monitor stats m@1 1970-01-01T00:00:00.000Z (r1): quality statistics are not JSON; left out of that window's quality",
		"monitor stats m@1 1970-01-01T00:00:00.000Z (r3): quality statistics have a bad 'fn'; left out of that window's quality",
		"monitor stats m@1 1970-01-01T00:00:00.000Z (r4): quality statistics are regression, the window's other replicas' classification; left out of that window's quality",
	]);
	assert.equal(
		mergeStatsRows([row("r2", goodText)])[0]?.quality_skipped,
		undefined,
		"absent when nothing was skipped",
	);
	// Through the registry: the monitor endpoint's report answers, with the warning.
	const store = await openRegistry("sqlite::memory:");
	const mon = new DriftMonitor({ windowSeconds: 60, store, timer: false });
	try {
		await store.saveStatsWindow({ ...row("r3", huge), start: T0 });
		await store.saveStatsWindow({ ...row("r2", goodText), start: T0 });
		const report = await mon.report("m", T0);
		assert.equal(report.stats[0]?.quality?.rows, 2);
		assert.equal(report.stats[0]?.quality_skipped, 1);
		assert.equal(report.warnings.length, 1);
		assert.match(
			report.warnings[0] as string,
			/^monitor stats m@1 2026-01-01T12:00:00.000Z \(r3\): quality statistics have a bad 'fn'/,
		);
		assert.match(
			reportHtml(report),
			/Left out \(1 stored rows could not be read\):.*<li>monitor stats m@1 2026-01-01T12:00:00.000Z \(r3\): quality statistics have a bad &#39;fn&#39;/s,
		);
	} finally {
		await mon.close();
		await store.close();
	}
});

test("latency quantiles interpolate inside a bucket as histogram_quantile does; ticks divide the window", () => {
	const b = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
	assert.equal(histogramQuantile(0.5, b), null);
	b[3] = 100; // (0.5, 1] ms
	assert.equal(histogramQuantile(0.5, b), 0.75);
	b[16] = 1; // past the last bound
	assert.equal(histogramQuantile(0.999, b), 10_000);
	assert.equal(histogramQuantile(0, b), 0.5);
	for (const w of [150, 1000, 7000, 61_000, 300_000, 86_400_000]) {
		const t = tickMsOf(w);
		const n = w / t;
		assert.ok(Number.isInteger(Math.round(n * 1e9) / 1e9), `${w}: ${t}`);
		assert.ok(
			t <= Math.max(10_000, w / 5) + 1e-9 && t >= Math.min(100, w),
			`${w}: ${t}`,
		);
	}
	assert.equal(tickMsOf(300_000), 10_000);
	assert.equal(tickMsOf(1000), 200);
});
