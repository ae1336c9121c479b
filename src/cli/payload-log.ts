// The --log-payloads flags shared by serve, stream and batch run, and the payload log they open.
import type { Command } from "commander";
import type { PayloadLogConfig } from "../payload-log/open.ts";
import { parseDuration } from "../protocol/duration.ts";
import { MlshipError } from "../protocol/errors.ts";
import { parseBytes } from "../server/settings.ts";

/** The flags as commander parses them. */
export interface PayloadLogFlags {
	logPayloads?: string;
	logSample?: string;
	logQueueSize?: string;
	logRotateSize?: string;
	logRotateInterval?: string;
	logRetention?: string;
}

/** Adds `--log-payloads <dest>` and its companions. */
export function payloadLogOptions(cmd: Command): Command {
	return cmd
		.option(
			"--log-payloads <dest>",
			"log each prediction (request id, model, version, inputs, outputs, latency) to a directory of Parquet files, postgres://USER@HOST/DB?table=T or kafka://HOST:PORT/TOPIC; read it back with `mlship logs query`",
		)
		.option(
			"--log-sample <rate>",
			"share of predictions logged, 0..1 (default 1)",
		)
		.option(
			"--log-queue-size <n>",
			"payload-log records waiting to be written; past it they are dropped and counted (default 10000)",
		)
		.option(
			"--log-rotate-size <size>",
			"Parquet: start a new file at this size (default 64MiB)",
		)
		.option(
			"--log-rotate-interval <duration>",
			"Parquet: start a new file at least this often (default 1m)",
		)
		.option(
			"--log-retention <duration>",
			"Parquet: delete log files older than this, e.g. 7d (default: keep)",
		);
}

/** The flags as serve's settings fields (validated with the other settings). */
export function payloadLogSettings(
	f: PayloadLogFlags,
): Record<string, unknown> {
	return {
		log_payloads: f.logPayloads,
		log_sample: f.logSample,
		log_queue_size: f.logQueueSize,
		log_rotate_size: f.logRotateSize,
		log_rotate_interval: f.logRotateInterval,
		log_retention: f.logRetention,
	};
}

/** The flags as a payload log's config (stream, batch run); undefined without --log-payloads. */
export function payloadLogConfig(
	f: PayloadLogFlags,
): PayloadLogConfig | undefined {
	if (f.logPayloads === undefined) return undefined;
	const sample = f.logSample === undefined ? 1 : Number(f.logSample);
	if (!(sample >= 0 && sample <= 1) || f.logSample?.trim() === "")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--log-sample must be a number from 0 to 1, got '${f.logSample}'`,
		);
	const queue = f.logQueueSize === undefined ? 10_000 : Number(f.logQueueSize);
	if (!Number.isInteger(queue) || queue < 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--log-queue-size must be a whole number ≥ 1, got '${f.logQueueSize}'`,
		);
	return {
		destination: f.logPayloads,
		sample,
		queueSize: queue,
		rotateBytes:
			f.logRotateSize === undefined ? undefined : parseBytes(f.logRotateSize),
		rotateMs:
			f.logRotateInterval === undefined
				? undefined
				: parseDuration(f.logRotateInterval, "--log-rotate-interval"),
		retentionMs:
			f.logRetention === undefined
				? undefined
				: parseDuration(f.logRetention, "--log-retention"),
	};
}
