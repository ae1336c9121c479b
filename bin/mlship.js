#!/usr/bin/env node
// Entry point: the built CLI when dist/ exists (installed package), else the TypeScript sources (a clone).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
await import(
	existsSync(built)
		? built.href
		: new URL("../src/cli/main.ts", import.meta.url).href
);
