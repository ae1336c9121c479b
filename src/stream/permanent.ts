// Broker errors that retrying cannot clear (credentials, permissions, a key of the wrong type, a topic or stream
// the broker will not create or accept): the processor stops on them instead of retrying forever.
import { MlshipError } from "../protocol/errors.ts";

/** What each broker says when only a change of configuration can help. Everything else is retried. */
const PERMANENT: readonly RegExp[] = [
	// Redis: wrong password or user, no password given, ACL denies the command, the key is not a stream
	/\b(WRONGPASS|NOAUTH|NOPERM|WRONGTYPE)\b/,
	/\bAUTH\b.*without any password configured/i,
	// NATS: credentials and permissions; a stream or consumer the server refuses as configured. Not "JetStream not
	// enabled": a restarting server says that until its JetStream is up again, so it is retried like an outage.
	/authorization violation|authentication expired|permissions violation|user authentication revoked/i,
	/not a valid subset of the interest subjects|subjects overlap with an existing stream/i,
	// Kafka: protocol error codes that no retry changes
	/\b(INVALID_TOPIC_EXCEPTION|INVALID_PARTITIONS|INVALID_REPLICATION_FACTOR|INVALID_CONFIG|POLICY_VIOLATION|TOPIC_AUTHORIZATION_FAILED|GROUP_AUTHORIZATION_FAILED|CLUSTER_AUTHORIZATION_FAILED|TRANSACTIONAL_ID_AUTHORIZATION_FAILED|SASL_AUTHENTICATION_FAILED|UNSUPPORTED_SASL_MECHANISM)\b/,
	/topic name is invalid|is illegal, it contains a character other than/i,
];

/** An error's message with its causes and aggregated errors (client libraries nest the broker's reason). */
function reasons(err: unknown): string[] {
	const out: string[] = [];
	const walk = (e: unknown, depth: number) => {
		if (e === null || e === undefined || depth > 5) return;
		if (typeof e !== "object") {
			out.push(String(e));
			return;
		}
		const x = e as {
			message?: unknown;
			code?: unknown;
			/** Kafka's error name (@platformatic/kafka ProtocolError), e.g. INVALID_TOPIC_EXCEPTION */
			apiId?: unknown;
			serverErrorMessage?: unknown;
			errors?: unknown;
			cause?: unknown;
		};
		const line = [x.code, x.apiId, x.message, x.serverErrorMessage]
			.filter((p) => typeof p === "string" && p !== "")
			.join(": ");
		if (line) out.push(line);
		if (Array.isArray(x.errors)) for (const i of x.errors) walk(i, depth + 1);
		walk(x.cause, depth + 1);
	};
	walk(err, 0);
	return out;
}

/**
 * When `err` is one a retry cannot clear, the error to stop with: MLSHIP_UNAVAILABLE (exit 6), naming the
 * operation and carrying the broker's own words; else undefined (retry it).
 * @example const fatal = permanentError("read", err); if (fatal) throw fatal;
 */
export function permanentError(
	what: string,
	err: unknown,
): MlshipError | undefined {
	const found = reasons(err).find((r) => PERMANENT.some((p) => p.test(r)));
	if (found === undefined) return undefined;
	return new MlshipError(
		"MLSHIP_UNAVAILABLE",
		`${what} failed and retrying cannot fix it; the broker said: ${found}`,
		{ cause: err },
	);
}
