// A stream scenario on a real broker (Redis Streams): requests shift halfway through; the drift monitor on the stream
// processor flags dataset drift within the next two windows, with no alarm before. The monitor's clock places each
// batch of messages in its window (windows of 10 s, moved on once the batch's results are back), so the verdicts do
// not depend on how fast a loaded machine scores.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DriftMonitor } from "../../src/dataplane/drift-monitor.ts";
import type { AlertEvent } from "../../src/monitor/alerts.ts";
import { runStream } from "../../src/stream/run.ts";
import { startRedis } from "../harness/redis.ts";
import { Collector, produce } from "../helpers/stream-process.ts";
import { startWebhookReceiver } from "../helpers/webhook.ts";
import { bundleWithReference, rows } from "./synth.ts";

const WINDOW = 10;
const PER_WINDOW = 120;
const T0 = Date.UTC(2026, 0, 2, 0, 0, 0);

test("redis stream: inputs shift halfway; dataset drift is flagged within two windows, never before", async () => {
	const redis = await startRedis();
	const receiver = await startWebhookReceiver<AlertEvent>();
	const events = receiver.events;
	const { dir } = await bundleWithReference(rows(600, 51));
	const clock = { t: T0 };
	const monitor = new DriftMonitor({
		windowSeconds: WINDOW,
		now: () => clock.t,
		timer: false,
		webhook: receiver.url,
	});
	const from = `${redis.url}/drift-requests`;
	const to = `${redis.url}/drift-results`;
	const s = await runStream({ model: dir, from, to, hooks: [monitor.hook] });
	const results = new Collector(to, "check", (m) => m.id);
	const shiftAt = 4;
	const judged: { window: number; dataset: boolean | null }[] = [];
	try {
		for (let w = 0; w < 7; w++) {
			clock.t = T0 + w * WINDOW * 1000;
			const data = rows(
				PER_WINDOW,
				100 + w,
				w >= shiftAt
					? {
							mean: { bmi: 0.8, s5: 0.8, s1: 0.8, s3: -0.8, s4: 0.8 },
							male: 0.75,
							old: 0.5,
						}
					: {},
			);
			await produce(
				from,
				data.map((r) => ({
					key: null,
					value: Buffer.from(JSON.stringify(r)),
					headers: [],
				})),
			);
			await results.until(
				() => results.all.length >= (w + 1) * PER_WINDOW,
				`results of window ${w}`,
			);
			// The window ends; one tick later every replica has written it and it is judged.
			clock.t = T0 + (w + 1) * WINDOW * 1000 + 100;
			await monitor.flush();
			clock.t += 10_000;
			await monitor.flush();
			const r = await monitor.report("diabetes-cats-ridge", T0);
			const mine = r.windows.find(
				(x) => x.start === new Date(T0 + w * WINDOW * 1000).toISOString(),
			);
			assert.ok(mine, `window ${w} reported`);
			assert.equal(mine.rows, PER_WINDOW);
			judged.push({ window: w, dataset: mine.dataset.drifted_dataset });
		}
	} finally {
		s.stop();
		await s.done;
		await results.close();
		await monitor.close();
		await receiver.close();
		await redis.stop();
	}
	const before = judged.filter((j) => j.window < shiftAt);
	assert.deepEqual(
		before.map((j) => j.dataset),
		[false, false, false, false],
		JSON.stringify(judged),
	);
	const firstDrift = judged.find((j) => j.dataset === true);
	assert.ok(
		firstDrift && firstDrift.window - shiftAt < 2,
		`flagged within two windows of the shift: ${JSON.stringify(judged)}`,
	);
	const datasetAlerts = events.filter((e) => e.subject === "dataset");
	assert.equal(datasetAlerts[0]?.type, "drift.started", JSON.stringify(events));
	assert.equal(
		Date.parse(datasetAlerts[0]?.window_start ?? "") >=
			T0 + shiftAt * WINDOW * 1000,
		true,
		"no dataset alarm before the shift",
	);
	// It stays on while the shift lasts: no flapping.
	assert.equal(datasetAlerts.length, 1, JSON.stringify(datasetAlerts));
});
