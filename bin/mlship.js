#!/usr/bin/env node
// Entry point of the `mlship` command. Written for any Node, so an unsupported one gets one clear line, not a stack.
import { existsSync } from "node:fs";
import { supportedNode } from "./node-version.js";

const check = supportedNode(process.versions.node);
if (check !== true) {
	process.stderr.write(`mlship: ${check}\n`);
	process.exit(1);
}
// Node 22 calls node:sqlite (the registry) experimental and says so on every command; the rest still print.
const printWarning = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (w) => {
	if (w.name === "ExperimentalWarning" && /\bSQLite\b/.test(w.message)) return;
	for (const l of printWarning) l(w);
});
// A clone runs its TypeScript sources (never a stale build); the installed package has only dist/.
const sources = new URL("../src/cli/main.ts", import.meta.url);
await import(
	existsSync(sources)
		? sources.href
		: new URL("../dist/cli/main.js", import.meta.url).href
);
