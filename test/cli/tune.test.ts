// `mlship tune` on the digits MLP with a tiny budget: it runs every trial, prints the table, picks settings at least
// as good as the bundle's own (measured in the same run), writes them into a copy of the bundle that still verifies;
// --dry-run changes nothing; bad arguments say what to do.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { mlship } from "../helpers/files.ts";
import { bundleDir } from "../helpers/fixtures.ts";

const BOUNDED = { timeout: 300_000 };
let dir: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-tune-test-"));
});
after(() => rm(dir, { recursive: true, force: true }));

async function copy(name: string): Promise<string> {
	const to = join(dir, name);
	await cp(bundleDir("digits-mlp"), to, { recursive: true });
	return to;
}

interface Trial {
	settings: Record<string, number>;
	levels: { clients: number; rps: number; p99_ms: number }[];
	score: number;
	meets_target: boolean;
}

describe("mlship tune", () => {
	it(
		"sweeps, picks settings at least as good as the bundle's own, writes them, and the bundle still verifies",
		BOUNDED,
		async () => {
			const b = await copy("written");
			const r = await mlship([
				"tune",
				"--model",
				b,
				"--clients",
				"1,4",
				"--seconds",
				"0.2",
				"--target-p99-ms",
				"1000",
				"--json",
			]);
			assert.equal(r.code, 0, r.stderr + r.stdout);
			const out = JSON.parse(r.stdout) as {
				trials: Trial[];
				defaults: Trial;
				best: Trial;
				improved: boolean;
				written: string | null;
				clients: number[];
			};
			assert.deepEqual(out.clients, [1, 4]);
			assert.ok(out.trials.length >= 5, `${out.trials.length} trials`);
			for (const t of out.trials) {
				assert.deepEqual(
					t.levels.map((l) => l.clients),
					[1, 4],
				);
				assert.ok(t.levels.every((l) => l.rps > 0));
			}
			// The defaults are what serve would run: the bundle sets no batching, so 256 rows, no delay.
			assert.equal(out.defaults.settings.max_batch_size, 256);
			assert.equal(out.defaults.settings.max_queue_delay_us, 0);
			assert.ok(out.best.meets_target);
			assert.ok(
				out.best.score >= out.defaults.score,
				`best ${out.best.score} ≥ defaults ${out.defaults.score}`,
			);
			// One progress line per trial on stderr.
			assert.equal(
				(r.stderr.match(/^mlship tune: trial \d+:/gm) ?? []).length,
				out.trials.length,
			);
			const manifest = parse(await readFile(join(b, "mlship.yaml"), "utf8"));
			if (out.improved) {
				assert.equal(out.written, join(b, "mlship.yaml"));
				assert.deepEqual(
					{ ...manifest.batching, ...manifest.executor },
					out.best.settings,
				);
			} else {
				assert.equal(out.written, null);
				assert.equal(manifest.batching, undefined);
			}
			const v = await mlship(["bundle", "verify", b, "--json"]);
			assert.equal(v.code, 0, v.stderr + v.stdout);
			assert.equal(JSON.parse(v.stdout).ok, true);
		},
	);

	it("--dry-run prints the table and changes nothing", BOUNDED, async () => {
		const b = await copy("dry");
		const before = await readFile(join(b, "mlship.yaml"), "utf8");
		const r = await mlship([
			"tune",
			"-m",
			b,
			"--clients",
			"2",
			"--seconds",
			"0.1",
			"--dry-run",
		]);
		assert.equal(r.code, 0, r.stderr);
		assert.match(
			r.stdout,
			/^#\s+batch\s+delay_us\s+workers\s+threads\s+2 clients/m,
		);
		assert.match(r.stdout, /defaults/);
		assert.match(r.stdout, /--dry-run: nothing written/);
		assert.equal(await readFile(join(b, "mlship.yaml"), "utf8"), before);
	});

	it("refuses bad levels and a bare .onnx file without --dry-run, saying what to do; --help has an example", async () => {
		const bad = await mlship([
			"tune",
			"-m",
			bundleDir("digits-mlp"),
			"--clients",
			"0,8",
		]);
		assert.equal(bad.code, 2);
		assert.match(bad.stderr, /--clients.*whole numbers ≥ 1/);
		const bare = await mlship([
			"tune",
			"-m",
			join(bundleDir("digits-mlp"), "model.onnx"),
		]);
		assert.notEqual(bare.code, 0);
		assert.match(bare.stderr, /bare model file.*bundle init.*--dry-run/);
		const help = await mlship(["tune", "--help"]);
		assert.equal(help.code, 0);
		assert.match(help.stdout, /Example/i);
		assert.match(help.stdout, /mlship tune --model/);
	});
});
