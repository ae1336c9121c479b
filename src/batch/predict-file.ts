// Offline prediction over table files: a DuckDB file source and a file sink around the shared scoring loop.
import { resolve } from "node:path";
import type { Model } from "../model.ts";
import { formatOf } from "./files.ts";
import { refuseOverwrite } from "./overwrite.ts";
import { scoreSource } from "./score.ts";
import { JsonlErrorSink } from "./sinks/errors.ts";
import { FileSink } from "./sinks/file.ts";
import { DuckDBSource } from "./sources/duckdb.ts";

export interface PredictFileOptions {
	input: string;
	output: string;
	inputFormat?: string;
	outputFormat?: string;
	/** `fail` stops at the first bad row and writes no output; `skip` writes bad rows to the error file and goes on. */
	onError?: "fail" | "skip";
	/** Where skipped rows go (JSON lines); default `<output>.errors.jsonl`. */
	errorsPath?: string;
	/** Input columns copied to the output beside the predictions (`["*"]` = all). */
	keep?: string[];
	/** Rows per model call (default 32768). */
	chunkRows?: number;
	/** Called with the rows read so far (and the total when known). */
	onProgress?: (rows: number, total: number | undefined) => void;
}

export interface PredictFileSummary {
	model: string;
	version: number | null;
	input: string;
	output: string;
	rows_in: number;
	rows_scored: number;
	rows_rejected: number;
	errors_file: string | null;
	duration_ms: number;
	rows_per_second: number;
}

/**
 * Scores a CSV, JSON-lines or Parquet file with `model` and writes predictions (plus `keep` columns) to `output`.
 * Memory stays bounded: chunks stream in, predictions go to a DuckDB table that spills to disk, then one COPY.
 * @example await predictFile(model, { input: "rows.parquet", output: "pred.parquet", onError: "skip" })
 */
export async function predictFile(
	model: Model,
	opts: PredictFileOptions,
): Promise<PredictFileSummary> {
	const started = performance.now();
	const input = resolve(opts.input);
	const output = resolve(opts.output);
	const errorsPath = resolve(opts.errorsPath ?? `${output}.errors.jsonl`);
	refuseOverwrite(opts.input, [
		["--output", opts.output],
		["--errors", errorsPath],
	]);
	const source = DuckDBSource.file(
		input,
		formatOf(input, opts.inputFormat),
		opts.input,
	);
	const sink = await FileSink.create(
		output,
		formatOf(output, opts.outputFormat),
	);
	try {
		const r = await scoreSource(model, source, sink, {
			onError: opts.onError ?? "fail",
			keep: opts.keep ?? [],
			chunkRows: opts.chunkRows ?? 32768,
			...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
		});
		let errorsFile: string | null = null;
		if (r.rejected.length > 0) {
			errorsFile = errorsPath;
			await new JsonlErrorSink(errorsFile).write(r.rejected);
		}
		await sink.finish();
		const ms = performance.now() - started;
		return {
			model: model.name,
			version: model.version ?? null,
			input,
			output,
			rows_in: r.rowsIn,
			rows_scored: r.rowsScored,
			rows_rejected: r.rejected.length,
			errors_file: errorsFile,
			duration_ms: Math.round(ms),
			rows_per_second: Math.round(r.rowsScored / (ms / 1000)),
		};
	} finally {
		await sink.abort();
		await source.close();
	}
}
