// `mlship batch run` as a library call: open the source, sink and error sink a job names, score, report.
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { Model } from "../model.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import {
	type Checkpoint,
	openCheckpoint,
	saveCheckpoint,
} from "./checkpoint.ts";
import { formatOf } from "./files.ts";
import { refuseOverwrite } from "./overwrite.ts";
import { scoreSource } from "./score.ts";
import { type ErrorSink, JsonlErrorSink } from "./sinks/errors.ts";
import { FileSink } from "./sinks/file.ts";
import { PostgresErrorSink, PostgresSink } from "./sinks/postgres.ts";
import {
	openSqliteForWriting,
	SqliteErrorSink,
	SqliteSink,
} from "./sinks/sqlite.ts";
import { DuckDBSource } from "./sources/duckdb.ts";
import { PostgresSource } from "./sources/postgres.ts";
import { SqliteSource } from "./sources/sqlite.ts";
import type { BatchSink, BatchSource, RejectedRow } from "./types.ts";
import { type Location, parseLocation } from "./uri.ts";

export interface BatchRunOptions {
	/** Files or globs (`in/*.parquet`), `duckdb:SELECT …`, `sqlite:PATH?table=T|query=Q`, `postgres://…?table=T|query=Q`. */
	source: string;
	/** A .parquet/.csv/.jsonl file, `sqlite:PATH?table=T` or `postgres://…?table=T` (created if absent). */
	sink: string;
	/** Where rejected rows go: a .jsonl file or a table URI. Default: `<file>.errors.jsonl`, or table `<T>_errors` beside a table sink. */
	errors?: string;
	/** `fail`: the first bad row stops the job and nothing is written. `skip`: bad rows go to the error sink. */
	onError?: "fail" | "skip";
	/** Source columns written beside each prediction (ids); `["*"]` = all. */
	keep?: string[];
	/** With `skip`: more rejected rows than this fails the job (nothing written). Default: no limit. */
	maxRejected?: number;
	chunkRows?: number;
	/** Adds the top-K contributions of each prediction as columns (models the runtime can explain: trees). */
	explain?: number;
	onProgress?: (rows: number, total: number | undefined) => void;
	/**
	 * File sinks: checkpoint every finished chunk (part files in `<sink>.checkpoint/`) and, when a checkpoint of
	 * this same job exists, go on from it. Give it on every run of a job that should survive being killed.
	 * The source must deliver rows in the same order each time (files do; give queries an ORDER BY).
	 */
	resume?: boolean;
	/**
	 * A second model that scores every row in the same pass (champion/challenger): its prediction columns are
	 * written after the model's as `challenger_<column>`, with `challenger_model` and `challenger_model_version`.
	 * It must read the same features. Not with `resume`.
	 */
	challenger?: Model;
}

export interface BatchRunSummary {
	model: string;
	model_version: number | null;
	source: string;
	sink: string;
	rows_in: number;
	rows_scored: number;
	rows_rejected: number;
	/** With resume: input rows an earlier run had already finished. */
	rows_resumed?: number;
	errors: string | null;
	/** With a challenger: its name and version. */
	challenger?: string;
	challenger_version?: number | null;
	duration_ms: number;
	/** Rows this run scored per second; null when a resumed run found every row already in the checkpoint. */
	rows_per_second: number | null;
}

/** Opens the source a URI names (`db`: a SQLite connection to share with a sink writing the same file). */
export function openSource(uri: string, db?: DatabaseSync): BatchSource {
	const loc = parseLocation(uri, "source");
	if (loc.kind === "duckdb") return DuckDBSource.query(loc.query);
	if (loc.kind === "sqlite") return new SqliteSource(loc.path, loc, db);
	if (loc.kind === "postgres") return new PostgresSource(loc.url, loc);
	return DuckDBSource.file(resolve(loc.path), formatOf(loc.path), loc.path);
}

