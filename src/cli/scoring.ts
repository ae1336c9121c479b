// Shared by the commands that score many rows (predict, batch run): model loading options, progress, cleanup.
import type { Command } from "commander";
import {
	type FollowedModel,
	followModel,
	type LoadModelOptions,
	loadModel,
	type Model,
} from "../model.ts";
import type { RunnerMetrics } from "../monitor/metrics.ts";
import { Progress, wholeNumber } from "./common.ts";

export interface ScoringOpts {
	model: string;
	registry?: string;
	workers?: number;
	chunkRows: number;
	json?: boolean;
}

/** Adds --registry, --chunk-rows and --workers. */
export function scoringOptions(cmd: Command, chunkRows = 32768): Command {
	return cmd
		.option(
			"--registry <uri>",
			"registry for model names (default: MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
		)
		.option("--chunk-rows <n>", "rows per model call", wholeNumber(), chunkRows)
		.option(
			"--workers <n>",
			"model worker threads (default: one per core)",
			wholeNumber(),
		);
}

/**
 * Loads the model on a worker pool, runs `fn` with a progress display (a terminal without --json only),
 * and always closes the model. With `metrics`, the model reports its batches there and is named in their labels.
 */
export function withScoringModel<T>(
	label: string,
	opts: ScoringOpts,
	fn: (model: Model, progress: Progress) => Promise<T>,
	metrics?: RunnerMetrics,
): Promise<T> {
	return withModel(label, opts, (ref, o) => loadModel(ref, o), fn, metrics);
}

/**
 * The same for long-running work: a registry reference follows the registry (a new version of the alias is
 * swapped in between chunks), a bundle path is loaded once. Metrics are relabelled with each new version.
 */
export function withFollowedModel<T>(
	label: string,
	opts: ScoringOpts,
	fn: (model: FollowedModel, progress: Progress) => Promise<T>,
	metrics?: RunnerMetrics,
): Promise<T> {
	return withModel(
		label,
		opts,
		(ref, o) =>
			followModel(ref, {
				...o,
				// Metrics name the version serving now: relabelled when the alias moves (totals carry on).
				...(metrics ? { onEvent: metrics.onModelEvent } : {}),
			}),
		fn,
		metrics,
	);
}

async function withModel<M extends FollowedModel, T>(
	label: string,
	opts: ScoringOpts,
	load: (ref: string, o: LoadModelOptions) => Promise<M>,
	fn: (model: M, progress: Progress) => Promise<T>,
	metrics: RunnerMetrics | undefined,
): Promise<T> {
	const o: LoadModelOptions = { mode: "pool" };
	if (opts.registry) o.registry = opts.registry;
	if (opts.workers) o.workers = opts.workers;
	if (metrics) o.observer = metrics.observer;
	const model = await load(opts.model, o);
	if (metrics) {
		const { model: current, release } = await model.lease();
		metrics.bind(current.name, current.version);
		release();
	}
	try {
		return await fn(
			model,
			new Progress(
				label,
				undefined,
				!opts.json && process.stderr.isTTY === true,
			),
		);
	} finally {
		await model.close();
	}
}
