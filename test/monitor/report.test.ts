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
	};
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
		assert.equal(await count("circle.point"), 14); // every window with a verdict (v2's last has 20 rows)
		assert.ok((await count("rect.bar.ref")) > 50);
		assert.ok((await count("rect.bar.cur")) > 50);
		assert.equal(await count("rect.bar.traffic"), 15);
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
