// `mlship batch`: score a whole source into a sink (run), and the batch patterns built on it.
import { Command, Option } from "commander";
import { Cron } from "../batch/cron.ts";
import { type Job, parseJob, readJob, runJob } from "../batch/job.ts";
import { type PendingSummary, runPending } from "../batch/pending.ts";
import type { BatchRunSummary } from "../batch/run.ts";
import { runSchedule, type ScheduleEvent } from "../batch/schedule.ts";
import type { ModelProvider } from "../dataplane/instance.ts";
import { MlshipError } from "../protocol/errors.ts";
import { redactText, redactValue } from "../protocol/redact.ts";
import {
	action,
	EXIT,
	example,
	output,
	Progress,
	untilStopped,
	wholeNumber,
} from "./common.ts";
import {
	metricsPortOption,
	runnerMetrics,
	startCommandMetrics,
} from "./metrics-port.ts";
import {
	type PayloadLogFlags,
	payloadLogConfig,
	payloadLogOptions,
} from "./payload-log.ts";
import {
	scoringOptions,
	withFollowedModel,
	withScoringModel,
} from "./scoring.ts";

interface RunOpts extends PayloadLogFlags {
	resume?: boolean;
	model?: string;
	source?: string;
	sink?: string;
	errors?: string;
	registry?: string;
	onError: "fail" | "skip";
	maxRejected?: number;
	keep?: string[];
	explain?: number;
	chunkRows: number;
	workers?: number;
	challenger?: string;
	json?: boolean;
}

/** The job a `batch run` invocation means: the job file's fields, overridden by flags given on the command line. */
function jobFrom(file: Job | undefined, opts: RunOpts, cmd: Command): Job {
	const given = (k: keyof RunOpts) =>
		opts[k] !== undefined &&
		(file === undefined || cmd.getOptionValueSource(k) === "cli");
	const raw: Record<string, unknown> = { ...(file ?? {}) };
	const fields: [keyof RunOpts, keyof Job][] = [
		["model", "model"],
		["registry", "registry"],
		["source", "source"],
		["sink", "sink"],
		["errors", "errors"],
		["onError", "on_error"],
		["maxRejected", "max_rejected"],
		["keep", "keep"],
		["explain", "explain"],
		["chunkRows", "chunk_rows"],
		["workers", "workers"],
		["resume", "resume"],
		["challenger", "challenger"],
	];
	for (const [flag, field] of fields) if (given(flag)) raw[field] = opts[flag];
	if (given("source")) delete raw.pending;
	return parseJob(raw, file ? "job (file and flags)" : "arguments");
}

function printSummary(
	json: boolean,
	s: BatchRunSummary | PendingSummary,
): void {
	output(json, s, () => {
		const where = "table" in s ? `${s.sink} (${s.chunks} chunks)` : s.sink;
		let line = `${s.rows_scored.toLocaleString("en-US")} rows scored with ${s.model}${s.model_version ? `@${s.model_version}` : ""} → ${where} in ${(s.duration_ms / 1000).toFixed(2)} s (${s.rows_per_second === null ? "every row from the checkpoint" : `${s.rows_per_second.toLocaleString("en-US")} rows/s`})`;
		if (s.rows_rejected > 0)
			line += `\n${s.rows_rejected} row(s) rejected${"errors" in s && s.errors ? ` → ${s.errors}` : ""}`;
		return line;
	});
}

