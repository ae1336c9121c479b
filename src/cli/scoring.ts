// Shared by the commands that score many rows (predict, batch run): model loading options, progress, cleanup.
import type { Command } from "commander";
import { loadModel, type Model } from "../model.ts";
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
export async function withScoringModel<T>(
	label: string,
	opts: ScoringOpts,
	fn: (model: Model, progress: Progress) => Promise<T>,
	metrics?: RunnerMetrics,
): Promise<T> {
	const load: Parameters<typeof loadModel>[1] = { mode: "pool" };
	if (opts.registry) load.registry = opts.registry;
	if (opts.workers) load.workers = opts.workers;
	if (metrics) load.observer = metrics.observer;
	const model = await loadModel(opts.model, load);
	metrics?.bind(model.name, model.version);
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
