// `mlship tune`: load a bundle in-process under several batching/executor settings, drive each with an in-process
// load generator (closed loop: N clients, one row per call), and pick the settings with the best throughput that
// meet a p99 target at every concurrency. Coordinate search from the bundle's current settings (executor, then
// max_batch_size, then max_queue_delay_us), so a run is a dozen trials, not a full grid.

import { readFile, rename, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { parseManifest } from "../bundle/manifest.ts";
import type { Bundle } from "../bundle/types.ts";
import { encodeRecords } from "../codec/table.ts";
import { warmupRows } from "../codec/warmup.ts";
import { loadInstance, type ModelInstance } from "../dataplane/instance.ts";
import { DEFAULT_BATCHING } from "../dataplane/scheduler.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";

/** The settings a trial runs with (what `mlship tune` writes into the bundle). */
export interface TuneSettings {
	max_batch_size: number;
	max_queue_delay_us: number;
	workers: number;
	intra_op_threads: number;
}

/** One concurrency level of a trial. */
export interface TuneLevel {
	clients: number;
	/** Calls completed per second. */
	rps: number;
	p50_ms: number;
	p99_ms: number;
	/** Calls that failed (e.g. the queue was full). */
	errors: number;
}

export interface TuneTrial {
	settings: TuneSettings;
	levels: TuneLevel[];
	/** Geometric mean of the levels' calls per second. */
	score: number;
	/** p99 within the target and no error at every level. */
	meets_target: boolean;
}

export interface TuneResult {
	model: string;
	target_p99_ms: number;
	clients: number[];
	seconds: number;
	/** The bundle's own settings (as `mlship serve` would run it), measured first. */
	defaults: TuneTrial;
	/** The chosen trial (the defaults unless another beats them by more than `margin`). */
	best: TuneTrial;
	/** Whether `best` differs from the defaults. */
	improved: boolean;
	trials: TuneTrial[];
}

export interface TuneOptions {
	/** p99 target per level, in ms (default 10). */
	targetP99Ms?: number;
	/** Concurrency levels (default 1, 8, 64). */
	clients?: number[];
	/** Measured seconds per level (default 1). */
	seconds?: number;
	/** Cores to plan workers × threads for (default: availableParallelism()). */
	cores?: number;
	/** A candidate must beat the current best's score by this fraction to replace it (default 0.05): noise is not a win. */
	margin?: number;
	/** Progress lines (one per trial). */
	onProgress?: (line: string) => void;
}

/** Most clients per level: each is an async loop in this process. */
const MAX_CLIENTS = 1024;

/** Workers that fit `cores` at `t` intra-op threads each (the pool's default). */
const defaultWorkersFor = (cores: number, t: number) =>
	Math.max(1, Math.floor(cores / t));

/** The settings `mlship serve` would run a bundle with, read from its manifest. */
export function bundleSettings(bundle: Bundle, cores: number): TuneSettings {
	const b = bundle.manifest.batching ?? {};
	const ex = bundle.manifest.executor ?? {};
	const threads = ex.intra_op_threads ?? 1;
	return {
		max_batch_size: b.max_batch_size ?? DEFAULT_BATCHING.max_batch_size,
		max_queue_delay_us:
			b.max_queue_delay_us ?? DEFAULT_BATCHING.max_queue_delay_us,
		workers: ex.workers ?? defaultWorkersFor(cores, threads),
		intra_op_threads: threads,
	};
}

const same = (a: TuneSettings, b: TuneSettings) =>
	a.max_batch_size === b.max_batch_size &&
	a.max_queue_delay_us === b.max_queue_delay_us &&
	a.workers === b.workers &&
	a.intra_op_threads === b.intra_op_threads;

function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return 0;
	return sorted[
		Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))
	] as number;
}

/** One level: `clients` closed-loop callers for `seconds`, one row per call. */
async function drive(
	m: ModelInstance,
	row: Tensor[],
	clients: number,
	seconds: number,
): Promise<TuneLevel> {
	const latencies: number[] = [];
	let errors = 0;
	const until = performance.now() + seconds * 1000;
	const client = async () => {
		while (performance.now() < until) {
			const t = performance.now();
			try {
				await m.predictTensors(row);
				latencies.push(performance.now() - t);
			} catch {
				errors++;
			}
		}
	};
	const started = performance.now();
	await Promise.all(Array.from({ length: clients }, client));
	const elapsed = (performance.now() - started) / 1000;
	latencies.sort((a, b) => a - b);
	const round = (x: number) => Math.round(x * 1000) / 1000;
	return {
		clients,
		rps: Math.round(latencies.length / elapsed),
		p50_ms: round(percentile(latencies, 50)),
		p99_ms: round(percentile(latencies, 99)),
		errors,
	};
}

