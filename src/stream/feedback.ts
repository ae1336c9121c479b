// The feedback consumer of `mlship stream --feedback-from`: feedback messages from Kafka, NATS or Redis applied to the data plane by request id.

import type { DataPlane } from "../dataplane/types.ts";
import type { FeedbackItem } from "../feedback/types.ts";
import { toMlshipError } from "../protocol/errors.ts";
import { permanentError } from "./permanent.ts";
import type { InMessage, Source } from "./types.ts";

/** Counters of a feedback consumer. */
export interface FeedbackStats {
	/** Messages read. */
	consumed: number;
	/** Feedback items applied. */
	applied: number;
	/** Messages refused (not JSON, unknown or expired id, bad reward or truth): logged and acked, never retried. */
	rejected: number;
}

export interface FeedbackConsumerOptions {
	dataPlane: DataPlane;
	/** The data plane's name of the model the feedback is about. */
	model: string;
	source: Source;
	log?: (
		level: "info" | "warn" | "error",
		msg: string,
		fields?: object,
	) => void;
	/** Most messages per read. Default 256. */
	batchSize?: number;
	/** How long one read waits. Default 500 ms. */
	waitMs?: number;
}

/** The items of one feedback message: `{id, reward | truth, version?}`, a list of them, or `{"feedback": [...]}`. */
function itemsOf(m: InMessage): FeedbackItem[] {
	if (m.value === null || m.value.length === 0)
		throw new Error("an empty feedback message");
	const body: unknown = JSON.parse(m.value.toString("utf8"));
	if (Array.isArray(body)) return body as FeedbackItem[];
	if (body !== null && typeof body === "object") {
		const list = (body as { feedback?: unknown }).feedback;
		return Array.isArray(list)
			? (list as FeedbackItem[])
			: [body as FeedbackItem];
	}
	throw new Error(
		`expected a JSON object or a list of them, got ${typeof body}`,
	);
}

/**
 * Reads feedback messages and applies each (all its items or none) to the data plane's feedback join; a message
 * that cannot be applied is logged and acked (feedback is advice: a bad one must not stop the stream). Acks after
 * applying, so a crash re-applies at most the unacked batch (its ids then answer 409 "already received" and are
 * skipped).
 * @example const c = new FeedbackConsumer({ dataPlane, model: "churn", source }); void c.run(); ... c.stop();
 */
export class FeedbackConsumer {
	readonly stats: FeedbackStats = { consumed: 0, applied: 0, rejected: 0 };
	readonly #o: FeedbackConsumerOptions;
	#stopping = false;

	constructor(opts: FeedbackConsumerOptions) {
		this.#o = opts;
	}

	stop(): void {
		this.#stopping = true;
	}

	async run(): Promise<FeedbackStats> {
		const { source, dataPlane: dp, model } = this.#o;
		if (!dp.feedback)
			throw new Error("the data plane takes no feedback (feedback is off)");
		let failures = 0;
		while (!this.#stopping) {
			let batch: InMessage[] | null;
			try {
				batch = await source.read(
					this.#o.batchSize ?? 256,
					this.#o.waitMs ?? 500,
				);
				failures = 0;
			} catch (err) {
				const fatal = permanentError("feedback read", err);
				if (fatal) throw fatal;
				if (failures++ % 20 === 0)
					this.#o.log?.("warn", "feedback read failed, retrying", {
						error: toMlshipError(err).message,
					});
				await new Promise((r) =>
					setTimeout(r, Math.min(2000, 50 * 2 ** Math.min(failures, 6))),
				);
				continue;
			}
			if (batch === null) break;
			if (batch.length === 0) continue;
			this.stats.consumed += batch.length;
			for (const m of batch) {
				try {
					this.stats.applied += dp.feedback(model, itemsOf(m)).accepted;
				} catch (err) {
					this.stats.rejected++;
					this.#o.log?.("warn", "feedback message refused", {
						error: toMlshipError(err).message,
						origin: m.origin,
					});
				}
			}
			await source.ack(batch);
		}
		return this.stats;
	}
}
