// The model page's drift and quality panels in Chromium against a real `mlship serve --ui --monitor-window 1s` whose
// bundle has a reference profile: shifted traffic closes real windows (sparklines drawn, the worst feature first),
// and real feedback (truths by request id) gives the per-version quality table. Screenshots in test-artifacts/.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { launchBrowser, openPage, screenshot } from "../harness/browser.ts";
import { startServing } from "../helpers/server.ts";
import { bundleWithReference, rows } from "../monitor/synth.ts";
import { axe } from "./axe.ts";

const WAIT = { timeout: 90_000 };

describe("model page drift and quality panels in Chromium", () => {
	let root: string;
	let store: ModelStore;
	let server: RunningServer;
	let browser: Browser;
	let url: string;

	before(async () => {
		root = await mkdtemp(join(tmpdir(), "mlship-ui-drift-"));
		const { dir } = await bundleWithReference(rows(600, 41));
		const uri = `sqlite:${join(root, "registry.db")}`;
		store = await openRegistry(uri);
		await store.register(await readBundle(dir), {
			name: "diab",
			aliases: ["production"],
		});
		server = await startServing({ diab: "diab@production" }, uri, {
			ui: true,
			grpc_port: -1,
			monitor_window: "1s",
			monitor_min_rows: 30,
		});
		url = `http://127.0.0.1:${server.httpPort}`;
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await server?.close();
		await store?.close();
		await rm(root, { recursive: true, force: true });
	});

	it("drift: sparklines over the closed windows, the worst feature first; quality: MAE/RMSE per version from feedback", async () => {
		// Shifted traffic (bmi far, s5 less, the rest as in the reference) in several 1 s windows, with truths fed back.
		const ids: string[] = [];
		let closed = 0;
		for (let i = 0; i < 40 && closed < 3; i++) {
			const batch = rows(60, 100 + i, { mean: { bmi: 3, s5: 1.5 } });
			const res = await fetch(`${url}/v2/models/diab/predict`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ instances: batch }),
			});
			assert.equal(res.status, 200, await res.clone().text());
			ids.push(((await res.json()) as { id: string }).id);
			await new Promise((r) => setTimeout(r, 1100));
			const rep = (await (
				await fetch(`${url}/v2/models/diab/monitor?since=1h`)
			).json()) as { windows: { open: boolean; features?: unknown }[] };
			closed = rep.windows.filter((w) => !w.open && w.features).length;
		}
		assert.ok(closed >= 3, `closed windows: ${closed}`);
		// Feedback: each request's truths, one per row.
		const fb = await fetch(`${url}/v2/models/diab/feedback`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(
				ids.map((id, k) => ({
					id,
					truth: Array.from({ length: 60 }, (_, r) => 100 + ((k + r) % 80)),
				})),
			),
		});
		assert.equal(fb.status, 200, await fb.clone().text());

		const { page, errors } = await openPage(browser, `${url}/ui/#/models/diab`);
		const table = page.locator("#drift table");
		await table.waitFor(WAIT);
		const drawn = await page.evaluate<
			{ feature: string; severity: number; points: number; above: number }[]
		>(`[...document.querySelectorAll("#drift tbody tr")].map((tr) => ({
			feature: tr.querySelector("th")?.textContent ?? "",
			severity: Number(tr.dataset.severity),
			points: (tr.querySelector("polyline")?.getAttribute("points") ?? "").trim().split(/\\s+/).filter(Boolean).length,
			// Points drawn above the dashed threshold line (SVG y grows downwards).
			above: (tr.querySelector("polyline")?.getAttribute("points") ?? "").trim().split(/\\s+/).filter((p) => Number(p.split(",")[1]) < Number(tr.querySelector("line.threshold")?.getAttribute("y1"))).length,
		}))`);
		assert.ok(drawn.length >= 8, JSON.stringify(drawn));
		// Worst first: severities never increase down the table, and the far-shifted bmi leads.
		for (let k = 1; k < drawn.length; k++)
			assert.ok(
				(drawn[k - 1]?.severity ?? 0) >= (drawn[k]?.severity ?? 0),
				JSON.stringify(drawn),
			);
		assert.equal(drawn[0]?.feature, "bmi", JSON.stringify(drawn));
		// Every feature's sparkline drew one point per closed window.
		for (const d of drawn) assert.ok(d.points >= 3, JSON.stringify(d));
		// bmi (3 standard deviations off) drifted in every window: its whole line is above the threshold line.
		assert.equal(drawn[0]?.above, drawn[0]?.points, JSON.stringify(drawn[0]));
		assert.ok(
			drawn.some((d) => d.above < d.points),
			"some unshifted feature stays below the threshold somewhere",
		);

		// Quality from feedback: version 1, regression figures, window and cumulative.
		const quality = page.locator("#quality table");
		await quality.waitFor(WAIT);
		const text = (await quality.textContent()) ?? "";
		assert.match(text, /MAE/);
		assert.match(text, /RMSE/);
		const cells = await page.evaluate<string[][]>(
			`[...document.querySelectorAll("#quality tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent ?? ""))`,
		);
		assert.equal(cells.length, 1, JSON.stringify(cells));
		assert.equal(cells[0]?.[0], "v1");
		assert.match(cells[0]?.[1] ?? "", new RegExp(`^${ids.length * 60}\\b`));
		for (const c of cells[0]?.slice(2) ?? [])
			assert.match(c, /^\d+(\.\d+)?/, JSON.stringify(cells));
		await screenshot(page, "ui-model-drift-quality");
		assert.deepEqual(await axe(page), []);
		assert.deepEqual(errors, []);
		await page.close();
	});
});
