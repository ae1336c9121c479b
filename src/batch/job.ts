// Batch job definitions (a small YAML file): one zod schema, every field documented; a job runs as `batch run` or `batch work`.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { loadModel, type Model } from "../model.ts";
import type { RunnerMetrics } from "../monitor/metrics.ts";
import type { PayloadLogConfig } from "../payload-log/open.ts";
import { MlshipError } from "../protocol/errors.ts";
import { describeIssues } from "../protocol/issues.ts";
import { type PendingSummary, runPending } from "./pending.ts";
import { type BatchRunSummary, runBatch } from "./run.ts";

export const JobSchema = z
	.object({
		model: z
			.string()
			.min(1)
			.describe(
				"bundle directory, .onnx file, or registered model (name@production is loaded fresh on every run)",
			),
		registry: z
			.string()
			.optional()
			.describe(
				"registry URI for model names (default MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
			),
		source: z
			.string()
			.optional()
			.describe(
				"file or glob, duckdb:QUERY, sqlite:PATH?table=T|query=Q, postgres://…?table=T|query=Q (a `batch run` job)",
			),
		pending: z
			.object({
				table: z
					.string()
					.describe(
						"postgres://…?table=T holding pending rows (a `batch work` job)",
					),
				key: z
					.string()
					.default("id")
					.describe("key column, written beside each prediction"),
				done: z
					.enum(["mark", "delete"])
					.default("mark")
					.describe("mark scored rows (mark_column = now()) or delete them"),
				mark_column: z
					.string()
					.default("scored_at")
					.describe("timestamptz column, NULL while pending"),
			})
			.strict()
			.optional(),
		sink: z
			.string()
			.min(1)
			.describe(
				"file (.parquet/.csv/.jsonl), sqlite:PATH?table=T or postgres://…?table=T",
			),
		errors: z
			.string()
			.optional()
			.describe("error sink: a .jsonl file or a table URI"),
		on_error: z
			.enum(["fail", "skip"])
			.default("fail")
			.describe("a bad row stops the job, or goes to the error sink"),
		max_rejected: z
			.number()
			.int()
			.min(0)
			.optional()
			.describe("with skip: more rejected rows than this fail the job"),
		keep: z
			.array(z.string())
			.optional()
			.describe("id columns written beside each prediction"),
		explain: z
			.number()
			.int()
			.min(1)
			.max(100)
			.optional()
			.describe(
				"add the top-K feature contributions of each prediction as columns explain_<i>_feature/_value (trees runtime)",
			),
		chunk_rows: z
			.number()
			.int()
			.positive()
			.optional()
			.describe("rows per model call (pending jobs: per transaction)"),
		workers: z
			.number()
			.int()
			.positive()
			.optional()
			.describe("model worker threads (default one per core)"),
		challenger: z
			.string()
			.min(1)
			.optional()
			.describe(
				"a second model (e.g. churn@4) that scores every row in the same pass; its predictions are written beside the model's as challenger_<column>, with challenger_model and challenger_model_version",
			),
		resume: z
			.boolean()
			.optional()
			.describe(
				"file sinks: checkpoint finished chunks and resume after a kill",
			),
		schedule: z
			.string()
			.optional()
			.describe(
				"cron expression used by `mlship batch schedule` when --cron is not given",
			),
		timezone: z
			.string()
			.optional()
			.describe(
				"IANA time zone of the schedule (Europe/Berlin); default: the machine's local time",
			),
	})
	.strict()
	.superRefine((j, ctx) => {
		if ((j.source === undefined) === (j.pending === undefined))
			ctx.addIssue({
				code: "custom",
				message:
					"give exactly one of 'source' (a batch run job) or 'pending' (a pending-records job)",
			});
		// A pending-records job commits chunk by chunk and is exactly-once already: these would be silently ignored.
		if (j.challenger !== undefined && j.resume === true)
			ctx.addIssue({
				code: "custom",
				path: ["challenger"],
				message:
					"a challenger run cannot resume from a checkpoint (the checkpoint records one model): remove 'resume' or 'challenger'",
			});
		if (j.pending !== undefined)
			for (const field of ["max_rejected", "resume", "challenger"] as const)
				if (j[field] !== undefined)
					ctx.addIssue({
						code: "custom",
						path: [field],
						message: `applies to a 'source' job only; a 'pending' job commits each chunk with its rejected rows (on_error: fail stops at a bad row) and is exactly-once without a checkpoint: remove '${field}'`,
					});
	});

