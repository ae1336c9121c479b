// Where a batch runs: on the calling thread (inline) or on a worker thread, from the model's cost measured at load.
import { allocate } from "../protocol/datatypes.ts";
import type { Signature, Tensor } from "../protocol/types.ts";

/**
 * `executor.inline` (batches of up to `inline_max_rows`; larger ones always go to the worker threads): `auto` runs a
 * batch inline when its cost measured at load is at most `inline_max_us` while other work waits, and at most ten
 * times that while nothing else does (a slower model always uses its workers); `true`
 * runs it inline; `false` runs it inline only when nothing else waits (a busy model hands every batch to its
 * worker threads).
 */
export type InlineSetting = "auto" | boolean;

/**
 * Default `inline_max_us`. A hand-off to a worker thread (structured clone, postMessage, the worker's wake-up, the
 * reply) costs ~40–60 µs of CPU per batch on the 2-core development machine (bench/serve, a one-row GBDT: ~36 µs in
 * the worker plus the main thread's side): a batch cheaper than that costs less CPU inline. Not more: under overload
 * the main thread is what answers health checks and refusals, and a larger inline budget (100 µs, which took 32-row
 * GBDT batches inline) raised the fresh-connection readiness p99 of test/server/overload.test.ts.
 */
export const DEFAULT_INLINE_MAX_US = 40;

/** An idle batch runs inline up to this many times `inline_max_us` (400 µs by default): only slow models leave. */
export const IDLE_INLINE_FACTOR = 10;

/** A model's measured inline cost: a fixed part per batch plus a part per row (µs, wall time at load). */
export interface InlineCost {
	fixedUs: number;
	perRowUs: number;
}

/** Decides per batch whether it runs inline. */
export class InlinePolicy {
	readonly setting: InlineSetting;
	readonly maxRows: number;
	readonly maxUs: number;
	/** Measured at load (auto); undefined when the model could not be timed (then `auto` acts as `false`). */
	readonly cost: InlineCost | undefined;

	constructor(
		setting: InlineSetting,
		maxRows: number,
		maxUs: number,
		cost: InlineCost | undefined,
	) {
		this.setting = setting;
		this.maxRows = maxRows;
		this.maxUs = maxUs;
		this.cost = cost;
	}

	/** Whether a batch of `rows` runs on the calling thread; `busy` says more work waits. */
	inline(rows: number, busy: boolean): boolean {
		if (rows > this.maxRows) return false;
		const c = this.cost;
		if (this.setting === "auto" && c !== undefined) {
			// While nothing else waits, a batch delays no one: it runs inline unless the model is slow (more than
			// IDLE_INLINE_FACTOR × maxUs), which keeps the event loop answering health checks. A measurement
			// skewed by a busy machine at load then only moves the busy decision.
			const us = c.fixedUs + c.perRowUs * rows;
			return us <= (busy ? this.maxUs : IDLE_INLINE_FACTOR * this.maxUs);
		}
		return this.setting === true || !busy;
	}
}

/** Rows of the small and the large calibration batch. */
const CALIBRATION_ROWS = [1, 32] as const;
/** Timed runs per batch size; the fastest counts (interference on a shared machine only adds time). */
const CALIBRATION_RUNS = 10;
/** Untimed runs first: a fresh session's first runs allocate and are many times slower. */
const CALIBRATION_WARMUP = 20;

/**
 * CPU time of this process in µs: unlike wall time, not inflated when a busy machine preempts the thread (a
 * wall-clock calibration on the shared 2-core machine read a 16 µs MLP run as 20–45 µs). Other threads' work during
 * a run only adds to it, so the fastest run still counts. (`process.threadCpuUsage` would leave them out, but it
 * moves in steps of hundreds of µs on Linux.)
 */
function cpuMicros(): number {
	const u = process.cpuUsage();
	return u.user + u.system;
}

/**
 * Times `run` (CPU time) on zero-filled batches of 1 and 32 rows built from `signature`
 * (after 20 untimed runs, the fastest of 10 runs each) and fits a fixed + per-row cost. Stops early when one row already costs more than `stopUs` (a slow
 * model: there is nothing to gain inline, and calibrating it would slow its load); each size stops timing after
 * 50 × `stopUs` in all. Undefined when the model refuses the synthetic rows
 * (e.g. a categorical input whose encoder rejects unknown values) or the signature has no batch dimension.
 */
export async function calibrateInline(
	signature: Signature,
	run: (inputs: Tensor[]) => Promise<unknown>,
	stopUs: number,
): Promise<InlineCost | undefined> {
	const times: number[] = [];
	try {
		for (const rows of CALIBRATION_ROWS) {
			const inputs: Tensor[] = [];
			for (const s of signature.inputs) {
				// No batch dimension, or a fixed one: nothing to fit (auto then acts as false). Strings are not
				// synthesized: an encoder that refuses unknown categories would fail (and onnxruntime log it).
				if (
					s.shape.length === 0 ||
					(s.shape[0] as number) >= 0 ||
					s.datatype === "BYTES"
				)
					return undefined;
				const shape = s.shape.map((d, i) => (i === 0 ? rows : d < 0 ? 1 : d));
				const n = shape.reduce((a, b) => a * b, 1);
				inputs.push({
					name: s.name,
					datatype: s.datatype,
					shape,
					data: allocate(s.datatype, n),
				});
			}
			const start = performance.now();
			const spendMs = (50 * stopUs) / 1000;
			for (let i = 0; i < CALIBRATION_WARMUP; i++) {
				await run(inputs);
				if (performance.now() - start > spendMs) break;
			}
			let best = Number.POSITIVE_INFINITY;
			for (let i = 0; i < CALIBRATION_RUNS; i++) {
				const t0 = cpuMicros();
				await run(inputs);
				best = Math.min(best, cpuMicros() - t0);
				if (performance.now() - start > spendMs) break;
			}
			times.push(best);
			if (best > stopUs) break;
		}
	} catch {
		return undefined;
	}
	const one = times[0] as number;
	const many = times[1];
	if (many === undefined) return { fixedUs: one, perRowUs: one };
	const [r1, r2] = CALIBRATION_ROWS;
	const perRowUs = Math.max(0, (many - one) / (r2 - r1));
	return { fixedUs: Math.max(0, one - perRowUs), perRowUs };
}