/** Opens the sink a URI names. */
export async function openSink(
	uri: string,
	db?: DatabaseSync,
): Promise<BatchSink> {
	const loc = parseLocation(uri, "sink");
	if (loc.kind === "sqlite")
		return new SqliteSink(loc.path, loc.table as string, db);
	if (loc.kind === "postgres")
		return new PostgresSink(loc.url, loc.table as string);
	const path = resolve((loc as { path: string }).path);
	return FileSink.create(path, formatOf(path));
}

/** The error sink for a job: `errors` if given, else beside the sink; in the sink's own transaction when it is the same database. */
export function openErrorSink(
	sinkUri: string,
	sink: BatchSink,
	errors?: string,
): ErrorSink {
	const sinkLoc = parseLocation(sinkUri, "sink");
	if (errors === undefined) {
		if (sinkLoc.kind === "file")
			return new JsonlErrorSink(resolve(`${sinkLoc.path}.errors.jsonl`));
		const table = `${(sinkLoc as { table: string }).table}_errors`;
		return sink.errorSink?.(table) ?? errorTable(sinkLoc, table);
	}
	const loc = parseLocation(errors, "sink");
	if (loc.kind === "file") return new JsonlErrorSink(resolve(loc.path));
	const table = (loc as { table: string }).table;
	const same =
		(loc.kind === "sqlite" &&
			sinkLoc.kind === "sqlite" &&
			resolve(loc.path) === resolve(sinkLoc.path)) ||
		(loc.kind === "postgres" &&
			sinkLoc.kind === "postgres" &&
			loc.url === sinkLoc.url);
	return (same ? sink.errorSink?.(table) : undefined) ?? errorTable(loc, table);
}

function errorTable(loc: Location, table: string): ErrorSink {
	if (loc.kind === "sqlite") return new SqliteErrorSink(loc.path, table);
	return new PostgresErrorSink((loc as { url: string }).url, table);
}

/**
 * Scores every row of a source into a sink with the model's name and version beside each prediction.
 * Nothing is visible in the sink unless the whole job succeeds (file written at the end, one transaction).
 * @example await runBatch(model, { source: "sqlite:f.db?table=customers", sink: "scores.parquet", keep: ["id"], onError: "skip" })
 */
export async function runBatch(
	model: Model,
	opts: BatchRunOptions,
): Promise<BatchRunSummary> {
	const started = performance.now();
	refuseFileOverwrite(opts);
	const ch = opts.challenger;
	if (ch && opts.resume)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"a challenger run cannot resume from a checkpoint (the checkpoint records one model): drop --resume or --challenger",
		);
	const shared = sharedSqlite(opts.source, opts.sink);
	const source = openSource(opts.source, shared);
	let sink: BatchSink | undefined;
	try {
		const resumed = opts.resume ? await resumeState(model, opts) : undefined;
		sink = resumed ? resumed.sink : await openSink(opts.sink, shared);
		const errors = openErrorSink(opts.sink, sink, opts.errors);
		const cp = resumed?.checkpoint;
		const r = await scoreSource(model, source, sink, {
			onError: opts.onError ?? "fail",
			keep: opts.keep ?? [],
			stamp: [
				{ name: "model", type: "VARCHAR", value: model.name },
				{ name: "model_version", type: "BIGINT", value: model.version ?? null },
				...(ch
					? [
							{ name: "challenger_model", type: "VARCHAR", value: ch.name },
							{
								name: "challenger_model_version",
								type: "BIGINT",
								value: ch.version ?? null,
							},
						]
					: []),
			],
			...(ch ? { challenger: ch } : {}),
			chunkRows: opts.chunkRows ?? 32768,
			...(opts.explain ? { explain: opts.explain } : {}),
			...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
			...(cp && resumed
				? {
						skipRows: cp.rows_done,
						skippedRejected: cp.rejected,
						onDurable: (rowsDone, scored, rejected) =>
							saveCheckpoint(resumed.dir, {
								...cp,
								rows_done: rowsDone,
								rows_scored: cp.rows_scored + scored,
								parts: resumed.sink.parts,
								rejected: [...rejected],
							}),
					}
				: {}),
		});
		if (opts.maxRejected !== undefined && r.rejected.length > opts.maxRejected)
			throw invalidInput(
				`${r.rejected.length} rows rejected, more than --max-rejected ${opts.maxRejected}; nothing written (first: ${describeRejected(r.rejected[0] as RejectedRow)})`,
			);
		if (r.rejected.length > 0) await errors.write(r.rejected);
		await sink.finish();
		if (resumed) await rm(resumed.dir, { recursive: true, force: true });
		const scored = r.rowsScored + (cp?.rows_scored ?? 0);
		const ms = performance.now() - started;
		return {
			model: model.name,
			model_version: model.version ?? null,
			source: source.label,
			sink: sink.label,
			rows_in: r.rowsIn,
			rows_scored: scored,
			rows_rejected: r.rejected.length,
			...(cp ? { rows_resumed: cp.rows_done } : {}),
			errors: r.rejected.length > 0 ? errors.label : null,
			...(ch
				? { challenger: ch.name, challenger_version: ch.version ?? null }
				: {}),
			duration_ms: Math.round(ms),
			// Every row came from the checkpoint: this run scored nothing, so it has no rate (not a rate of 0).
			rows_per_second:
				cp && r.rowsScored === 0
					? null
					: Math.round(r.rowsScored / (ms / 1000)),
		};
	} finally {
		await sink?.abort();
		await source.close();
	}
}

