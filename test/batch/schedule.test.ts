// Cron parsing, the scheduler (fake clock: no overlapping runs, missed runs reported), and job files through the real CLI.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cron } from "../../src/batch/cron.ts";
import { runSchedule, type ScheduleEvent } from "../../src/batch/schedule.ts";
import { mlship, readTable, writeTable } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const at = (s: string) => new Date(s).getTime();
const local = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) =>
	new Date(y, mo - 1, d, h, mi, s).getTime();

describe("Cron", () => {
	it("finds the next matching times", () => {
		const from = local(2026, 1, 31, 23, 59, 30);
		const next3 = (e: string) => {
			const c = new Cron(e);
			const out: number[] = [];
			let t = from;
			for (let i = 0; i < 3; i++) {
				t = c.next(t);
				out.push(t);
			}
			return out;
		};
		assert.deepEqual(next3("0 2 * * *"), [
			local(2026, 2, 1, 2),
			local(2026, 2, 2, 2),
			local(2026, 2, 3, 2),
		]);
		assert.deepEqual(next3("*/10 * * * * *"), [
			local(2026, 1, 31, 23, 59, 40),
			local(2026, 1, 31, 23, 59, 50),
			local(2026, 2, 1),
		]);
		assert.deepEqual(next3("0 9 * * 1-5"), [
			local(2026, 2, 2, 9),
			local(2026, 2, 3, 9),
			local(2026, 2, 4, 9),
		]);
		assert.deepEqual(next3("@hourly").slice(0, 1), [local(2026, 2, 1)]);
		// Both day fields restricted: either matches (the 13th, or any Friday).
		assert.deepEqual(next3("0 0 13 * 5"), [
			local(2026, 2, 6),
			local(2026, 2, 13),
			local(2026, 2, 20),
		]);
		assert.equal(new Cron("0 0 29 2 *").next(from), local(2028, 2, 29));
	});

	it("rejects bad expressions with the field named", () => {
		assert.throws(
			() => new Cron("61 * * * *"),
			/minute field '61' is outside 0-59/,
		);
		assert.throws(() => new Cron("* * *"), /expected 5 fields/);
		assert.throws(() => new Cron("* * * * mon"), /day of week field 'mon'/);
	});
});

describe("runSchedule", () => {
	/** A fake clock: sleeping advances time and yields to let finished runs report. */
	function fakeClock(start: number) {
		let t = start;
		return {
			now: () => t,
			sleep: async (ms: number) => {
				t += ms;
				await new Promise((r) => setImmediate(r));
			},
			advance: (ms: number) => {
				t += ms;
			},
		};
	}

	it("never overlaps runs: a fire while a run is going is reported missed, not started", async () => {
		const clock = fakeClock(at("2026-03-01T00:00:00.500Z"));
		const events: ScheduleEvent[] = [];
		let calls = 0;
		let active = 0;
		let maxActive = 0;
		let release = () => {};
		// The first run is slow: it ends only after two more fires have come; later runs end at once.
		const job = () => {
			calls++;
			active++;
			maxActive = Math.max(maxActive, active);
			if (calls > 1) {
				active--;
				return Promise.resolve("fast");
			}
			return new Promise<string>((resolve) => {
				release = () => {
					active--;
					resolve("slow");
				};
			});
		};
		await runSchedule(new Cron("* * * * * *"), job, {
			onEvent: (e) => {
				events.push(e);
				if (events.filter((x) => x.event === "missed").length === 2) release();
			},
			maxRuns: 2,
			now: clock.now,
			sleep: clock.sleep,
		});
		assert.equal(maxActive, 1, "never two runs at once");
		const kinds = events.map((e) => e.event).filter((k) => k !== "scheduled");
		assert.deepEqual(kinds.slice(0, 4), [
			"started",
			"missed",
			"missed",
			"finished",
		]);
		assert.equal(kinds.filter((k) => k === "started").length, 2);
		const missed = events.filter((e) => e.event === "missed") as Extract<
			ScheduleEvent,
			{ event: "missed" }
		>[];
		assert.deepEqual(
			missed.map((m) => [m.scheduled_for, m.reason]),
			[
				["2026-03-01T00:00:02.000Z", "the previous run is still running"],
				["2026-03-01T00:00:03.000Z", "the previous run is still running"],
			],
		);
	});

	it("reports the fires it slept through as missed and runs once, for the earliest", async () => {
		const clock = fakeClock(at("2026-03-01T00:00:00.000Z"));
		const events: ScheduleEvent[] = [];
		let first = true;
		await runSchedule(new Cron("* * * * *"), async () => "ok", {
			onEvent: (e) => events.push(e),
			maxRuns: 1,
			now: clock.now,
			sleep: async (ms) => {
				// The machine is suspended for three minutes during the first wait.
				await clock.sleep(ms + (first ? 180_000 : 0));
				first = false;
			},
		});
		const missed = events.filter((e) => e.event === "missed") as Extract<
			ScheduleEvent,
			{ event: "missed" }
		>[];
		assert.deepEqual(
			missed.map((m) => m.scheduled_for),
			[
				"2026-03-01T00:02:00.000Z",
				"2026-03-01T00:03:00.000Z",
				"2026-03-01T00:04:00.000Z",
			],
		);
		assert.ok(missed.every((m) => /not awake/.test(m.reason)));
		assert.deepEqual(
			events
				.filter((e) => e.event === "finished")
				.map((e) => (e as { scheduled_for: string }).scheduled_for),
			["2026-03-01T00:01:00.000Z"],
		);
	});
});

