// `mlship batch`: score a whole source into a sink (run), and the batch patterns built on it.
import { Command, Option } from "commander";
import { runPending } from "../batch/pending.ts";
import { runBatch } from "../batch/run.ts";
import { action, example, output } from "./common.ts";
import { scoringOptions, withScoringModel } from "./scoring.ts";

interface RunOpts {
	resume?: boolean;
	model: string;
	source: string;
	sink: string;
	errors?: string;
	registry?: string;
	onError: "fail" | "skip";
	maxRejected?: number;
	keep?: string[];
	chunkRows: number;
	workers?: number;
	json?: boolean;
}

const int = (s: string) => Number.parseInt(s, 10);

function runCommand(): Command {
	const cmd = new Command("run");
	scoringOptions(cmd)
		.description(
			"Score every row of a source into a sink, with the model name and version beside each prediction. Nothing is written unless the whole job succeeds. Exit codes: 0 done, 2 bad input/arguments (or a bad row with --on-error fail), 3 model or source not found, 6 database unavailable, 1 internal error.",
		)
		.requiredOption(
			"-m, --model <ref>",
			"bundle directory, .onnx file, or registered model (name, name@3, name@production)",
		)
		.requiredOption(
			"-s, --source <uri>",
			"file or glob (.parquet .csv .jsonl), duckdb:SELECT …, sqlite:PATH?table=T (or ?query=SELECT …), postgres://USER@HOST/DB?table=T (or ?query=…)",
		)
		.requiredOption(
			"-o, --sink <uri>",
			"file (.parquet .csv .jsonl), sqlite:PATH?table=T or postgres://USER@HOST/DB?table=T (created if absent)",
		)
		.option(
			"--errors <uri>",
			"error sink for rejected rows: a .jsonl file or a table URI (default: <file>.errors.jsonl, or table <T>_errors beside a table sink)",
		)
		.addOption(
			new Option(
				"--on-error <mode>",
				"a bad row stops the job (nothing written) or goes to the error sink",
			)
				.choices(["fail", "skip"])
				.default("fail"),
		)
		.option(
			"--resume",
			"file sinks: checkpoint finished chunks in <sink>.checkpoint/ and go on from there after a crash or kill (give it on every run of the job)",
		)
		.option(
			"--max-rejected <n>",
			"with --on-error skip: fail the job (nothing written) when more rows than this are rejected",
			int,
		)
		.option(
			"--keep <cols>",
			"id columns written beside each prediction ('*' = all), e.g. --keep customer_id",
			(s: string) => s.split(",").map((x) => x.trim()),
		)
		.option(
			"--json",
			"print a JSON summary (rows in, scored, rejected, model version, duration)",
		)
		.action(
			action((opts: RunOpts) =>
				withScoringModel("batch", opts, async (model, progress) => {
					const s = await runBatch(model, {
						source: opts.source,
						sink: opts.sink,
						onError: opts.onError,
						chunkRows: opts.chunkRows,
						...(opts.errors ? { errors: opts.errors } : {}),
						...(opts.keep ? { keep: opts.keep } : {}),
						...(opts.resume ? { resume: true } : {}),
						...(opts.maxRejected !== undefined
							? { maxRejected: opts.maxRejected }
							: {}),
						onProgress: (rows, total) => progress.update(rows, total),
					});
					progress.done(s.rows_in - s.rows_rejected);
					output(Boolean(opts.json), s, () => {
						let line = `${s.rows_scored.toLocaleString("en-US")} rows scored with ${s.model}${s.model_version ? `@${s.model_version}` : ""} → ${s.sink} in ${(s.duration_ms / 1000).toFixed(2)} s (${s.rows_per_second.toLocaleString("en-US")} rows/s)`;
						if (s.rows_rejected > 0)
							line += `\n${s.rows_rejected} row(s) rejected → ${s.errors}`;
						return line;
					});
				}),
			),
		);
	return example(
		cmd,
		"mlship batch run -m churn@production -s 'features/*.parquet' -o scores.parquet --keep customer_id --json",
		"mlship batch run -m churn@production -s 'postgres://app@db/prod?table=features' -o 'postgres://app@db/prod?table=scores' --keep customer_id --on-error skip",
		`mlship batch run -m ./bundle -s "sqlite:app.db?query=SELECT * FROM customers WHERE active" -o "sqlite:app.db?table=scores" --keep id`,
		`mlship batch run -m ./bundle -s "duckdb:SELECT * FROM 'a.csv' JOIN 'b.parquet' USING (id)" -o out.jsonl --keep id`,
	);
}

