// Runs a job on a cron schedule in one long-lived process: never two runs at once, and every skipped run is reported.
import { toMlshipError } from "../protocol/errors.ts";
import type { Cron } from "./cron.ts";

export type ScheduleEvent =
	| { event: "scheduled"; next: string }
	| { event: "started"; scheduled_for: string }
	| {
			event: "finished";
			scheduled_for: string;
			duration_ms: number;
			summary: unknown;
	  }
	| {
			event: "failed";
			scheduled_for: string;
			duration_ms: number;
			error: string;
			code: string;
	  }
	| { event: "missed"; scheduled_for: string; reason: string };

export interface ScheduleOptions {
	onEvent: (e: ScheduleEvent) => void;
	/** Stops scheduling; a running job is waited for. */
	signal?: AbortSignal;
	/** Stop after this many runs have finished (or failed). */
	maxRuns?: number;
	/** The clock (tests replace it). */
	now?: () => number;
	sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Fires `job` at every time `cron` matches. A fire that comes while the previous run is still going is not
 * started but reported as missed (no overlapping runs); so are fires the process slept through (suspended
 * machine, blocked event loop). Resolves when stopped, or after `maxRuns` runs.
 * @example await runSchedule(new Cron("0 2 * * *"), () => runJob(job), { onEvent: (e) => console.log(e) })
 */
export async function runSchedule(
	cron: Cron,
	job: () => Promise<unknown>,
	opts: ScheduleOptions,
): Promise<void> {
	const now = opts.now ?? Date.now;
	const wait = opts.sleep ?? sleep;
	const iso = (t: number) => new Date(t).toISOString();
	let running: Promise<void> | undefined;
	let started = 0;
	let next = cron.next(now());
	opts.onEvent({ event: "scheduled", next: iso(next) });
	const limit = opts.maxRuns ?? Number.POSITIVE_INFINITY;
	while (!opts.signal?.aborted && started < limit) {
		await wait(Math.max(0, next - now()), opts.signal);
		if (opts.signal?.aborted) break;
		if (now() < next) continue;
		const due = next;
		// Fires after `due` up to now were slept through: report each as missed and run once, for `due` (the earliest).
		for (let t = cron.next(due); t <= now(); t = cron.next(t))
			opts.onEvent({
				event: "missed",
				scheduled_for: iso(t),
				reason: "the scheduler was not awake at that time",
			});
		next = cron.next(Math.max(due, now()));
		if (running) {
			opts.onEvent({
				event: "missed",
				scheduled_for: iso(due),
				reason: "the previous run is still running",
			});
			continue;
		}
		started++;
		const t0 = now();
		opts.onEvent({ event: "started", scheduled_for: iso(due) });
		running = job()
			.then(
				(summary) =>
					opts.onEvent({
						event: "finished",
						scheduled_for: iso(due),
						duration_ms: now() - t0,
						summary,
					}),
				(err) => {
					const e = toMlshipError(err);
					opts.onEvent({
						event: "failed",
						scheduled_for: iso(due),
						duration_ms: now() - t0,
						error: e.message,
						code: e.code,
					});
				},
			)
			.finally(() => {
				running = undefined;
			});
		if (started < limit) opts.onEvent({ event: "scheduled", next: iso(next) });
	}
	await running;
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const timer = setTimeout(done, ms);
		function done() {
			clearTimeout(timer);
			signal?.removeEventListener("abort", done);
			resolve();
		}
		signal?.addEventListener("abort", done, { once: true });
	});
}