function runCommand(): Command {
	const cmd = new Command("run");
	scoringOptions(payloadLogOptions(cmd))
		.description(
			"Score every row of a source into a sink, with the model name and version beside each prediction. Nothing is written unless the whole job succeeds. The job comes from flags or a job file (YAML; flags override its fields). Exit codes: 0 done, 2 bad input/arguments (or a bad row with --on-error fail), 3 model, source or job file not found, 6 database unavailable, 1 internal error.",
		)
		.argument(
			"[job]",
			"job definition file (YAML): model, source, sink, keep, on_error, …",
		)
		.option(
			"-m, --model <ref>",
			"bundle directory, .onnx file, or registered model (name, name@3, name@production)",
		)
		.option(
			"-s, --source <uri>",
			"file or glob (.parquet .csv .jsonl), duckdb:SELECT …, sqlite:PATH?table=T (or ?query=SELECT …), postgres://USER@HOST/DB?table=T (or ?query=…)",
		)
		.option(
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
			wholeNumber(0),
		)
		.option(
			"--challenger <ref>",
			"champion/challenger: a second model (e.g. churn@4) scores every row in the same pass; its predictions are written as challenger_<column> beside challenger_model and challenger_model_version",
		)
		.option(
			"--keep <cols>",
			"id columns written beside each prediction ('*' = all), e.g. --keep customer_id",
			(s: string) => s.split(",").map((x) => x.trim()),
		)
		.option(
			"--explain <k>",
			"add the K largest feature contributions of each prediction (TreeSHAP) as columns explain_1_feature, explain_1_value, …",
			wholeNumber(1),
		)
		.option(
			"--json",
			"print a JSON summary (rows in, scored, rejected, model version, duration)",
		)
		.action(
			action(async (file: string | undefined, opts: RunOpts, self: Command) => {
				const job = jobFrom(file ? await readJob(file) : undefined, opts, self);
				const progress = new Progress(
					"batch",
					undefined,
					!opts.json && process.stderr.isTTY === true,
				);
				const s = await runJob(job, {
					onProgress: (rows, total) => progress.update(rows, total),
					payloadLog: payloadLogConfig(opts),
				});
				progress.done(s.rows_in - s.rows_rejected);
				printSummary(Boolean(opts.json), s);
			}),
		);
	return example(
		cmd,
		"mlship batch run -m churn@production -s 'features/*.parquet' -o scores.parquet --keep customer_id --json",
		"mlship batch run -m ./xgb-bundle -s customers.parquet -o why.parquet --keep customer_id --explain 3",
		"mlship batch run -m churn@production -s 'postgres://app@db/prod?table=features' -o 'postgres://app@db/prod?table=scores' --keep customer_id --on-error skip",
		`mlship batch run -m ./bundle -s "sqlite:app.db?query=SELECT * FROM customers WHERE active" -o "sqlite:app.db?table=scores" --keep id`,
		`mlship batch run -m ./bundle -s "duckdb:SELECT * FROM 'a.csv' JOIN 'b.parquet' USING (id)" -o out.jsonl --keep id`,
		"mlship batch run nightly.yaml --json        # a job file (README: batch schedule and job files)",
		"mlship batch run -m churn@production --challenger churn@4 -s features.parquet -o both.parquet --keep customer_id",
		"mlship batch run -m churn@production -s features.parquet -o scores.parquet --log-payloads ./payloads --log-sample 0.01",
	);
}

interface ScheduleOpts {
	cron?: string;
	timezone?: string;
	maxRuns?: number;
	json?: boolean;
	metricsPort?: number;
}

function scheduleCommand(): Command {
	const cmd = metricsPortOption(new Command("schedule"))
		.description(
			"Run a job file on a cron schedule as a long-running process. Never two runs at once: a run that is due while the previous one still runs is skipped and reported as missed, as are runs the process slept through. One line per event (JSON with --json). SIGTERM stops scheduling and waits for a running job.",
		)
		.argument("<job>", "job definition file (YAML)")
		.option(
			"--cron <expr>",
			"when to run (default: the job's 'schedule'): 5 fields 'min hour day month weekday', 6 with seconds first, names (MON-FRI, JAN), L (last day), 5#2 (2nd Friday), or @hourly/@daily/…",
		)
		.option(
			"--timezone <iana>",
			"time zone of the schedule, e.g. Europe/Berlin (default: the job's 'timezone', else local time); a time skipped by a daylight-saving change runs right after it, a repeated one runs once",
		)
		.option("--max-runs <n>", "exit after this many runs", wholeNumber())
		.option("--json", "print events as JSON lines")
		.action(
			action(async (file: string, opts: ScheduleOpts) => {
				const job = await readJob(file);
				const expr = opts.cron ?? job.schedule;
				if (!expr)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`no schedule: give --cron "0 2 * * *" or a 'schedule' field in ${file}`,
					);
				const timezone = opts.timezone ?? job.timezone;
				const cron = new Cron(expr, timezone ? { timezone } : {});
				let failed = false;
				const metrics = await runnerMetrics(opts.metricsPort);
				// Ready from the start: the schedule's work is waiting for its next run.
				const closeMetrics = await startCommandMetrics(opts.metricsPort, {
					metrics: metrics ? [() => metrics.exposition()] : [],
					ready: () => true,
				});
				await untilStopped((signal) =>
					runSchedule(
						cron,
						() => runJob(job, { signal, ...(metrics ? { metrics } : {}) }),
						{
							signal,
							...(opts.maxRuns !== undefined ? { maxRuns: opts.maxRuns } : {}),
							onEvent: (e) => {
								if (e.event === "failed") {
									failed = true;
									metrics?.failed();
								}
								// A failed run's error may quote a source or sink URI: shown without its password.
								process.stdout.write(
									opts.json
										? `${JSON.stringify(redactValue(e))}\n`
										: `${redactText(describeEvent(e))}\n`,
								);
							},
						},
					),
				);
				await closeMetrics();
				// With --max-runs (a bounded schedule), a failed run makes the process fail too.
				if (failed && opts.maxRuns !== undefined)
					process.exitCode = EXIT.MLSHIP_INTERNAL;
			}),
		);
	return example(
		cmd,
		'mlship batch schedule nightly.yaml --cron "0 2 * * *"',
		'mlship batch schedule every-5-min.yaml --cron "*/5 * * * *" --json --metrics-port 9464',
		'mlship batch schedule weekdays.yaml --cron "0 6 * * MON-FRI" --timezone Europe/Berlin',
	);
}