interface WorkOpts extends RunOpts {
	table: string;
	key: string;
	done: "mark" | "delete";
	markColumn: string;
	follow?: boolean;
	pollMs: number;
}

function workCommand(): Command {
	const cmd = new Command("work");
	scoringOptions(cmd, 1000)
		.description(
			"Pending-records pattern on PostgreSQL: claim pending rows in chunks (FOR UPDATE SKIP LOCKED), score them, and write the predictions in the transaction that marks (or deletes) them. Kill it and run it again, or run many at once on one table: every row is scored exactly once. Exits when no row is pending (or keeps polling with --follow; SIGTERM finishes the current chunk).",
		)
		.requiredOption(
			"-m, --model <ref>",
			"bundle directory, .onnx file, or registered model (name, name@3, name@production)",
		)
		.requiredOption(
			"-t, --table <uri>",
			"the table of pending rows: postgres://USER@HOST/DB?table=NAME",
		)
		.requiredOption(
			"-o, --sink <uri>",
			"predictions table in the same database: postgres://USER@HOST/DB?table=NAME (created if absent)",
		)
		.option(
			"--key <col>",
			"key column of the pending table, written beside each prediction",
			"id",
		)
		.addOption(
			new Option(
				"--done <how>",
				"what happens to a scored row: mark sets --mark-column to now() (pending = NULL), delete removes it",
			)
				.choices(["mark", "delete"])
				.default("mark"),
		)
		.option(
			"--mark-column <col>",
			"timestamptz column, NULL while pending",
			"scored_at",
		)
		.option(
			"--keep <cols>",
			"more columns written beside each prediction",
			(s: string) => s.split(",").map((x) => x.trim()),
		)
		.addOption(
			new Option(
				"--on-error <mode>",
				"a bad row rolls back its chunk and stops the worker, or goes to the error table (and counts as done)",
			)
				.choices(["fail", "skip"])
				.default("fail"),
		)
		.option(
			"--errors <uri>",
			"error table (default: <sink>_errors in the same database)",
		)
		.option("--follow", "keep polling for new pending rows instead of exiting")
		.option("--poll-ms <n>", "poll interval with --follow", int, 1000)
		.option(
			"--json",
			"print a JSON summary (rows claimed, scored, rejected, chunks, model version, duration)",
		)
		.action(
			action((opts: WorkOpts) =>
				withScoringModel("work", opts, async (model, progress) => {
					const stop = new AbortController();
					const onSignal = () => stop.abort();
					process.once("SIGTERM", onSignal);
					process.once("SIGINT", onSignal);
					try {
						const s = await runPending(model, {
							table: opts.table,
							sink: opts.sink,
							key: opts.key,
							done: opts.done,
							markColumn: opts.markColumn,
							onError: opts.onError,
							chunkRows: opts.chunkRows,
							pollMs: opts.pollMs,
							signal: stop.signal,
							...(opts.keep ? { keep: opts.keep } : {}),
							...(opts.errors ? { errors: opts.errors } : {}),
							...(opts.follow ? { follow: true } : {}),
							onChunk: (scored) => progress.update(scored),
						});
						progress.done(s.rows_scored);
						output(
							Boolean(opts.json),
							s,
							() =>
								`${s.rows_scored.toLocaleString("en-US")} pending rows scored in ${s.chunks} chunk(s) with ${s.model}${s.model_version ? `@${s.model_version}` : ""} → ${s.sink}${s.rows_rejected ? `; ${s.rows_rejected} rejected → ${opts.errors ?? `${s.sink}_errors`}` : ""}`,
						);
					} finally {
						process.off("SIGTERM", onSignal);
						process.off("SIGINT", onSignal);
					}
				}),
			),
		);
	return example(
		cmd,
		"mlship batch work -m churn@production -t 'postgres://app@db/prod?table=features' -o 'postgres://app@db/prod?table=scores' --json",
		"mlship batch work -m churn@production -t 'postgres://app@db/prod?table=inbox' -o 'postgres://app@db/prod?table=scores' --done delete --follow",
	);
}

export function batchCommand(): Command {
	const cmd = new Command("batch")
		.description(
			"Batch prediction: score sources (files, DuckDB, SQLite, PostgreSQL) into sinks",
		)
		.addCommand(runCommand())
		.addCommand(workCommand());
	return example(
		cmd,
		"mlship batch run -m churn@production -s features.parquet -o scores.parquet --keep id",
	);
}
