// `mlship rollout` as a real process on a SQLite registry: start, a second start refused with nothing changed,
// status, pause, resume, abort, promote, bad flags, --json and --help.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { bundleDir } from "../helpers/fixtures.ts";

const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");
let dir: string;
let registry: string;

function rollout(
	...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		execFile(
			process.execPath,
			[
				MAIN,
				"rollout",
				...args,
				...(args.includes("--help") ? [] : ["--registry", registry]),
			],
			{ cwd: dir },
			(err, stdout, stderr) =>
				resolve({
					code: err ? Number((err as { code?: number }).code ?? 1) : 0,
					stdout,
					stderr,
				}),
		);
	});
}

async function withStore<T>(fn: (s: ModelStore) => Promise<T>): Promise<T> {
	const s = await openRegistry(registry);
	try {
		return await fn(s);
	} finally {
		await s.close();
	}
}

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-rollout-cli-"));
	registry = `sqlite:${join(dir, "r.db")}`;
	const b = await readBundle(bundleDir("iris-logreg"));
	await withStore(async (s) => {
		await s.register(b, { name: "churn", aliases: ["production"] });
		await s.register(b, { name: "churn" });
		await s.register(b, { name: "churn" });
	});
});
after(() => rm(dir, { recursive: true, force: true }));

it("start, refuse a second, status, pause, resume, abort, then promote; each as JSON", async () => {
	const started = await rollout(
		"start",
		"churn@production",
		"--to",
		"2",
		"--steps",
		"10,50,100",
		"--interval",
		"30s",
		"--max-error-rate",
		"0.5%",
		"--max-p99-ms",
		"50",
		"--json",
	);
	assert.equal(started.code, 0, started.stderr);
	const r = JSON.parse(started.stdout);
	assert.equal(r.from, 1);
	assert.equal(r.to, 2);
	assert.equal(r.state, "running");
	assert.equal(r.intervalMs, 30_000);
	assert.equal(r.maxErrorRate, 0.005);
	assert.equal(r.maxP99Ms, 50);
	assert.equal(r.minRequests, 100, "default");
	assert.equal(r.failures, 3, "default");
	const split = async () =>
		(await withStore((s) => s.route("churn", "production")))?.policy.split;
	assert.deepEqual(await split(), [
		{ version: 1, weight: 90 },
		{ version: 2, weight: 10 },
	]);

	const again = await rollout("start", "churn@production", "--to", "3");
	assert.equal(again.code, 4);
	assert.match(
		again.stderr,
		/already has a running rollout \(to version 2, step 10%\): abort or promote it first/,
	);
	assert.deepEqual(
		await split(),
		[
			{ version: 1, weight: 90 },
			{ version: 2, weight: 10 },
		],
		"nothing changed",
	);

	const status = JSON.parse(
		(await rollout("status", "churn@production", "--json")).stdout,
	);
	assert.deepEqual(
		status.events.map((e: { type: string }) => e.type),
		["started"],
	);
	assert.match(
		(await rollout("status")).stdout,
		/churn@production\s+1 → 2\s+running\s+10% \(1\/3\)/,
	);

	assert.equal(
		JSON.parse((await rollout("pause", "churn@production", "--json")).stdout)
			.state,
		"paused",
	);
	const pausedTwice = await rollout("pause", "churn@production");
	assert.equal(pausedTwice.code, 3);
	assert.match(
		pausedTwice.stderr,
		/rollout is paused, not running: nothing changed/,
	);
	assert.equal(
		JSON.parse((await rollout("resume", "churn@production", "--json")).stdout)
			.state,
		"running",
	);
	assert.equal(
		JSON.parse((await rollout("abort", "churn@production", "--json")).stdout)
			.state,
		"aborted",
	);
	assert.equal(
		await split(),
		undefined,
		"aborted: all traffic back on version 1",
	);
	assert.equal((await withStore((s) => s.get("churn@production"))).version, 1);

	assert.equal(
		(await rollout("start", "churn@production", "--to", "3")).code,
		0,
		"a new rollout after the aborted one",
	);
	const promoted = await rollout("promote", "churn@production");
	assert.match(promoted.stdout, /promoted/);
	assert.equal((await withStore((s) => s.get("churn@production"))).version, 3);
	assert.equal(await split(), undefined);
	const types = JSON.parse(
		(await rollout("status", "churn@production", "--json")).stdout,
	).events.map((e: { type: string }) => e.type);
	assert.deepEqual(types, [
		"started",
		"paused",
		"resumed",
		"aborted",
		"started",
		"promoted",
	]);
});

it("bad flags and references are clear errors (exit 2 or 3), nothing started", async () => {
	const cases: [string[], number, RegExp][] = [
		[["start", "churn", "--to", "2"], 2, /give NAME@ALIAS/],
		[
			["start", "churn@production", "--to", "2", "--steps", "10,50"],
			2,
			/last step must be 100/,
		],
		[
			["start", "churn@production", "--to", "2", "--steps", "50,10,100"],
			2,
			/steps must increase/,
		],
		[
			["start", "churn@production", "--to", "2", "--interval", "soon"],
			2,
			/--interval must be a duration/,
		],
		[
			["start", "churn@production", "--to", "2", "--max-error-rate", "lots"],
			2,
			/--max-error-rate expects a rate/,
		],
		[
			["start", "churn@production", "--to", "3"],
			2,
			/already points at version 3: nothing to roll out/,
		],
		[["start", "churn@staging", "--to", "2"], 3, /has no alias 'staging'/],
		[
			["start", "churn@production", "--to", "9"],
			3,
			/has no version 9 to roll out/,
		],
		[
			["abort", "churn@production"],
			3,
			/rollout is promoted, not running or paused/,
		],
		[["status", "nope@production"], 3, /has no rollout/],
	];
	for (const [args, code, msg] of cases) {
		const r = await rollout(...args);
		assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
		assert.match(r.stderr, msg, args.join(" "));
	}
	assert.equal(
		(await withStore((s) => s.rollout("churn", "production")))?.state,
		"promoted",
		"nothing started",
	);
});

it("--help has examples", async () => {
	for (const sub of [[], ["start"], ["status"], ["abort"]]) {
		const h = await rollout(...sub, "--help");
		assert.match(h.stdout, /Examples:\n\s+\$ mlship rollout/);
	}
});
