// The live drift monitor: windows from two replicas merge through the registry (SQLite and PostgreSQL), shifted
// traffic drifts and in-distribution traffic does not, gauges, and webhook alerts with hysteresis (no flapping), sent once
// across replicas sharing a registry.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DriftMonitor } from "../../src/dataplane/drift-monitor.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { FeedbackJoin } from "../../src/feedback/join.ts";
import type { Model } from "../../src/model.ts";
import { loadModel } from "../../src/model.ts";
import type { AlertEvent } from "../../src/monitor/alerts.ts";
import { columnVerdict, Hysteresis } from "../../src/monitor/alerts.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import {
	startWebhookReceiver,
	type WebhookReceiver,
} from "../helpers/webhook.ts";
import { monitoredPlane } from "./monitored.ts";
import { bundleWithReference, rows } from "./synth.ts";

const WINDOW = 60; // seconds; the tests move a fake clock
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

let dir: string;
let pg: PostgresServer;
let hook: WebhookReceiver<AlertEvent>;

before(async () => {
	({ dir } = await bundleWithReference(rows(600, 11)));
	pg = await startPostgres();
	hook = await startWebhookReceiver<AlertEvent>();
});

after(async () => {
	await hook.close();
	await pg?.stop();
});

/** Two replicas (each its own model instance and monitor) writing to one registry. */
async function replicas(
	store: ModelStore,
	clock: { t: number },
	webhook?: string,
): Promise<{
	models: Model[];
	monitors: DriftMonitor[];
	close(): Promise<void>;
}> {
	const models: Model[] = [];
	const monitors: DriftMonitor[] = [];
	for (const name of ["a", "b"]) {
		const m = await loadModel(dir, { mode: "inline" });
		const mon = new DriftMonitor({
			windowSeconds: WINDOW,
			store,
			replica: name,
			now: () => clock.t,
			timer: false,
			drift: { minRows: 50 },
			...(webhook && name === "a" ? { webhook } : {}),
		});
		m.addHook(mon.hook);
		models.push(m);
		monitors.push(mon);
	}
	return {
		models,
		monitors,
		async close() {
			for (const m of monitors) await m.close();
			for (const m of models) await m.close();
		},
	};
}

for (const kind of ["sqlite", "postgres"] as const)
	test(`${kind}: two replicas' windows merge; in-distribution traffic does not drift, shifted traffic does`, async () => {
		const store = await openRegistry(
			kind === "sqlite"
				? "sqlite::memory:"
				: await createDatabase(pg.url, uniqueDatabaseName("drift")),
		);
		const clock = { t: T0 };
		const r = await replicas(store, clock);
		try {
			const [a, b] = r.models as [Model, Model];
			// Window 0: 120 + 80 in-distribution rows, split over the replicas.
			await a.predict(rows(120, 21));
			await b.predict(rows(80, 22));
			// Window 1: shifted (bmi and s5 up by one std, most rows male, many old).
			clock.t = T0 + WINDOW * 1000;
			await a.predict(
				rows(150, 23, {
					mean: { bmi: 1, s5: 1, s1: 1, s3: 1 },
					male: 0.9,
					old: 0.7,
				}),
			);
			await b.predict(
				rows(100, 24, {
					mean: { bmi: 1, s5: 1, s1: 1, s3: 1 },
					male: 0.9,
					old: 0.7,
				}),
			);
			// Window 2: 20 rows only (below min rows: no verdict).
			clock.t = T0 + 2 * WINDOW * 1000;
			await a.predict(rows(20, 25));
			clock.t = T0 + 3 * WINDOW * 1000 + 5000;
			for (const m of r.monitors) await m.flush();
			for (const m of r.monitors) await m.flush(); // judged one tick after the end
			const report = await (r.monitors[0] as DriftMonitor).report(
				"diabetes-cats-ridge",
				T0,
			);
			assert.equal(report.windows.length, 3);
			const [w0, w1, w2] = report.windows;
			assert.ok(w0 && w1 && w2);
			assert.equal(w0.rows, 200);
			assert.equal(w0.replicas, 2);
			assert.equal(w1.rows, 250);
			assert.equal(
				w0.dataset.drifted_dataset,
				false,
				JSON.stringify(w0.features),
			);
			assert.equal(w1.dataset.drifted_dataset, true);
			for (const f of ["bmi", "s5", "sex", "age_band", "s1", "s3"])
				assert.equal(
					w1.features[f]?.drifted,
					true,
					`${f} drifted: ${JSON.stringify(w1.features[f])}`,
				);
			assert.equal(w1.features.bmi?.method, "ks"); // 600 reference rows: p-value tests
			assert.equal(w1.features.sex?.method, "z");
			assert.equal(w1.features.age_band?.method, "chisquare");
			assert.equal(w1.prediction_drift, true);
			assert.equal(w2.features.bmi?.drifted, null);
			assert.match(
				w2.features.bmi?.reason ?? "",
				/not enough data: 20 of 50 rows/,
			);
			assert.equal(w2.dataset.drifted_dataset, null);
			// Gauges: the newest judged window of each replica's monitor.
			const text = (await (r.monitors[0] as DriftMonitor).metricsText()).body;
			assert.match(
				text,
				/mlship_feature_drift\{model="diabetes-cats-ridge",version="1",feature="bmi",method="ks"\} /,
			);
			assert.match(
				text,
				/mlship_feature_drift_detected\{model="diabetes-cats-ridge",version="1",feature="bmi"\} 1/,
			);
			assert.match(
				text,
				/mlship_dataset_drift_share\{model="diabetes-cats-ridge",version="1"\} /,
			);
			// Retention: windows before a time go (both replicas' rows of window 0), the rest stay.
			assert.equal(await store.pruneProfileWindows(T0 + WINDOW * 1000), 2);
			const left = await (r.monitors[1] as DriftMonitor).report(
				"diabetes-cats-ridge",
				T0,
			);
			assert.equal(left.windows.length, 2);
		} finally {
			await r.close();
			await store.close();
		}
	});

