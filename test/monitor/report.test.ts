// mlship monitor report: the HTML file rendered in headless Chromium (charts drew, no console errors, a screenshot in
// test-artifacts/), and --json; from windows a drift monitor wrote to a registry for two versions.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { readBundle } from "../../src/bundle/bundle.ts";
import { DriftMonitor } from "../../src/dataplane/drift-monitor.ts";
import { QualityStats } from "../../src/feedback/quality.ts";
import { loadModel } from "../../src/model.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { launchBrowser, openPage, screenshot } from "../harness/browser.ts";
import { CLI } from "../helpers/fixtures.ts";
import { bundleWithReference, rows } from "./synth.ts";

const WINDOW = 300;

test("monitor report: one self-contained HTML file whose charts draw in Chromium; --json has the same windows", async () => {
	const { dir } = await bundleWithReference(rows(800, 61));
	const db = join(dir, "..", "registry.db");
	const uri = `sqlite:${db}`;
	const store = await openRegistry(uri);
	const w = WINDOW * 1000;
	const t0 = Math.floor((Date.now() - 3 * 3600_000) / w) * w;
	const clock = { t: t0 };
	const monitor = new DriftMonitor({
		windowSeconds: WINDOW,
		store,
		now: () => clock.t,
		timer: false,
	});
	try {
		const b = await readBundle(dir);
		await store.register(b); // v1
		await store.register(b); // v2: the same model, to show traffic by version
		const v1 = await loadModel("diabetes-cats-ridge@1", {
			registry: store,
			mode: "inline",
		});
		const v2 = await loadModel("diabetes-cats-ridge@2", {
			registry: store,
			mode: "inline",
		});
		v1.addHook(monitor.hook);
		v2.addHook(monitor.hook);
		const shift = {
			mean: { bmi: 1, s5: 1, s1: 0.8, s3: -1 },
			male: 0.8,
			old: 0.6,
		};
		for (let i = 0; i < 10; i++) {
			clock.t = t0 + i * w;
			await v1.predict(rows(i < 6 ? 200 : 120, 200 + i, i >= 6 ? shift : {}));
			if (i >= 5)
				await v2.predict(rows(i === 9 ? 20 : 90, 300 + i, i >= 6 ? shift : {}));
			clock.t = t0 + (i + 1) * w + 1000;
			await monitor.flush();
			clock.t += w / 2;
			await monitor.flush();
		}
		await v1.close();
		await v2.close();
		// Traffic, latency and feedback quality of the same windows, as two serve replicas write them: v2 slower,
		// with errors in one window; its errors (MAE) grow once the inputs shift.
		for (let i = 0; i < 10; i++)
			for (const version of i >= 5 ? [1, 2] : [1])
				for (const replica of ["r1", "r2"]) {
					const buckets = new Array(17).fill(0);
					buckets[version === 1 ? 4 : 6] = 40 + i; // (1, 2.5] ms or (5, 10] ms
					buckets[version === 1 ? 6 : 8] = 2; // the tail: (5, 10] ms or (25, 50] ms
					const q = new QualityStats("regression");
					for (let k = 0; k < 20; k++)
						q.addValue(
							150 + k,
							150 +
								k +
								((i >= 6 ? 30 : 10) + (version === 2 ? 5 : 0)) *
									(k % 2 ? 1 : -1),
						);
					await store.saveStatsWindow({
						model: "diabetes-cats-ridge",
						version,
						start: t0 + i * w,
						seconds: WINDOW,
						replica,
						requests: 42 + i + (version === 2 && i === 8 ? 5 : 0),
						errors: version === 2 && i === 8 ? 5 : 0,
						buckets,
						quality: JSON.stringify(q.toJSON()),
					});
				}
	} finally {
		await monitor.close();
		await store.close();
	}
	const out = join(dir, "..", "report.html");
	const run = (...args: string[]) =>
		spawnSync(
			process.execPath,
			[
				CLI,
				"monitor",
				"report",
				"--model",
				"diabetes-cats-ridge",
				"--since",
				"24h",
				"--registry",
				uri,
				...args,
			],
			{ encoding: "utf8" },
		);
	const html = run("-o", out);
	assert.equal(html.status, 0, html.stderr);
	assert.match(html.stderr, /wrote .*report\.html: 15 windows/);
	const text = await readFile(out, "utf8");
	assert.doesNotMatch(
		text,
		/<script|https?:\/\/(?!mlship)/i,
		"self-contained: no script, no network",
	);
	const json = run("--json");
	assert.equal(json.status, 0, json.stderr);
	const data = JSON.parse(json.stdout) as {
		windows: {
			version: number;
			dataset: { drifted_dataset: boolean | null };
		}[];
		versions: unknown[];
		stats: {
			version: number;
			requests: number;
			errors: number;
			replicas: number;
			p50_ms: number;
			p99_ms: number;
			quality: { rows: number; mae: number; rmse: number } | null;
		}[];
	};
	// Traffic, latency and quality per window: both replicas merged, quantiles from the merged histograms.
	assert.equal(data.stats.length, 15);
	const s0 = data.stats[0];
	assert.ok(s0);
	assert.deepEqual(
		[s0.version, s0.requests, s0.errors, s0.replicas, s0.quality?.rows],
		[1, 84, 0, 2, 40],
	);
	assert.ok(s0.p50_ms > 1 && s0.p50_ms <= 2.5, String(s0.p50_ms));
	assert.ok(s0.p99_ms > 5 && s0.p99_ms <= 10, String(s0.p99_ms));
	assert.equal(s0.quality?.mae, 10);
	const v2last = data.stats.filter((x) => x.version === 2);
	assert.equal(v2last.length, 5);
	assert.equal(v2last[3]?.errors, 10);
	assert.equal(v2last[4]?.quality?.mae, 35);
	assert.equal(data.windows.length, 15);
	assert.deepEqual(data.versions, [
		{ version: 1, reference_rows: 800 },
		{ version: 2, reference_rows: 800 },
	]);
	const v1 = data.windows
		.filter((x) => x.version === 1)
		.map((x) => x.dataset.drifted_dataset);
	assert.deepEqual(v1.slice(0, 6), [false, false, false, false, false, false]);
	assert.deepEqual(v1.slice(6), [true, true, true, true]);

	const browser = await launchBrowser();
	try {
		const { page, errors } = await openPage(browser, pathToFileURL(out).href);
		const count = (sel: string) => page.locator(sel).count();
		assert.equal(await count("svg.chart.share"), 1);
		assert.equal(await count("svg.chart.heatmap"), 1);
		assert.equal(await count("svg.chart.traffic"), 1);
		// Reference vs current histograms: 10 features + 1 output, per version.
		assert.equal(await count("svg.chart.hist"), 22);
		assert.equal(await count("rect.cell"), 10 * 15);
		assert.equal(await count("svg.chart.share circle.point"), 14); // every window with a verdict (v2's last has 20 rows)
		assert.ok((await count("rect.bar.ref")) > 50);
		assert.ok((await count("rect.bar.cur")) > 50);
		assert.equal(await count("rect.bar.traffic"), 15);
		assert.equal(await count("rect.bar.errors"), 1);
		// Latency: p50 and p99 lines per version (v1 10 windows, v2 5).
		assert.equal(await count("svg.chart.latency"), 1);
		const lines = async (sel: string) => {
			const l = page.locator(sel);
			const out: number[] = [];
			for (let i = 0; i < (await l.count()); i++)
				out.push(
					((await l.nth(i).getAttribute("d")) ?? "")
						.split(/[ML]/)
						.filter(Boolean).length,
				);
			return out;
		};
		assert.deepEqual(await lines("svg.chart.latency path.line.p50"), [10, 5]);
		assert.deepEqual(await lines("svg.chart.latency path.line.p99"), [10, 5]);
		// Quality: the figures a regression has (MAE, RMSE), a line per version.
		assert.equal(await count("svg.chart.quality"), 2);
		assert.deepEqual(await lines("svg.chart.q-mae path.line"), [10, 5]);
		assert.deepEqual(await lines("svg.chart.q-rmse path.line"), [10, 5]);
		for (const sel of ["svg.chart.latency", "svg.chart.q-mae"]) {
			const b = await page.locator(sel).boundingBox();
			assert.ok(
				b && b.width > 400 && b.height > 100,
				`${sel}: ${JSON.stringify(b)}`,
			);
		}
		// The charts have size on the page (they drew), and the line of the share chart has points.
		const box = await page.locator("svg.chart.heatmap").boundingBox();
		assert.ok(box && box.width > 200 && box.height > 100, JSON.stringify(box));
		// One line per version in the share chart: v1 has 10 points, v2 4 (its last window has too few rows).
		const paths = page.locator("svg.chart.share path.line");
		assert.equal(await paths.count(), 2);
		const points = async (i: number) =>
			((await paths.nth(i).getAttribute("d")) ?? "")
				.split(/[ML]/)
				.filter(Boolean).length;
		assert.deepEqual([await points(0), await points(1)], [10, 4]);
		const shot = await screenshot(page, "monitor-report");
		assert.ok((await readFile(shot)).length > 10_000);
		assert.deepEqual(errors, []);
	} finally {
		await browser.close();
	}
});
