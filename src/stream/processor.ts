// The stream processor: pulls micro-batches from a source, scores them through the data plane, produces results, then acks.
import type { Row } from "../codec/table.ts";
import { explainKeys, explainOip } from "../dataplane/explain.ts";
import type {
	DataPlane,
	InferOptions,
	PredictResult,
} from "../dataplane/types.ts";
import { Backoff } from "../protocol/backoff.ts";
import { MlshipError, toMlshipError } from "../protocol/errors.ts";
import { tracer } from "../protocol/trace.ts";
import type { InferenceResponse } from "../protocol/types.ts";
import { type Columnar, DecodeThread } from "./decode.ts";
import { jsonFormat, type PayloadFormat } from "./format.ts";
import {
	type DeadLetterFormat,
	decodeRequest,
	encodeDeadLetter,
	encodeResult,
	encodeTombstone,
	requestIdOfMessage,
	type StreamRequest,
} from "./message.ts";
import { permanentError } from "./permanent.ts";
import { messageSpan } from "./trace.ts";
import type {
	InMessage,
	OutMessage,
	Refused,
	Sink,
	Source,
	Transactor,
} from "./types.ts";

export interface ProcessorOptions {
	dataPlane: DataPlane;
	/** The data plane's name for the model (its version is whatever the data plane serves now). */
	model: string;
	source: Source;
	sink: Sink;
	/** Dead letters: messages that cannot be parsed or scored. Without one they are logged and acked. */
	dlq?: Sink | undefined;
	/** Exactly-once: each batch's results, dead letters and input positions commit in one transaction (then sink/dlq/ack are not used). */
	transactor?: Transactor | undefined;
	/** Most messages taken per read (one micro-batch). Default 256. */
	batchSize?: number;
	/** Most messages read but not yet acked; reading pauses at this bound (back-pressure). Default 2048. */
	maxInFlight?: number;
	/** How long one read waits for messages. Default 500 ms. */
	waitMs?: number;
	/** Dead letters as the original record plus `__connect.errors.*` headers (default) or as a JSON envelope. */
	dlqFormat?: DeadLetterFormat;
	/** A tombstone (null value): forwarded as a tombstone for its key (default), skipped (acked), or dead-lettered. */
	tombstones?: TombstonePolicy;
	/** A result's timestamp: the input's event time (default) or the time it is produced. */
	timestamp?: "input" | "now";
	/** How payloads are read and results written. Default JSON. */
	format?: PayloadFormat;
	/** Progress and trouble (broker errors being retried, dead letters). */
	log?: (
		level: "info" | "warn" | "error",
		msg: string,
		fields?: object,
	) => void;
	/** Source of the retry delays' jitter, uniform in [0, 1). Default Math.random (tests inject their own). */
	random?: () => number;
	/**
	 * Adds the K largest feature contributions to each result: records get `explain_<i>_feature`/`explain_<i>_value`
	 * keys (as `batch run --explain`), OIP requests an `explanation` output (as `parameters.explain`).
	 */
	explain?: number | undefined;
	/**
	 * JSON payloads of at least 8 KiB (many records per message) are parsed into columns on a decode thread, so the
	 * main thread keeps to broker I/O, hand-off, results and acks (default true; false: everything on the main
	 * thread). Anything but a list of uniform records, and any record the model refuses, is decoded again on the main
	 * thread: dead letters and ids are the same either way.
	 */
	decodeThread?: boolean;
}

export type TombstonePolicy = "forward" | "skip" | "dlq";
export const TOMBSTONE_POLICIES: readonly TombstonePolicy[] = [
	"forward",
	"skip",
	"dlq",
];

