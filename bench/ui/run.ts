// bench/ui: first load of a dashboard model page in headless Chromium, with 1,000 versions (100 of them for 100
// entities) of one model in a SQLite registry, served by `mlship serve --ui` (in-process) with live traffic off.
// Measures navigation start → the versions table and the six charts on screen, cold (fresh browser context,
// empty cache), N times; writes the median to bench/RESULTS.md (## ui). Target ≤ 1 s.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { launchBrowser } from "../../test/harness/browser.ts";
import { bundleDir } from "../../test/helpers/fixtures.ts";
import { startServing } from "../../test/helpers/server.ts";
import { machine, median, positiveInt, writeResults } from "../common.ts";

const args = process.argv.slice(2);
const flag = (name: string) => {
	const i = args.indexOf(name);
	return i < 0 ? undefined : args[i + 1];
};
const runs = positiveInt("--runs", flag("--runs") ?? "5");
const VERSIONS = 1000;
const ENTITIES = 100;

const dir = await mkdtemp(join(tmpdir(), "mlship-bench-ui-"));
const uri = `sqlite:${join(dir, "registry.db")}`;
const store = await openRegistry(uri);
const bundle = await readBundle(bundleDir("iris-logreg"));
await store.registerMany(
	Array.from({ length: VERSIONS }, (_, i) => ({
		bundle,
		opts: {
			name: "bench",
			...(i >= VERSIONS - ENTITIES && { entity: `e${i}` }),
			...(i === 0 && { aliases: ["production"] }),
		},
	})),
);
await store.close();
const server = await startServing({ bench: "bench@production" }, uri, {
	ui: true,
	grpc_port: -1,
});
const url = `http://127.0.0.1:${server.httpPort}/ui/#/models/bench`;
const browser = await launchBrowser();
const times: number[] = [];
let apiBytes = 0;
try {
	for (let r = 0; r < runs; r++) {
		const ctx = await browser.newContext({
			viewport: { width: 1280, height: 900 },
		});
		const page = await ctx.newPage();
		page.on("response", async (res) => {
			if (res.url().endsWith("/ui/api/models/bench"))
				apiBytes = (await res.body()).length;
		});
		await page.goto(url, { waitUntil: "commit" });
		await page
			.getByRole("heading", { name: `Versions (${VERSIONS})` })
			.waitFor({ timeout: 60_000 });
		await page
			.locator("#charts .chart canvas")
			.nth(5)
			.waitFor({ timeout: 60_000 });
		// performance.now() is measured from the navigation's start in the page's own clock.
		times.push(await page.evaluate<number>("performance.now()"));
		if (r === runs - 1)
			console.log(
				await page.evaluate<string>(
					`performance.getEntriesByType("resource").map((e) => e.name.replace(/^.*\\/ui\\//, "") + " " + Math.round(e.startTime) + "→" + Math.round(e.responseEnd)).join("; ")`,
				),
			);
		await ctx.close();
	}
} finally {
	await browser.close();
	await server.close();
	await rm(dir, { recursive: true, force: true });
}
const ms = median(times);
const line = `median ${ms.toFixed(0)} ms over ${runs} cold loads (each: ${times.map((t) => t.toFixed(0)).join(", ")} ms); model JSON ${(apiBytes / 1024).toFixed(0)} KiB`;
console.log(line);
if (!args.includes("--no-results"))
	await writeResults(
		"ui",
		`## ui

First load of a dashboard model page (\`node bench/ui/run.ts\`): one model with ${VERSIONS.toLocaleString("en-US")} versions, ${ENTITIES} of them
for ${ENTITIES} entities, in a SQLite registry; \`serve --ui\` in-process; headless Chromium, a fresh context (empty
cache) per load; time from navigation start to the versions table and the six live charts on screen. The newest
50 versions carry their manifests, older ones are listed without them. Target ≤ 1,000 ms.

- ${line}
- ${machine()}
`,
	);