function describeEvent(e: ScheduleEvent): string {
	const at = new Date().toISOString();
	switch (e.event) {
		case "scheduled":
			return `${at} next run at ${e.next}`;
		case "started":
			return `${at} run for ${e.scheduled_for} started`;
		case "finished":
			return `${at} run for ${e.scheduled_for} finished in ${(e.duration_ms / 1000).toFixed(2)} s: ${JSON.stringify(e.summary)}`;
		case "failed":
			return `${at} run for ${e.scheduled_for} FAILED (${e.code}): ${e.error}`;
		case "missed":
			return `${at} run for ${e.scheduled_for} MISSED: ${e.reason}`;
	}
}

interface WorkOpts extends Omit<RunOpts, "model" | "sink"> {
	model: string;
	sink: string;
	table: string;
	key: string;
	done: "mark" | "delete";
	markColumn: string;
	createIndex?: boolean;
	follow?: boolean;
	pollMs: number;
	metricsPort?: number;
}

function workCommand(): Command {
	const cmd = metricsPortOption(new Command("work"));
	scoringOptions(cmd, 5000)
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
		.option(
			"--create-index",
			"with --done mark: create the partial index on pending rows (key WHERE mark IS NULL) if the table has none, so claims stay fast however many rows are scored (CREATE INDEX CONCURRENTLY; needs the table's owner)",
		)
		.option("--follow", "keep polling for new pending rows instead of exiting")
		.option("--poll-ms <n>", "poll interval with --follow", wholeNumber(), 1000)
		.option(
			"--json",
			"print a JSON summary (rows claimed, scored, rejected, chunks, model version, duration)",
		)
		.action(
			action(async (opts: WorkOpts) => {
				const metrics = await runnerMetrics(opts.metricsPort);
				const closeMetrics = await startCommandMetrics(opts.metricsPort, {
					metrics: metrics ? [() => metrics.exposition()] : [],
					ready: () => metrics?.ready ?? false,
				});
				const work = async (model: ModelProvider, progress: Progress) => {
					const s = await untilStopped((signal) =>
						runPending(model, {
							table: opts.table,
							sink: opts.sink,
							key: opts.key,
							done: opts.done,
							markColumn: opts.markColumn,
							onError: opts.onError,
							chunkRows: opts.chunkRows,
							pollMs: opts.pollMs,
							signal,
							...(opts.keep ? { keep: opts.keep } : {}),
							...(opts.errors ? { errors: opts.errors } : {}),
							...(opts.follow ? { follow: true } : {}),
							...(opts.createIndex ? { createIndex: true } : {}),
							onWarning: (message) =>
								process.stderr.write(`mlship batch work: ${message}\n`),
							onChunk: (scored, rejected) => {
								progress.update(scored);
								metrics?.totals(scored, rejected);
							},
						}),
					);
					progress.done(s.rows_scored);
					printSummary(Boolean(opts.json), s);
				};
				// With --follow the worker runs for days: a registry reference follows its alias (hot swap between chunks).
				await (opts.follow
					? withFollowedModel("work", opts, work, metrics)
					: withScoringModel("work", opts, work, metrics)
				).catch((err: unknown) => {
					metrics?.failed();
					throw err;
				});
				await closeMetrics();
			}),
		);
	return example(
		cmd,
		"mlship batch work -m churn@production -t 'postgres://app@db/prod?table=features' -o 'postgres://app@db/prod?table=scores' --create-index --json",
		"mlship batch work -m churn@production -t 'postgres://app@db/prod?table=inbox' -o 'postgres://app@db/prod?table=scores' --done delete --follow --metrics-port 9464",
	);
}

export function batchCommand(): Command {
	const cmd = new Command("batch")
		.description(
			"Batch prediction: score sources (files, DuckDB, SQLite, PostgreSQL) into sinks",
		)
		.addCommand(runCommand())
		.addCommand(workCommand())
		.addCommand(scheduleCommand());
	return example(
		cmd,
		"mlship batch run -m churn@production -s features.parquet -o scores.parquet --keep id",
	);
}
