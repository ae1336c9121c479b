// Honest engines (issues 20 and 11.2): package.json "engines" and the CLI's own check name the same Node versions;
// an older Node gets one clear line from the CLI; `npx mlship` in a clone prints no npm warnings.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { enginesRange, supportedNode } from "../../bin/node-version.js";
import { REPO } from "../helpers/fixtures.ts";
import {
	cleanEnv,
	npmCli,
	run,
	supportedNodes,
	unsupportedNode,
} from "./helpers.ts";

const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
	engines: { node: string };
};

test('package.json "engines" is the range the CLI checks', () => {
	assert.equal(pkg.engines.node, enginesRange());
});

test("the CLI's check: every tested Node passes, older ones and the odd majors in between do not", () => {
	for (const n of supportedNodes())
		assert.equal(supportedNode(n.version), true, n.version);
	for (const v of ["20.20.2", "22.21.1", "23.11.0", "24.5.0", "25.2.1"])
		assert.match(
			String(supportedNode(v)),
			new RegExp(`^Node ${v} is not supported: mlship needs Node 22\\.22\\+`),
			v,
		);
	// A newer major than any listed is untested, not known to fail: let through.
	assert.equal(supportedNode("99.0.0"), true);
});

test("under an unsupported Node the CLI exits 1 with one clear line", async () => {
	const old = unsupportedNode();
	const r = await run(old.path, [join(REPO, "bin", "mlship.js"), "--help"], {
		cwd: REPO,
		env: cleanEnv(old),
	});
	assert.equal(r.code, 1, `Node ${old.version}: exit code`);
	assert.equal(r.stdout, "");
	assert.equal(
		r.stderr,
		`mlship: Node ${old.version} is not supported: mlship needs Node 22.22+, 24.6+, 26.0+; install one of them and run mlship again\n`,
	);
});

test("npx mlship in a clone prints no npm warnings after its first call, and npm run mlship none at all, with npm itself on an older Node", async () => {
	// A machine's own Node (here 20) runs npm; npx puts the clone's pinned Node first for mlship itself.
	const old = unsupportedNode();
	const npm = (args: string[]) =>
		run(old.path, [npmCli(), ...args], {
			cwd: REPO,
			// npm's weekly "new version available" notice is not what this checks.
			env: cleanEnv(old, { npm_config_update_notifier: "false" }),
		});
	// `npm run` never checks engines: silent from the first call.
	const viaRun = await npm(["run", "--silent", "mlship", "--", "--version"]);
	assert.equal(viaRun.code, 0, viaRun.stderr);
	assert.equal(viaRun.stdout.trim(), "0.1.0");
	assert.equal(viaRun.stderr, "", "npm run warned");
	// The first `npx mlship` of a clone installs the clone into npm's npx cache, and npm checks its engines there
	// against the Node that runs npm: it may warn EBADENGINE that once (README says so). Every later call is silent.
	const first = await npm(["exec", "--offline", "--", "mlship", "--version"]);
	assert.equal(first.code, 0, first.stderr);
	assert.equal(first.stdout.trim(), "0.1.0");
	assert.doesNotMatch(first.stderr, /Unknown project config/);
	const r = await npm(["exec", "--offline", "--", "mlship", "--version"]);
	assert.equal(r.code, 0, r.stderr);
	assert.equal(r.stdout.trim(), "0.1.0");
	assert.equal(r.stderr, "", "npm warned");
});

test("the clone's .npmrc sets no key npm does not know (onnxruntime's is skipped through allowScripts)", () => {
	const npmrc = join(REPO, ".npmrc");
	if (existsSync(npmrc))
		assert.doesNotMatch(readFileSync(npmrc, "utf8"), /onnxruntime/);
	const allow = (
		JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
			allowScripts?: Record<string, boolean>;
		}
	).allowScripts;
	assert.equal(allow?.["onnxruntime-node"], false);
});