test("hysteresis: a statistic hovering at the threshold does not flap; an alert ends below the exit threshold or after 3 clean windows", () => {
	const h = new Hysteresis({ clearWindows: 3 });
	const d = (statistic: number) =>
		columnVerdict({
			method: "wasserstein",
			statistic,
			threshold: 0.1,
			drifted: statistic >= 0.1,
			current_rows: 100,
			reference_rows: 1000,
		});
	const seq = [0.02, 0.11, 0.09, 0.105, 0.095, 0.09, 0.08, 0.07, 0.12, 0.03];
	const changes = seq.map((s) => h.observe("k", d(s))?.change ?? "-");
	// enter at 0.11; 0.09/0.105/0.095 hover (no end); three clean windows in a row (0.095, 0.09, 0.08) end it;
	// 0.12 enters again; 0.03 is below the exit threshold (0.05): ends at once.
	assert.deepEqual(changes, [
		"-",
		"started",
		"-",
		"-",
		"-",
		"-",
		"ended",
		"-",
		"started",
		"ended",
	]);
	// p-values: enter below 0.05, leave at once at ≥ 0.2.
	const p = (statistic: number) =>
		columnVerdict({
			method: "ks",
			statistic,
			threshold: 0.05,
			drifted: statistic <= 0.05,
			current_rows: 100,
			reference_rows: 100,
		});
	assert.deepEqual(
		[0.01, 0.06, 0.04, 0.3].map((s) => h.observe("p", p(s))?.change ?? "-"),
		["started", "-", "-", "ended"],
	);
	// No verdict (not enough data) changes nothing.
	assert.equal(
		h.observe("p", {
			drifted: null,
			clear: false,
			method: "ks",
			statistic: null,
			threshold: 0.05,
		}),
		undefined,
	);
});