/** Counters of one run. `produced + dead + skipped = acked` once drained, unless messages were left for redelivery. */
export interface StreamStats {
	consumed: number;
	produced: number;
	dead: number;
	/** Tombstones skipped (`tombstones: "skip"`). */
	skipped: number;
	/** Results the output refused for good as larger than it accepts: their inputs were dead-lettered (in `dead`). */
	tooLarge: number;
	acked: number;
	/**
	 * Messages left unacked at shutdown because the model could not score them yet (or an earlier batch was left):
	 * the broker delivers them again to the next processor. Never dead-lettered for a temporary condition.
	 */
	left: number;
	batches: number;
	/** Broker operations that failed and were retried. */
	retries: number;
	/** Results per model version that produced them. */
	versions: Record<string, number>;
	/** When the last batch of messages was read, ms since the epoch (0: none yet). */
	lastMessageAt: number;
}

/** Errors that say "try again later" rather than "this message is bad". */
const TRANSIENT = new Set([
	"MLSHIP_UNAVAILABLE",
	"MLSHIP_OVERLOADED",
	"MLSHIP_TIMEOUT",
	"MLSHIP_CLOSED",
]);
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 2000;

interface Scored {
	results: OutMessage[];
	/** The input of each result. */
	inputs: InMessage[];
	dead: OutMessage[];
	/** The model version of each result (undefined: a forwarded tombstone). */
	versions: (string | undefined)[];
	skipped: number;
	tooLarge: number;
}

type Outcome =
	| { result: OutMessage; version: string | undefined }
	| { dead: OutMessage }
	| { skipped: true };

/** A batch's scoring and producing, settled: results, a failure, or neither (left for redelivery). */
interface Settled {
	s?: Scored;
	err?: unknown;
}

/** Thrown by scoring when the processor stops while a message can only be retried: its batch is left unacked. */
class LeftForRedelivery extends Error {}

/** A dead letter as a log field: its error headers and payload as text (bytes never reach a log raw). */
function deadLetterLog(d: OutMessage): object {
	return {
		headers: Object.fromEntries(
			d.headers
				.filter(
					([n]) => n.startsWith("__connect.errors.") || n === "mlship-error",
				)
				.map(([n, v]) => [n, v?.toString("utf8")]),
		),
		payload: d.value === null ? null : d.value.toString("utf8"),
	};
}

/**
 * Runs a stream: read up to `batchSize` messages, score each through the data plane (concurrent requests are
 * batched by the model's scheduler), produce the results and dead letters, and only then ack — acks go in
 * read order, so a crash at any point leaves every unacked message to be delivered again (at-least-once).
 * Reading pauses while `maxInFlight` messages are unacked. Broker errors are retried with backoff.
 * `stop()` stops reading; `run()` resolves after the in-flight work is produced and acked.
 * @example const p = new StreamProcessor({ dataPlane, model: "iris", source, sink }); process.once("SIGTERM", () => p.stop()); await p.run();
 */
export class StreamProcessor {
	readonly stats: StreamStats = {
		consumed: 0,
		produced: 0,
		dead: 0,
		skipped: 0,
		tooLarge: 0,
		acked: 0,
		left: 0,
		batches: 0,
		retries: 0,
		versions: {},
		lastMessageAt: 0,
	};
	readonly #o: Required<
		Omit<
			ProcessorOptions,
			"dlq" | "log" | "transactor" | "random" | "explain" | "decodeThread"
		>
	> &
		Pick<ProcessorOptions, "dlq" | "log" | "transactor" | "random" | "explain">;
	#stopping = false;
	#wake: (() => void) | undefined;
	#inFlight = 0;
	#ackTail: Promise<void> = Promise.resolve();
	#failure: unknown;
	/** A batch was left unacked at shutdown: no later batch may be acked past it. */
	#left = false;
	/** JSON payloads of many records are parsed here, off the main thread (undefined: other formats, or turned off). */
	readonly #decoder: DecodeThread | undefined;

