// Test harness: headless Chromium (Debian's `chromium` package) driven by playwright-core, for tests that look at
// rendered pages (the monitor report, the dashboard). No browser download: the system binary is used.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { findBinary } from "./service.ts";

/** Where tests save screenshots (git-ignored): `test-artifacts/` at the repository root. */
export const ARTIFACTS = fileURLToPath(
	new URL("../../test-artifacts/", import.meta.url),
);

/** The Chromium binary: env MLSHIP_CHROMIUM, else `chromium` on PATH (Debian: /usr/bin/chromium). */
export function chromiumPath(): string {
	return (
		process.env.MLSHIP_CHROMIUM ??
		findBinary(
			"chromium",
			"run scripts/setup (installs the Debian 'chromium' package) or set MLSHIP_CHROMIUM",
			["/usr/bin"],
		)
	);
}

/**
 * Launches headless Chromium (`--no-sandbox`: tests run as root in CI containers).
 * @example const browser = await launchBrowser(); try { ... } finally { await browser.close(); }
 */
export function launchBrowser(): Promise<Browser> {
	return chromium.launch({
		executablePath: chromiumPath(),
		headless: true,
		args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
		timeout: 120_000,
	});
}

/** A new page that records console errors and uncaught page errors in `errors`. */
export async function openPage(
	browser: Browser,
	url: string,
	viewport = { width: 1100, height: 900 },
): Promise<{ page: Page; errors: string[] }> {
	const page = await browser.newPage({ viewport });
	const errors: string[] = [];
	page.on("console", (m) => {
		if (m.type() === "error") errors.push(m.text());
	});
	page.on("pageerror", (e) => errors.push(e.message));
	await page.goto(url, { waitUntil: "load", timeout: 120_000 });
	return { page, errors };
}

/** Saves a full-page screenshot as `test-artifacts/NAME.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
	mkdirSync(ARTIFACTS, { recursive: true });
	const path = `${ARTIFACTS}${name}.png`;
	await page.screenshot({ path, fullPage: true });
	// Every page a test looks at is also checked for JavaScript values written as text (a null appended to an
	// element shows as "null"): one such slipped past the tests onto the experiments page.
	// (a string, run in the page: this file is compiled without the DOM's types)
	const stray = (await page.evaluate(`(() => {
		const out = [];
		const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			const t = (n.textContent ?? "").trim();
			if (/^(null|undefined|NaN|\\[object Object\\])$/.test(t))
				out.push(t + " in <" + n.parentElement?.tagName.toLowerCase() + ">");
		}
		return out;
	})()`)) as string[];
	assert.deepEqual(stray, [], `${name}: JavaScript values shown as text`);
	return path;
}
