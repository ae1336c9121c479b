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
		assert.throws(
			() => new Cron("0 25 * * *"),
			/hour field '25' is outside 0-23/,
		);
		assert.throws(
			() => new Cron("0 0 32 * *"),
			/day of month field '32' is outside 1-31 or L/,
		);
		assert.throws(
			() => new Cron("* * * * 8"),
			/day of week field '8' is outside 0-7 or SUN-SAT/,
		);
		assert.throws(
			() => new Cron("abc * * * *"),
			/minute field 'abc' is not a number, name, range, list or step/,
		);
		assert.throws(() => new Cron("* * *"), /expected 5 fields.*got 3/);
		assert.throws(
			() => new Cron("0 0 31 2 *").next(local(2026, 1, 1)),
			/it never matches a date/,
		);
		assert.throws(
			() => new Cron("0 2 * * *", { timezone: "Mars/Olympus" }),
			/unknown time zone 'Mars\/Olympus'/,
		);
		// Every message ends with examples of what works.
		assert.throws(() => new Cron("61 * * * *"), /\(e\.g\. "0 2 \* \* \*"/);
	});

	it("takes names (MON-FRI, JAN), L for the last day and # for the n-th weekday", () => {
		const from = local(2026, 1, 31, 12);
		const next = (e: string) => new Cron(e).next(from);
		assert.equal(next("0 9 * * MON-FRI"), local(2026, 2, 2, 9));
		assert.equal(next("0 9 * * sat,sun"), local(2026, 2, 1, 9));
		assert.equal(next("0 0 1 JUN *"), local(2026, 6, 1));
		assert.equal(next("0 0 L * *"), local(2026, 2, 28));
		assert.equal(next("0 0 * * 5#2"), local(2026, 2, 13), "2nd Friday");
		assert.equal(next("0 0 * * 5L"), local(2026, 2, 27), "last Friday");
	});

	it("daylight saving in a fixed time zone (Europe/Berlin): a skipped time runs right after the gap, a repeated one once", () => {
		const tz = { timezone: "Europe/Berlin" };
		const runs = (e: string, from: string, n: number) => {
			const c = new Cron(e, tz);
			const out: string[] = [];
			let t = at(from);
			for (let i = 0; i < n; i++) {
				t = c.next(t);
				out.push(new Date(t).toISOString());
			}
			return out;
		};
		// Spring forward, 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
		assert.deepEqual(runs("30 2 * * *", "2026-03-27T12:00:00Z", 3), [
			"2026-03-28T01:30:00.000Z", // 02:30 CET
			"2026-03-29T01:00:00.000Z", // 03:00 CEST, right after the gap
			"2026-03-30T00:30:00.000Z", // 02:30 CEST
		]);
		assert.deepEqual(runs("0 * * * *", "2026-03-28T23:30:00Z", 3), [
			"2026-03-29T00:00:00.000Z", // 01:00 CET
			"2026-03-29T01:00:00.000Z", // 03:00 CEST: no 02:00 that night, and no double run
			"2026-03-29T02:00:00.000Z", // 04:00 CEST
		]);
		// Fall back, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, the daily job runs once.
		assert.deepEqual(runs("30 2 * * *", "2026-10-23T12:00:00Z", 3), [
			"2026-10-24T00:30:00.000Z", // 02:30 CEST
			"2026-10-25T00:30:00.000Z", // the first 02:30 (CEST) only
			"2026-10-26T01:30:00.000Z", // 02:30 CET
		]);
		// An interval keeps its pace through the repeated hour: every 30 minutes of elapsed time.
		assert.deepEqual(runs("*/30 * * * *", "2026-10-25T00:10:00Z", 4), [
			"2026-10-25T00:30:00.000Z", // 02:30 CEST
			"2026-10-25T01:00:00.000Z", // 02:00 CET
			"2026-10-25T01:30:00.000Z", // 02:30 CET
			"2026-10-25T02:00:00.000Z", // 03:00 CET
		]);
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
			`model: ${bundleDir("iris-logreg")}\nsource: ${join(dir, "rows.csv")}\nsink: ${join(dir, "scheduled.csv")}\nkeep: [id]\nschedule: "* * * * * *"\ntimezone: Europe/Berlin\n`,
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

	it("batch schedule refuses an unknown --timezone (it beats the job's) before any run, exit 2", async () => {
		const job = join(dir, "in-berlin.yaml");
		await writeFile(
			job,
			`model: ${bundleDir("iris-logreg")}\nsource: ${join(dir, "rows.csv")}\nsink: ${join(dir, "never.csv")}\nschedule: "* * * * * *"\ntimezone: Europe/Berlin\n`,
		);
		const r = await mlship([
			"batch",
			"schedule",
			job,
			"--timezone",
			"Mars/Olympus",
		]);
		assert.equal(r.code, 2, r.stderr + r.stdout);
		assert.match(r.stderr, /unknown time zone 'Mars\/Olympus'/);
		assert.equal(r.stdout, "");
	});
});