describe("job files", () => {
	let dir: string;
	const g = golden("iris-logreg");
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-job-test-"));
		await writeTable(
			join(dir, "rows.csv"),
			g.records.map((r, k) => ({ id: k, ...r })),
		);
	});
	after(async () => {
		await rm(dir, { recursive: true, force: true });
	});

	it("batch run takes a job file; flags override its fields; bad fields are named", async () => {
		const job = join(dir, "job.yaml");
		await writeFile(
			job,
			`model: ${bundleDir("iris-logreg")}\nsource: ${join(dir, "rows.csv")}\nsink: ${join(dir, "from-job.parquet")}\nkeep: [id]\non_error: skip\n`,
		);
		const r = await mlship(["batch", "run", job, "--json"]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		assert.equal(JSON.parse(r.stdout).rows_scored, g.records.length);
		const out = await readTable(join(dir, "from-job.parquet"));
		assert.deepEqual(
			out.map((o) => Number(o.id)),
			g.records.map((_, k) => k),
		);
		const labels = ["setosa", "versicolor", "virginica"];
		assert.deepEqual(
			out.map((o) => o.label),
			(g.expected.label as number[]).map((k) => labels[k]),
		);

		const o = await mlship([
			"batch",
			"run",
			job,
			"-o",
			join(dir, "override.jsonl"),
			"--json",
		]);
		assert.equal(o.code, 0, o.stderr);
		assert.equal(
			(await readTable(join(dir, "override.jsonl"))).length,
			g.records.length,
		);

		const bad = join(dir, "bad.yaml");
		await writeFile(
			bad,
			"model: x\nsink: y.parquet\non_error: sometimes\nbogus: 1\n",
		);
		const b = await mlship(["batch", "run", bad, "--json"]);
		assert.equal(b.code, 2);
		const msg = JSON.parse(b.stdout).error;
		assert.match(msg, /on_error/);
		assert.match(msg, /bogus/);
	});

	it("batch schedule runs a job on a cron schedule, one run after another, then stops at --max-runs", async () => {
		const job = join(dir, "every-second.yaml");
		await writeFile(
			job,
			`model: ${bundleDir("iris-logreg")}\nsource: ${join(dir, "rows.csv")}\nsink: ${join(dir, "scheduled.csv")}\nkeep: [id]\nschedule: "* * * * * *"\n`,
		);
		const r = await mlship([
			"batch",
			"schedule",
			job,
			"--max-runs",
			"2",
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const events = r.stdout
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		const finished = events.filter((e) => e.event === "finished");
		assert.equal(finished.length, 2);
		for (const f of finished)
			assert.equal(f.summary.rows_scored, g.records.length);
		assert.equal(events.filter((e) => e.event === "failed").length, 0);
		assert.equal(
			(await readTable(join(dir, "scheduled.csv"))).length,
			g.records.length,
		);
		const help = await mlship(["batch", "schedule", "--help"]);
		assert.match(help.stdout, /Examples:\n\s+\$ mlship batch schedule/);
		const none = await mlship(["batch", "schedule", join(dir, "job.yaml")]);
		assert.equal(none.code, 2);
		assert.match(none.stderr, /no schedule: give --cron/);
	});
});