test("webhook: one 'started' per drifting subject when drift begins, none while it lasts, 'ended' after clean windows", async () => {
	const store = await openRegistry("sqlite::memory:");
	const clock = { t: T0 };
	const r = await replicas(store, clock, hook.url);
	hook.events.length = 0;
	const shifted = { mean: { bmi: 1.5 } };
	try {
		const [a] = r.models as [Model];
		const mon = r.monitors[0] as DriftMonitor;
		const windows = [
			rows(150, 31),
			rows(150, 32, shifted),
			rows(150, 33, shifted),
			rows(150, 34),
			rows(150, 35),
			rows(150, 36),
		];
		for (let i = 0; i < windows.length; i++) {
			clock.t = T0 + i * WINDOW * 1000;
			await a.predict(windows[i] as never);
			clock.t = T0 + (i + 1) * WINDOW * 1000 + 5000;
			await mon.flush();
			await mon.flush();
		}
		const bmi = hook.events.filter((e) => e.subject === "feature:bmi");
		assert.deepEqual(
			bmi.map((e) => [e.type, e.window_start]),
			[
				["drift.started", new Date(T0 + WINDOW * 1000).toISOString()],
				["drift.ended", new Date(T0 + 3 * WINDOW * 1000).toISOString()],
			],
			JSON.stringify(hook.events),
		);
		assert.equal(bmi[0]?.method, "ks");
		assert.equal(bmi[0]?.model, "diabetes-cats-ridge");
		// One feature of ten drifting is no dataset drift. (Other features may raise a lone false alarm: a p-value test
		// at 0.05 does so in ~5% of clean windows, as in Evidently; hysteresis keeps each to one start and one end.)
		assert.deepEqual(
			hook.events.filter((e) => e.subject === "dataset"),
			[],
		);
		const perSubject = new Map<string, string[]>();
		for (const e of hook.events)
			perSubject.set(e.subject, [...(perSubject.get(e.subject) ?? []), e.type]);
		for (const [subject, types] of perSubject)
			for (let i = 0; i < types.length; i++)
				assert.equal(
					types[i],
					i % 2 === 0 ? "drift.started" : "drift.ended",
					`${subject}: ${types.join(", ")}`,
				);
	} finally {
		await r.close();
		await store.close();
	}
});

for (const kind of ["sqlite", "postgres"] as const)
	test(`${kind}: two replicas with the same webhook post each drift alert once`, async () => {
		const store = await openRegistry(
			kind === "sqlite"
				? "sqlite::memory:"
				: await createDatabase(pg.url, uniqueDatabaseName("alerts")),
		);
		const clock = { t: T0 };
		const planes: DataPlane[] = [];
		const monitors: DriftMonitor[] = [];
		hook.events.length = 0;
		try {
			for (const replica of ["a", "b"]) {
				const m = await monitoredPlane({
					name: "diabetes-cats-ridge",
					source: dir,
					clock,
					windowSeconds: WINDOW,
					monitor: { store, replica, webhook: hook.url },
				});
				planes.push(m.dp);
				monitors.push(m.mon);
			}
			const shifted = { mean: { bmi: 1.5, s5: 1.5 }, male: 0.9, old: 0.7 };
			// Clean, shifted twice, then clean: dataset drift starts in window 1 and ends once clean (at the latest
			// after 3 clean windows).
			const windows = [
				undefined,
				shifted,
				shifted,
				undefined,
				undefined,
				undefined,
				undefined,
			];
			for (let i = 0; i < windows.length; i++) {
				clock.t = T0 + i * WINDOW * 1000 + 1000;
				// Both replicas take traffic in every window; each judges the merged window.
				await planes[0]?.predict(
					"diabetes-cats-ridge",
					undefined,
					rows(90, 40 + i, windows[i]),
				);
				await planes[1]?.predict(
					"diabetes-cats-ridge",
					undefined,
					rows(70, 60 + i, windows[i]),
				);
				clock.t = T0 + (i + 1) * WINDOW * 1000 + 5000;
				for (const m of monitors) await m.flush();
				for (const m of monitors) await m.flush(); // judged one tick after the end
			}
			const events = hook.events.map(
				(e) => `${e.version} ${e.subject} ${e.window_start} ${e.type}`,
			);
			assert.ok(events.length >= 4, events.join("\n")); // bmi, s5, sex, dataset at least
			assert.deepEqual(
				[...new Set(events)].sort(),
				[...events].sort(),
				`each alert once:\n${events.join("\n")}`,
			);
			const dataset = hook.events
				.filter((e) => e.subject === "dataset")
				.map((e) => [e.type, e.window_start]);
			assert.equal(dataset.length, 2, JSON.stringify(dataset));
			assert.deepEqual(dataset[0], [
				"drift.started",
				new Date(T0 + WINDOW * 1000).toISOString(),
			]);
			assert.equal(dataset[1]?.[0], "drift.ended");
			assert.ok(
				(dataset[1]?.[1] ?? "") >=
					new Date(T0 + 3 * WINDOW * 1000).toISOString(),
			);
			// Each event was decided by both replicas and posted by one: the other counted it as claimed elsewhere.
			let deduplicated = 0;
			for (const m of monitors) {
				const text = (await m.metricsText()).body;
				deduplicated += Number(
					/^mlship_drift_alerts_deduplicated_total (\d+)/m.exec(text)?.[1],
				);
			}
			assert.equal(deduplicated, events.length);
		} finally {
			for (const m of monitors) await m.close();
			for (const p of planes) await p.close();
			await store.close();
		}
	});