	constructor(opts: ProcessorOptions) {
		this.#o = {
			batchSize: 256,
			maxInFlight: 2048,
			waitMs: 500,
			dlqFormat: "connect",
			tombstones: "forward",
			timestamp: "input",
			format: jsonFormat,
			...opts,
		};
		this.#decoder =
			opts.decodeThread !== false && this.#o.format.name === "json"
				? new DecodeThread()
				: undefined;
	}

	/** Payloads the decode thread parsed (the rest were decoded on the main thread). */
	get decodedOffThread(): number {
		return this.#decoder?.decoded ?? 0;
	}

	/** Stops reading; in-flight messages are still produced and acked. */
	stop(): void {
		this.#stopping = true;
		this.#wake?.();
	}

	get stopping(): boolean {
		return this.#stopping;
	}

	async run(): Promise<StreamStats> {
		try {
			return await this.#run();
		} finally {
			await this.#decoder?.close();
		}
	}

	async #run(): Promise<StreamStats> {
		const { source, batchSize, maxInFlight, waitMs } = this.#o;
		const readDelay = this.#newBackoff();
		let readFailures = 0;
		while (!this.#stopping && this.#failure === undefined) {
			const room = Math.min(batchSize, maxInFlight - this.#inFlight);
			if (room <= 0) {
				await new Promise<void>((r) => {
					this.#wake = r;
				});
				continue;
			}
			let batch: InMessage[] | null;
			try {
				batch = await source.read(room, waitMs);
			} catch (err) {
				const fatal = permanentError("read", err);
				if (fatal) {
					this.#failure ??= fatal;
					break;
				}
				await this.#backoff("read", err, readDelay, readFailures++);
				continue;
			}
			readDelay.reset();
			readFailures = 0;
			if (batch === null) break;
			if (batch.length === 0) continue;
			this.stats.consumed += batch.length;
			this.stats.batches++;
			this.stats.lastMessageAt = Date.now();
			this.#inFlight += batch.length;
			const scored = this.#scoreAll(batch);
			const tx = this.#o.transactor;
			// Without a transaction, results are produced as soon as they are scored; acks still wait their turn.
			// Settled at once (never a rejection left waiting for its turn in the ack chain, which Node would report as
			// unhandled): a batch left for redelivery comes back as `undefined`.
			const produced = (
				tx ? scored : scored.then((s) => this.#produce(s))
			).then(
				(s): Settled => ({ s }),
				(err: unknown): Settled =>
					err instanceof LeftForRedelivery ? {} : { err },
			);
			const prev = this.#ackTail;
			this.#ackTail = (async () => {
				await prev;
				const { s, err } = await produced;
				if (err !== undefined) throw err;
				if (s === undefined) this.#left = true;
				// Acking a later batch would commit past the one left behind (Kafka offsets), so none is acked; nor
				// after a batch failed for good (the stream is stopping with that error).
				if (this.#left || this.#failure !== undefined || s === undefined) {
					this.stats.left += batch.length;
					return;
				}
				if (tx) {
					await this.#retry("transaction", async () => {
						// Results the output would refuse for their size: the batch again, with those inputs dead-lettered.
						for (;;) {
							const refused = await tx.commit(s.results, s.dead, batch);
							if (!refused || refused.length === 0) return;
							this.#refuse(s, refused);
						}
					});
					this.#count(s);
				} else await this.#retry("ack", () => source.ack(batch));
				this.stats.acked += batch.length;
			})()
				.catch((err) => {
					this.#failure ??= err;
				})
				.finally(() => {
					this.#inFlight -= batch.length;
					const w = this.#wake;
					this.#wake = undefined;
					w?.();
				});
		}
		await this.#ackTail;
		if (this.#failure !== undefined) throw this.#failure;
		if (this.stats.left > 0)
			this.#o.log?.(
				"warn",
				"stopped with messages the model could not score yet: left unacked for redelivery",
				{ left: this.stats.left },
			);
		return this.stats;
	}

	async #scoreAll(batch: InMessage[]): Promise<Scored> {
		const pre = this.#decoder && (await this.#decoder.decode(batch));
		const outcomes = await Promise.all(
			batch.map((m, i) => this.#score(m, pre?.[i])),
		);
		const s: Scored = {
			results: [],
			inputs: [],
			dead: [],
			versions: [],
			skipped: 0,
			tooLarge: 0,
		};
		outcomes.forEach((o, i) => {
			if ("dead" in o) s.dead.push(o.dead);
			else if ("skipped" in o) s.skipped++;
			else {
				s.results.push(o.result);
				s.inputs.push(batch[i] as InMessage);
				s.versions.push(o.version);
			}
		});
		return s;
	}

	async #produce(s: Scored): Promise<Scored> {
		const { sink, dlq } = this.#o;
		if (s.results.length > 0) {
			const refused = await this.#retry("produce", () => sink.write(s.results));
			if (refused && refused.length > 0) this.#refuse(s, refused);
		}
		if (s.dead.length > 0 && dlq) {
			const refused = await this.#retry("dead-letter", () => dlq.write(s.dead));
			// Nowhere left to put it: said loudly, and the stream goes on (retrying cannot make it fit).
			for (const r of refused ?? [])
				this.#o.log?.(
					"error",
					"message dropped: the dead-letter output refuses it as too large",
					{
						reason: r.reason,
						dead_letter: deadLetterLog(s.dead[r.index] as OutMessage),
					},
				);
		}
		this.#count(s);
		return s;
	}

	/** Results the output refused for their size: their inputs become dead letters saying so. */
	#refuse(s: Scored, refused: readonly Refused[]): void {
		const gone = new Set<number>();
		for (const r of refused) {
			const m = s.inputs[r.index];
			if (m === undefined || gone.has(r.index)) continue;
			gone.add(r.index);
			const e = new MlshipError("MLSHIP_PAYLOAD_TOO_LARGE", r.reason);
			this.#o.log?.(
				"warn",
				"result too large for the output: input dead-lettered",
				{
					id: m.id,
					reason: r.reason,
				},
			);
			s.dead.push(encodeDeadLetter(m, e, this.#o.dlqFormat));
		}
		const keep = (_: unknown, i: number) => !gone.has(i);
		s.results = s.results.filter(keep);
		s.inputs = s.inputs.filter(keep);
		s.versions = s.versions.filter(keep);
		s.tooLarge += gone.size;
	}

	/** Counts a produced batch; dead letters with nowhere to go are logged, whichever path produced the batch. */
	#count(s: Scored): void {
		if (!this.#o.dlq)
			for (const d of s.dead)
				this.#o.log?.(
					"error",
					"message dropped: cannot be scored and there is no --dlq",
					{ dead_letter: deadLetterLog(d) },
				);
		this.stats.produced += s.results.length;
		this.stats.dead += s.dead.length;
		this.stats.skipped += s.skipped;
		this.stats.tooLarge += s.tooLarge;
		for (const v of s.versions)
			if (v !== undefined)
				this.stats.versions[v] = (this.stats.versions[v] ?? 0) + 1;
	}

	/**
	 * Scores one message; transient failures (model reloading, queue full) are retried, bad input is a dead letter.
	 * `pre`: its records as the decode thread read them (else it is decoded here).
	 */
	async #score(m: InMessage, pre?: Columnar): Promise<Outcome> {
		const { dlqFormat } = this.#o;
		if (m.value === null && this.#o.tombstones !== "dlq")
			return this.#o.tombstones === "skip"
				? { skipped: true }
				: { result: this.#stamp(encodeTombstone(m)), version: undefined };
		let req: StreamRequest;
		// One check when tracing is off.
		const t0 = tracer() && performance.now();
		try {
			req = pre
				? {
						kind: "columns",
						id: requestIdOfMessage(m, pre.bodyId),
						columns: pre.columns,
					}
				: decodeRequest(m, this.#o.format);
		} catch (err) {
			return { dead: encodeDeadLetter(m, toMlshipError(err), dlqFormat) };
		}
		const { dataPlane: dp, model } = this.#o;
		const span = t0 === undefined ? undefined : messageSpan(m, model, t0);
		const opts: InferOptions = span
			? { requestId: req.id, trace: span }
			: { requestId: req.id };
		const delay = this.#newBackoff();
		for (let attempt = 0; ; attempt++) {
			try {
				const res: PredictResult | InferenceResponse =
					req.kind === "oip"
						? await dp.infer(
								model,
								undefined,
								explainOip(req.request, this.#o.explain),
								opts,
							)
						: await this.#predict(
								req.kind === "records"
									? req.rows
									: // Typed-array columns: the data plane's table encoder reads any ArrayLike column.
										(req.columns as Record<string, unknown[]>),
								opts,
							);
				const t1 = span && performance.now();
				const result = this.#stamp(encodeResult(m, req, res, this.#o.format));
				span?.record("encode", t1 as number, performance.now());
				span?.end();
				return { result, version: res.model_version ?? "" };
			} catch (err) {
				const e = toMlshipError(err);
				// Refused as columns: decoded again and scored on the main path, whose error texts dead letters carry.
				if (req.kind === "columns" && e.code === "MLSHIP_INVALID_INPUT") {
					span?.end();
					return this.#score(m);
				}
				if (!TRANSIENT.has(e.code) || this.#stopping) {
					span?.fail(e);
					span?.end();
				}
				if (!TRANSIENT.has(e.code))
					return { dead: encodeDeadLetter(m, e, dlqFormat) };
				// A temporary condition is never a dead letter: at shutdown the message goes back to the broker.
				if (this.#stopping) throw new LeftForRedelivery(e.message);
				await this.#backoff("score", e, delay, attempt);
			}
		}
	}

	/** Predicts records; with `explain`, the same version explains them and each prediction gets the top-K keys. */
	async #predict(
		rows: Row[] | Record<string, unknown[]>,
		opts: InferOptions,
	): Promise<PredictResult> {
		const { dataPlane: dp, model, explain: k } = this.#o;
		const res = await dp.predict(model, undefined, rows, opts);
		if (!k) return res;
		if (!dp.explain)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				"this data plane cannot explain predictions; run without --explain",
			);
		const why = await dp.explain(model, res.model_version, rows, { top: k });
		return {
			...res,
			predictions: res.predictions.map((p, i) => ({
				...p,
				...explainKeys(why.explanations[i] ?? [], k),
			})),
		};
	}

	/** With `timestamp: "now"` a result takes the time it is produced instead of the input's event time. */
	#stamp(out: OutMessage): OutMessage {
		if (this.#o.timestamp === "now") out.timestamp = undefined;
		return out;
	}

	/**
	 * Retries a broker operation until it succeeds: giving up would lose the message or break ack order. An error
	 * no retry can clear (bad credentials, wrong key type) stops the processor instead (nothing is acked past it).
	 */
	async #retry<T>(what: string, op: () => Promise<T>): Promise<T> {
		const delay = this.#newBackoff();
		for (let attempt = 0; ; attempt++) {
			try {
				return await op();
			} catch (err) {
				const fatal = permanentError(what, err);
				if (fatal) throw fatal;
				await this.#backoff(what, err, delay, attempt);
			}
		}
	}

	#newBackoff(): Backoff {
		return new Backoff({
			minMs: BACKOFF_MIN_MS,
			maxMs: BACKOFF_MAX_MS,
			...(this.#o.random ? { random: this.#o.random } : {}),
		});
	}

	/** Waits a jittered delay before a retry (processors that fail together do not retry in lockstep). */
	async #backoff(
		what: string,
		err: unknown,
		delay: Backoff,
		attempt: number,
	): Promise<void> {
		this.stats.retries++;
		const e: MlshipError = toMlshipError(err);
		if (attempt === 0 || attempt % 20 === 0)
			this.#o.log?.("warn", `${what} failed, retrying`, {
				error: e.message,
				cause: e.cause instanceof Error ? e.cause.message : undefined,
				attempt,
			});
		const ms = delay.next();
		await new Promise((r) => setTimeout(r, ms));
	}
}