/** A file source must not be the job's file sink or errors file (nor match them, for a glob). */
function refuseFileOverwrite(opts: BatchRunOptions): void {
	const src = parseLocation(opts.source, "source");
	if (src.kind !== "file") return;
	const sink = parseLocation(opts.sink, "sink");
	const errors =
		opts.errors !== undefined
			? parseLocation(opts.errors, "sink")
			: sink.kind === "file"
				? { kind: "file" as const, path: `${sink.path}.errors.jsonl` }
				: undefined;
	const outputs: [string, string][] = [];
	if (sink.kind === "file") outputs.push(["--sink", sink.path]);
	if (errors?.kind === "file") outputs.push(["--errors", errors.path]);
	refuseOverwrite(src.path, outputs);
}

/** One connection for a job that reads and writes the same SQLite file (two would lock each other out). */
function sharedSqlite(source: string, sink: string): DatabaseSync | undefined {
	const a = parseLocation(source, "source");
	const b = parseLocation(sink, "sink");
	return a.kind === "sqlite" &&
		b.kind === "sqlite" &&
		resolve(a.path) === resolve(b.path)
		? openSqliteForWriting(b.path)
		: undefined;
}

/** A resumable file job: its checkpoint directory, saved state, and a sink that writes part files. */
async function resumeState(
	model: Model,
	opts: BatchRunOptions,
): Promise<{ dir: string; checkpoint: Checkpoint; sink: FileSink }> {
	const loc = parseLocation(opts.sink, "sink");
	if (loc.kind !== "file")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"--resume works with file sinks; table sinks commit the whole job at once (for exactly-once chunks on PostgreSQL use mlship batch work)",
		);
	const path = resolve(loc.path);
	const dir = `${path}.checkpoint`;
	const checkpoint = await openCheckpoint(
		dir,
		{
			source: opts.source,
			sink: path,
			keep: opts.keep ?? [],
			on_error: opts.onError ?? "fail",
		},
		{
			name: model.name,
			version: model.version ?? null,
			sha256: model.manifest.artifact.sha256,
		},
	);
	const sink = await FileSink.create(path, formatOf(path), {
		dir,
		start: checkpoint.parts,
	});
	return { dir, checkpoint, sink };
}

function describeRejected(r: RejectedRow): string {
	const where = [
		r.row !== undefined ? `row ${r.row}` : "",
		r.line !== undefined ? `line ${r.line}` : "",
		r.column ? `column '${r.column}'` : "",
	].filter(Boolean);
	return `${where.join(", ")}: ${r.error}`;
}