test("calls of per-entity family members are not profiled (their windows and gauges would grow with the entities)", async () => {
	const clock = { t: T0 };
	const monitor = new DriftMonitor({
		windowSeconds: WINDOW,
		now: () => clock.t,
		timer: false,
	});
	const m = await loadModel(dir, { mode: "inline" });
	m.addHook(monitor.hook);
	try {
		const inputs = m.encodeTable(rows(60, 81));
		await m.predictTensors(inputs, undefined, undefined, { entity: "berlin" });
		assert.deepEqual(
			(await monitor.report("diabetes-cats-ridge", 0)).windows,
			[],
		);
		await m.predictTensors(inputs, undefined, undefined, { requestId: "r1" });
		assert.equal(
			(await monitor.report("diabetes-cats-ridge", 0)).windows[0]?.rows,
			60,
		);
	} finally {
		await monitor.close();
		await m.close();
	}
});

test("feedback for per-entity family members' answers stays out of the monitor's quality windows (as their traffic does)", async () => {
	const clock = { t: T0 };
	const monitor = new DriftMonitor({
		windowSeconds: WINDOW,
		now: () => clock.t,
		timer: false,
	});
	const join = new FeedbackJoin({ now: () => clock.t });
	monitor.attach({ onTruth: (fn) => join.onTruth(fn) });
	const m = await loadModel(dir, { mode: "inline" });
	m.addHook(join.hook);
	try {
		const inputs = m.encodeTable(rows(1, 82));
		await m.predictTensors(inputs, undefined, undefined, {
			entity: "berlin",
			requestId: "e1",
		});
		await m.predictTensors(inputs, undefined, undefined, { requestId: "r1" });
		const model = "diabetes-cats-ridge";
		assert.equal(join.apply(model, [{ id: "e1", truth: 100 }]).joined, 1);
		await monitor.flush(T0 + 1000);
		assert.deepEqual(
			(await monitor.report(model, 0)).stats,
			[],
			"a family member's truth makes no window",
		);
		assert.equal(join.apply(model, [{ id: "r1", truth: 100 }]).joined, 1);
		await monitor.flush(T0 + 2000);
		assert.equal((await monitor.report(model, 0)).stats[0]?.quality?.rows, 1);
	} finally {
		await monitor.close();
		await m.close();
	}
});

test("a registry that fails writes is counted and reported, never thrown at the prediction; later ticks go on", async () => {
	const store = await openRegistry("sqlite::memory:");
	await store.close(); // every call now fails with MLSHIP_CLOSED
	const errors: string[] = [];
	const clock = { t: T0 };
	const monitor = new DriftMonitor({
		windowSeconds: WINDOW,
		store,
		now: () => clock.t,
		timer: false,
		onError: (e) => errors.push(e.message),
	});
	const m = await loadModel(dir, { mode: "inline" });
	m.addHook(monitor.hook);
	try {
		const out = await m.predict(rows(60, 82));
		assert.equal(out.length, 60);
		clock.t = T0 + WINDOW * 1000 + 1000;
		await monitor.flush();
		clock.t += 30_000;
		await monitor.flush();
		assert.ok(
			errors.some((e) =>
				/cannot write the window of diabetes-cats-ridge@1/.test(e),
			),
			errors.join("\n"),
		);
		assert.match(
			(await monitor.metricsText()).body,
			/mlship_monitor_write_failures_total [1-9]/,
		);
	} finally {
		await monitor.close();
		await m.close();
	}
});
