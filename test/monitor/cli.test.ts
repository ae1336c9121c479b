// The CLI end to end: `mlship stream --monitor-window` profiles what it scores into the registry, and
// `mlship monitor report --json` reads the window back with its drift.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { queryPayloadLog } from "../../src/payload-log/query.ts";
import { CLI } from "../helpers/fixtures.ts";
import { bundleWithReference, rows } from "./synth.ts";

test("stream --monitor-window writes windows to the registry; monitor report --json judges them", async () => {
	const { dir } = await bundleWithReference(rows(500, 91));
	const root = join(dir, "..");
	const registry = `sqlite:${join(root, "registry.db")}`;
	const mlship = (...args: string[]) =>
		spawnSync(process.execPath, [CLI, ...args], {
			encoding: "utf8",
			timeout: 120_000,
		});
	assert.equal(
		mlship("models", "register", dir, "--registry", registry).status,
		0,
	);
	const input = join(root, "requests.jsonl");
	const shifted = rows(300, 92, {
		mean: { bmi: 1, s5: 1, s1: 1, s3: -1 },
		male: 0.85,
		old: 0.6,
	});
	await writeFile(
		input,
		`${shifted.map((r) => JSON.stringify(r)).join("\n")}\n`,
	);
	const stream = (to: string, window: string, ...more: string[]) =>
		mlship(
			"stream",
			"-m",
			"diabetes-cats-ridge",
			"--registry",
			registry,
			"--from",
			input,
			"--to",
			to,
			"--monitor-window",
			window,
			...more,
		);
	// With a payload log too: both hooks see every prediction (the monitor's once replaced the log's).
	const payloads = join(root, "payloads");
	const s = stream(
		join(root, "results.jsonl"),
		"1h",
		"--log-level",
		"warn",
		"--log-payloads",
		payloads,
	);
	assert.equal(s.status, 0, s.stderr);
	const logged = await queryPayloadLog(payloads, { limit: 1000 });
	assert.equal(
		logged.reduce((n, r) => n + r.rows, 0),
		300,
	);
	const r = mlship(
		"monitor",
		"report",
		"--model",
		"diabetes-cats-ridge",
		"--since",
		"2h",
		"--registry",
		registry,
		"--json",
	);
	assert.equal(r.status, 0, r.stderr);
	const report = JSON.parse(r.stdout) as {
		windows: {
			version: number;
			rows: number;
			open: boolean;
			features: Record<string, { drifted: boolean | null }>;
			dataset: { drifted_dataset: boolean };
		}[];
		stats: {
			version: number;
			requests: number;
			errors: number;
			p50_ms: number | null;
		}[];
	};
	// Traffic and latency of the same window: every scoring call the stream made, none failed.
	assert.equal(report.stats.length, 1, JSON.stringify(report.stats));
	const [t] = report.stats;
	assert.ok(t && t.version === 1 && t.requests >= 1 && t.errors === 0);
	assert.ok(t.p50_ms !== null && t.p50_ms > 0);
	assert.equal(report.windows.length, 1);
	const [w] = report.windows;
	assert.ok(w);
	assert.equal(w.version, 1);
	assert.equal(w.rows, 300);
	assert.equal(w.features.bmi?.drifted, true);
	assert.equal(w.dataset.drifted_dataset, true);
	const bad = stream("-", "soon");
	assert.equal(bad.status, 2, bad.stderr);
	assert.match(
		bad.stderr,
		/--monitor-window must be a duration such as .*, got "soon"/,
	);
});
