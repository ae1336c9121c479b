// What a running `mlship stream` reports on its --metrics-port at GET /status (the dashboard's Servers page shows it).
import { redactUrl } from "../protocol/redact.ts";
import type { RunningStream } from "./run.ts";

/** The JSON of `GET /status` on a stream processor's metrics port. */
export interface StreamStatus {
	pattern: "stream";
	/** The reference it serves (`churn@production`) and the version it loaded first. */
	model: string;
	version: string | null;
	/** Versions that produced results, with their counts (a followed alias swaps versions live). */
	versions: Record<string, number>;
	/** Source and sink URIs, passwords replaced by `***`. */
	from: string;
	to: string;
	group: string | null;
	/** The model is loaded and messages are being read. */
	ready: boolean;
	stopping: boolean;
	consumed: number;
	produced: number;
	/** Messages dead-lettered (could not be parsed or scored). */
	dead: number;
	/** Broker operations that failed and were retried. */
	retries: number;
	/** Read but not yet acknowledged. */
	inFlight: number;
	/** When the last message was read (ISO 8601), or null. */
	lastMessageAt: string | null;
	/** Feedback joined to results, with --feedback-from. */
	feedback?: unknown;
}

/** The status of `running` (undefined while the model loads). */
export function streamStatus(
	running: RunningStream | undefined,
	where: { model: string; from: string; to: string },
): StreamStatus {
	const s = running?.stats;
	return {
		pattern: "stream",
		model: where.model,
		version: running?.version ?? null,
		versions: { ...(s?.versions ?? {}) },
		from: redactUrl(where.from),
		to: redactUrl(where.to),
		group: running?.group ?? null,
		ready: running?.ready() ?? false,
		stopping: running?.stopping ?? false,
		consumed: s?.consumed ?? 0,
		produced: s?.produced ?? 0,
		dead: s?.dead ?? 0,
		retries: s?.retries ?? 0,
		inFlight: s ? Math.max(0, s.consumed - s.acked) : 0,
		lastMessageAt:
			s && s.lastMessageAt > 0 ? new Date(s.lastMessageAt).toISOString() : null,
		...(running?.feedback !== undefined && { feedback: running.feedback }),
	};
}
