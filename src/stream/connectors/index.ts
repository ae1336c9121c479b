// Opens a connector by URI: kafka://, nats://, redis://, or stdio (`-`) / a JSON-lines file.
import { MlshipError } from "../../protocol/errors.ts";
import { redactUrl } from "../../protocol/redact.ts";
import type { ConnectorOptions, Sink, SinkOptions, Source } from "../types.ts";
import { jsonlSink, jsonlSource } from "./jsonl.ts";

/** The JSON-lines file path of a `file:` URI or bare path; undefined for stdio (`-`, `stdio:`). */
function filePath(uri: string): string | undefined {
	if (uri === "-" || /^stdio:(\/\/)?$/.test(uri)) return undefined;
	if (uri.startsWith("file://"))
		return decodeURIComponent(new URL(uri).pathname);
	if (uri.startsWith("file:")) return uri.slice(5);
	return uri;
}

function scheme(uri: string): string {
	const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
	const raw = m?.[1]?.toLowerCase() ?? "file";
	// TLS spellings of the same connectors: rediss:// (Redis's own), tls:// (NATS's own).
	const s = raw === "rediss" ? "redis" : raw === "tls" ? "nats" : raw;
	if (!["kafka", "nats", "redis", "file", "stdio"].includes(s))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': unknown connector '${s}://'; use kafka://host:port/topic, nats:// or tls://host:port/stream/subject, redis:// or rediss://host:port/stream, a JSON-lines file, or - for stdin/stdout`,
		);
	return s;
}

/** Throws MLSHIP_INVALID_ARGUMENT (saying what is accepted) for a URI no connector takes. */
export function checkUri(uri: string): void {
	scheme(uri);
}

/** Opens the source a `--from` URI names. */
export async function openSource(
	uri: string,
	opts: ConnectorOptions,
): Promise<Source> {
	switch (scheme(uri)) {
		case "redis":
			return (await import("./redis.ts")).redisSource(uri, opts);
		case "nats":
			return (await import("./nats.ts")).natsSource(uri, opts);
		case "kafka":
			return (await import("./kafka.ts")).kafkaSource(uri, opts);
		default:
			return jsonlSource(filePath(uri));
	}
}

/** Opens the sink a `--to`/`--dlq` URI names. */
export async function openSink(
	uri: string,
	opts: SinkOptions = {},
): Promise<Sink> {
	switch (scheme(uri)) {
		case "redis":
			return (await import("./redis.ts")).redisSink(uri);
		case "nats":
			return (await import("./nats.ts")).natsSink(uri);
		case "kafka":
			return (await import("./kafka.ts")).kafkaSink(uri, opts);
		default:
			return jsonlSink(filePath(uri));
	}
}

/** Whether a URI is stdin/stdout (then logs and summaries must stay off stdout). */
export function isStdio(uri: string): boolean {
	return (
		scheme(uri) !== "redis" &&
		scheme(uri) !== "nats" &&
		scheme(uri) !== "kafka" &&
		filePath(uri) === undefined
	);
}

/** Whether a URI carries headers and keys (a broker), or only the payload (a JSON-lines file, stdio). */
export function carriesHeaders(uri: string): boolean {
	const s = scheme(uri);
	return s === "kafka" || s === "nats" || s === "redis";
}