/** Loads the bundle with `s`, warms it up, runs every level, unloads it. */
async function trial(
	bundle: Bundle,
	s: TuneSettings,
	opts: Required<Pick<TuneOptions, "targetP99Ms" | "clients" | "seconds">>,
): Promise<TuneTrial> {
	const m = await loadInstance(bundle, {
		mode: "auto",
		workers: s.workers,
		intraOpThreads: s.intra_op_threads,
		batchingOverride: {
			max_batch_size: s.max_batch_size,
			max_queue_delay_us: s.max_queue_delay_us,
			// The load generator is closed-loop: its queue never exceeds the clients.
			max_queue_size: 0,
		},
	});
	try {
		const { rows } = warmupRows(bundle.manifest, m.plan);
		const { tensors, errors } = encodeRecords(m.plan, rows.slice(0, 1));
		if (errors.length > 0 || tensors.length === 0)
			throw invalidInput(
				`mlship tune needs one valid row: add 'examples' to ${bundle.source}/mlship.yaml (the synthesized row was refused)`,
			);
		for (let i = 0; i < 50; i++) await m.predictTensors(tensors);
		const levels: TuneLevel[] = [];
		for (const c of opts.clients)
			levels.push(await drive(m, tensors, c, opts.seconds));
		const score = Math.exp(
			levels.reduce((n, l) => n + Math.log(Math.max(l.rps, 1)), 0) /
				levels.length,
		);
		return {
			settings: s,
			levels,
			score: Math.round(score),
			meets_target: levels.every(
				(l) => l.errors === 0 && l.p99_ms <= opts.targetP99Ms,
			),
		};
	} finally {
		await m.close();
	}
}

/** Whether `c` should replace `best`: meeting the target first, then throughput by more than `margin`. */
function better(c: TuneTrial, best: TuneTrial, margin: number): boolean {
	if (c.meets_target !== best.meets_target) return c.meets_target;
	return c.score > best.score * (1 + margin);
}

/** Workers × intra-op threads that fit `cores`: one worker per core, one worker with every core, and between. */
function executorChoices(cores: number): { w: number; t: number }[] {
	const out: { w: number; t: number }[] = [];
	for (let t = 1; t <= cores; t *= 2) {
		const max = defaultWorkersFor(cores, t);
		out.push({ w: max, t });
		if (max > 1) out.push({ w: 1, t });
	}
	return out;
}

/**
 * Measures the bundle's own settings, then sweeps workers × intra-op threads, max_batch_size and
 * max_queue_delay_us one at a time from the best so far; returns every trial and the best.
 * @example const r = await tune(await readBundle("./mlp"), { clients: [1, 8, 64], targetP99Ms: 10 });
 */
export async function tune(
	bundle: Bundle,
	opts: TuneOptions = {},
): Promise<TuneResult> {
	const clients = opts.clients ?? [1, 8, 64];
	const seconds = opts.seconds ?? 1;
	const targetP99Ms = opts.targetP99Ms ?? 10;
	const cores = opts.cores ?? availableParallelism();
	const margin = opts.margin ?? 0.05;
	if (
		clients.length === 0 ||
		clients.some((c) => !(c >= 1 && c <= MAX_CLIENTS))
	)
		throw invalidInput(
			`--clients: each level must be 1 to ${MAX_CLIENTS} (got ${clients.join(",")})`,
		);
	if (!(seconds > 0 && seconds <= 60))
		throw invalidInput(
			`--seconds must be above 0 and at most 60 (got ${seconds})`,
		);
	const run = { targetP99Ms, clients, seconds };
	const trials: TuneTrial[] = [];
	const measure = async (s: TuneSettings): Promise<TuneTrial> => {
		const seen = trials.find((t) => same(t.settings, s));
		if (seen) return seen;
		const t = await trial(bundle, s, run);
		trials.push(t);
		opts.onProgress?.(
			`trial ${trials.length}: batch ${s.max_batch_size}, delay ${s.max_queue_delay_us} µs, ${s.workers} worker(s) × ${s.intra_op_threads} thread(s): ${t.levels.map((l) => `${l.clients}c ${l.rps}/s p99 ${l.p99_ms} ms`).join("; ")}`,
		);
		return t;
	};
	const defaults = await measure(bundleSettings(bundle, cores));
	let best = defaults;
	const sweep = async (variants: Partial<TuneSettings>[]) => {
		const from = best.settings;
		for (const v of variants) {
			const t = await measure({ ...from, ...v });
			if (better(t, best, margin)) best = t;
		}
	};
	await sweep(
		executorChoices(cores).map(({ w, t }) => ({
			workers: w,
			intra_op_threads: t,
		})),
	);
	await sweep([1, 16, 64, 256].map((n) => ({ max_batch_size: n })));
	if (best.settings.max_batch_size > 1)
		await sweep([0, 250, 1000].map((d) => ({ max_queue_delay_us: d })));
	return {
		model: bundle.manifest.name,
		target_p99_ms: targetP99Ms,
		clients,
		seconds,
		defaults,
		best,
		improved: best !== defaults,
		trials,
	};
}

/**
 * Writes `s` into the bundle directory's mlship.yaml (`batching.max_batch_size`, `batching.max_queue_delay_us`,
 * `executor.workers`, `executor.intra_op_threads`), keeping its comments and every other field; the result is
 * validated before it replaces the file (written beside it, then renamed).
 */
export async function writeSettings(
	dir: string,
	s: TuneSettings,
): Promise<string> {
	const path = join(dir, "mlship.yaml");
	let text: string;
	try {
		text = await readFile(path, "utf8");
	} catch {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`cannot write tuned settings: '${dir}' is not a bundle directory with mlship.yaml (use --dry-run for a bare .onnx file)`,
		);
	}
	const doc = parseDocument(text);
	doc.setIn(["batching", "max_batch_size"], s.max_batch_size);
	doc.setIn(["batching", "max_queue_delay_us"], s.max_queue_delay_us);
	doc.setIn(["executor", "workers"], s.workers);
	doc.setIn(["executor", "intra_op_threads"], s.intra_op_threads);
	const next = doc.toString({ lineWidth: 0 });
	parseManifest(next, path);
	const tmp = `${path}.tune-${process.pid}`;
	await writeFile(tmp, next);
	await rename(tmp, path);
	return path;
}