/** What a field holds, for "sink: required — a file path or a table URI". */
const EXPECTS = {
	model: "a bundle directory, an .onnx file or a registered model (name@alias)",
	source: "a file, a glob or a table URI",
	sink: "a file path or a table URI",
	errors: "a .jsonl file or a table URI",
	"pending.table": "a table URI (postgres://USER@HOST/DB?table=T)",
	schedule: 'a cron expression ("0 2 * * *")',
};

export type Job = z.infer<typeof JobSchema>;

/** Validates a job object; errors name the field. */
export function parseJob(raw: unknown, where = "job"): Job {
	const r = JobSchema.safeParse(raw);
	if (!r.success)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid ${where}:\n  ${describeIssues(r.error, raw, { expects: EXPECTS }).join("\n  ")}`,
		);
	return r.data;
}

/**
 * Reads a job definition file.
 * @example
 * # nightly.yaml
 * model: churn@production
 * source: "postgres://app@db/prod?query=SELECT * FROM features WHERE day = current_date"
 * sink: "postgres://app@db/prod?table=scores"
 * keep: [customer_id]
 * on_error: skip
 * schedule: "0 2 * * *"
 */
export async function readJob(path: string): Promise<Job> {
	let text: string;
	try {
		text = await readFile(path, "utf8");
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`cannot read job file ${path}: ${(err as Error).message}`,
			{ cause: err },
		);
	}
	let raw: unknown;
	try {
		raw = parseYaml(text);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${path} is not valid YAML: ${(err as Error).message}`,
			{ cause: err },
		);
	}
	return parseJob(raw, `job file ${path}`);
}

/** Runs a job once: loads the model (a registry alias resolves to its current version), scores, closes the model. */
export async function runJob(
	job: Job,
	opts: {
		onProgress?: (rows: number, total: number | undefined) => void;
		signal?: AbortSignal;
		/** Serve's metrics for this run (`batch schedule --metrics-port`). */
		metrics?: RunnerMetrics;
		/** Log each scored chunk (its rows' inputs and outputs) to a payload log (`batch run --log-payloads`). */
		payloadLog?: PayloadLogConfig | undefined;
	} = {},
): Promise<BatchRunSummary | PendingSummary> {
	const model = await loadModel(job.model, {
		mode: "pool",
		...(job.registry ? { registry: job.registry } : {}),
		...(job.workers ? { workers: job.workers } : {}),
		...(opts.metrics ? { observer: opts.metrics.observer } : {}),
	});
	opts.metrics?.bind(model.name, model.version);
	let challenger: Model | undefined;
	const payloadLog =
		opts.payloadLog === undefined
			? undefined
			: await (await import("../payload-log/open.ts"))
					.openPayloadLog(opts.payloadLog)
					.catch(async (err: unknown) => {
						await model.close();
						throw err;
					});
	if (payloadLog) model.addHook(payloadLog.hook);
	const common = {
		sink: job.sink,
		onError: job.on_error,
		...(job.errors ? { errors: job.errors } : {}),
		...(job.keep ? { keep: job.keep } : {}),
		...(job.chunk_rows ? { chunkRows: job.chunk_rows } : {}),
	};
	try {
		if (job.pending)
			return await runPending(model, {
				...common,
				table: job.pending.table,
				key: job.pending.key,
				done: job.pending.done,
				markColumn: job.pending.mark_column,
				...(opts.signal ? { signal: opts.signal } : {}),
				...(opts.metrics ? { onChunk: opts.metrics.totals } : {}),
			});
		if (job.challenger !== undefined)
			challenger = await loadModel(job.challenger, {
				mode: "pool",
				...(job.registry ? { registry: job.registry } : {}),
				...(job.workers ? { workers: job.workers } : {}),
			});
		const summary = await runBatch(model, {
			...common,
			...(challenger ? { challenger } : {}),
			source: job.source as string,
			...(job.max_rejected !== undefined
				? { maxRejected: job.max_rejected }
				: {}),
			...(job.resume ? { resume: true } : {}),
			...(job.explain ? { explain: job.explain } : {}),
			...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
		});
		opts.metrics?.totals(summary.rows_scored, summary.rows_rejected);
		return summary;
	} finally {
		await model.close();
		await challenger?.close();
		await payloadLog?.close();
	}
}
