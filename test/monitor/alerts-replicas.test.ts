// Drift alerts once across replicas: two data planes (each with its own drift monitor and the same webhook) share one
// registry (SQLite and PostgreSQL); every replica judges the merged windows, and each alert (model, version, subject,
// window, change) reaches the webhook once, claimed in the registry.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { DriftMonitor } from "../../src/dataplane/drift-monitor.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import type { AlertEvent } from "../../src/monitor/alerts.ts";
import { openRegistry } from "../../src/registry/open.ts";
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

const WINDOW = 60;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MODEL = "diabetes-cats-ridge";

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
					name: MODEL,
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
					MODEL,
					undefined,
					rows(90, 40 + i, windows[i]),
				);
				await planes[1]?.predict(
					MODEL,
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
