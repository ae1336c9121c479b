// Opens a payload log from its destination string: a directory (Parquet), postgres://…[?table=T] or kafka://…/topic.
import { MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import { PayloadLog, type PayloadLogOptions, type PayloadSink } from "./log.ts";
import type { ParquetSinkOptions } from "./parquet.ts";

/** A payload log's settings (serve's `log_*` settings, the `--log-*` flags of stream and batch run). */
export interface PayloadLogConfig extends ParquetSinkOptions {
	/** A directory (or `parquet:DIR`), `postgres://USER@HOST/DB[?table=T]` or `kafka://HOST:PORT/TOPIC`. */
	destination: string;
	sample?: number | undefined;
	queueSize?: number | undefined;
}

/** Where a destination string points. */
export type PayloadDestination =
	| { kind: "parquet"; dir: string }
	| { kind: "postgres"; url: string; table: string }
	| { kind: "kafka"; uri: string };

/** Parses a destination; an unknown scheme is an error naming the three kinds. */
export function parseDestination(dest: string): PayloadDestination {
	if (dest.trim() === "")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"--log-payloads needs a destination: a directory, postgres://USER@HOST/DB?table=T or kafka://HOST:PORT/TOPIC",
		);
	if (/^kafka:\/\//i.test(dest)) return { kind: "kafka", uri: dest };
	if (/^postgres(ql)?:\/\//i.test(dest)) {
		const url = new URL(dest);
		const table = url.searchParams.get("table") ?? "mlship_payload_log";
		url.searchParams.delete("table");
		return { kind: "postgres", url: url.toString(), table };
	}
	if (/^parquet:/i.test(dest))
		return { kind: "parquet", dir: dest.slice("parquet:".length) };
	const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(dest)?.[1];
	if (scheme !== undefined && scheme.length > 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--log-payloads '${redactUrl(dest)}': unknown scheme '${scheme}:'; give a directory (Parquet files), postgres://USER@HOST/DB?table=T or kafka://HOST:PORT/TOPIC`,
		);
	return { kind: "parquet", dir: dest };
}

/** The sink of a destination; each kind's module (DuckDB, pg, the Kafka client) is loaded only when used. */
export async function openPayloadSink(
	config: PayloadLogConfig,
): Promise<PayloadSink> {
	const d = parseDestination(config.destination);
	if (d.kind === "kafka")
		return (await import("./kafka.ts")).kafkaPayloadSink(d.uri);
	if (d.kind === "postgres")
		return (await import("./postgres.ts")).postgresSink(d.url, d.table);
	return (await import("./parquet.ts")).parquetSink(d.dir, config);
}

/**
 * A payload log writing to `config.destination`. It connects in the background: an unreachable destination does
 * not stop the caller from starting (status() and the metrics say so, and it is retried with backoff).
 * @example const log = await openPayloadLog({ destination: "./payloads", sample: 0.1 });
 */
export async function openPayloadLog(
	config: PayloadLogConfig,
	opts: Omit<PayloadLogOptions, "sink" | "sample" | "queueSize"> = {},
): Promise<PayloadLog> {
	return new PayloadLog({
		...opts,
		sink: await openPayloadSink(config),
		sample: config.sample,
		queueSize: config.queueSize,
	});
}
