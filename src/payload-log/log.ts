// The payload log: samples predictions, queues their records (bounded) and writes them to a destination in the
// background, dropping and counting under overload or while the destination is down; it never blocks a prediction.
import { Counter, Gauge, Registry } from "prom-client";
import type { PredictCall } from "../dataplane/instance.ts";
import { Backoff } from "../protocol/backoff.ts";
import { type PayloadRecord, recordBytes, toRecord } from "./record.ts";

/** Where records go: a Parquet directory, a PostgreSQL table, a Kafka topic. */
export interface PayloadSink {
	/** "parquet", "postgres" or "kafka". */
	readonly kind: string;
	/** The destination as it may be shown (no credentials). */
	readonly where: string;
	/** Connects and creates what is missing (table, topic, directory); throws when unreachable (retried). */
	open(): Promise<void>;
	/**
	 * Stores records (resolves once they are stored, or buffered for the next file for Parquet); throws to be
	 * retried. Resolves with the number of records the destination refused for good (e.g. larger than a Kafka topic
	 * accepts): those are not retried but dropped and counted (`too_large`), and the others count as written.
	 */
	// biome-ignore lint/suspicious/noConfusingVoidType: a sink that never refuses a record resolves with nothing
	write(records: readonly PayloadRecord[]): Promise<number | void>;
	/** Flushes what is buffered and disconnects. */
	close(): Promise<void>;
}

export interface PayloadLogOptions {
	sink: PayloadSink;
	/** Share of predictions logged, 0..1. Default 1 (every one). */
	sample?: number | undefined;
	/** Most records waiting to be written; past it new records are dropped and counted. Default 10 000. */
	queueSize?: number | undefined;
	/**
	 * Most bytes waiting to be written, counted as recordBytes does (the records' text plus a per-record overhead,
	 * which is what they take in memory). Default 64 MiB.
	 */
	queueBytes?: number | undefined;
	/** Records per write. Default 500. */
	batchSize?: number | undefined;
	/**
	 * How long records gather before a write that is not full, ms: one write per batch, not per prediction.
	 * Default 100.
	 */
	flushMs?: number | undefined;
	/** Retry delays while the destination fails. Default 100 ms … 30 s. */
	backoff?: { minMs: number; maxMs: number } | undefined;
	/** Uniform in [0, 1): the sampling draw (tests inject it). Default Math.random. */
	random?: (() => number) | undefined;
	/** Told of each failure to open or write, with the retry delay (for the server's log); undefined when records were refused for good and dropped. */
	onError?: ((err: Error, retryInMs: number | undefined) => void) | undefined;
	/** Told when the destination is reachable again after a failure. */
	onRecover?: (() => void) | undefined;
}

/** The log's state, as readiness details show it. */
export interface PayloadLogStatus {
	destination: string;
	available: boolean;
	reason?: string;
	queued: number;
	/** Bytes the queued records are counted at (recordBytes); never above the budget. */
	queued_bytes: number;
	written: number;
	dropped: number;
}

/** Drop reasons: `queue_full` (overload, or the destination is down long enough), `closed` (left at shutdown), `encode`, `too_large` (refused by the destination for good). */
type DropReason = "queue_full" | "closed" | "encode" | "too_large";

const DEFAULT_QUEUE = 10_000;
const DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024;
const DEFAULT_BATCH = 500;

/**
 * A payload log over one sink. Pass `hook` as a data plane hook (DataPlaneOptions.hooks or ModelInstance.addHook):
 * it samples, checks the queue's room before decoding anything, and enqueues; one background loop writes.
 * @example const log = new PayloadLog({ sink: await openPayloadSink("./payloads") }); const dp = await createDataPlane({ models, hooks: [log.hook] });
 */
export class PayloadLog {
	readonly registry = new Registry();
	readonly #sink: PayloadSink;
	readonly #sample: number;
	readonly #random: () => number;
	readonly #queueSize: number;
	readonly #queueBytes: number;
	readonly #batch: number;
	readonly #flushMs: number;
	readonly #backoff: Backoff;
	readonly #onError: PayloadLogOptions["onError"];
	readonly #onRecover: PayloadLogOptions["onRecover"];
	#queue: PayloadRecord[] = [];
	#bytes = 0;
	#written = 0;
	#droppedCount = 0;
	#opened = false;
	#available = true;
	#reason: string | undefined;
	#closing = false;
	#wake: (() => void) | undefined;
	#sleep: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
	readonly #loop: Promise<void>;

	readonly #dropped = new Counter({
		name: "mlship_payload_log_dropped_total",
		help: "Payload-log records dropped, by reason (queue_full: overload or the destination down; closed: still queued at shutdown; encode: could not be decoded; too_large: refused by the destination for good, e.g. larger than the Kafka topic accepts)",
		labelNames: ["reason"] as const,
		registers: [this.registry],
	});
	readonly #writtenTotal = new Counter({
		name: "mlship_payload_log_written_total",
		help: "Payload-log records written to the destination",
		registers: [this.registry],
	});
	readonly #bytesTotal = new Counter({
		name: "mlship_payload_log_written_bytes_total",
		help: "JSON bytes of the payload-log records written (inputs and outputs as JSON, plus the ids)",
		registers: [this.registry],
	});
	readonly #errors = new Counter({
		name: "mlship_payload_log_write_errors_total",
		help: "Failed attempts to reach or write to the payload-log destination (each is retried with backoff)",
		registers: [this.registry],
	});

	constructor(opts: PayloadLogOptions) {
		const sample = opts.sample ?? 1;
		if (!(sample >= 0 && sample <= 1))
			throw new RangeError(
				`payload log: the sample rate must be between 0 and 1, got ${sample}`,
			);
		this.#sink = opts.sink;
		this.#sample = sample;
		this.#random = opts.random ?? Math.random;
		this.#queueSize = Math.max(1, opts.queueSize ?? DEFAULT_QUEUE);
		this.#queueBytes = Math.max(1, opts.queueBytes ?? DEFAULT_QUEUE_BYTES);
		this.#batch = Math.max(1, opts.batchSize ?? DEFAULT_BATCH);
		this.#flushMs = Math.max(0, opts.flushMs ?? 100);
		this.#backoff = new Backoff(opts.backoff ?? { minMs: 100, maxMs: 30_000 });
		this.#onError = opts.onError;
		this.#onRecover = opts.onRecover;
		const self = this;
		new Gauge({
			name: "mlship_payload_log_available",
			help: "1 while the payload-log destination accepts writes, 0 while it fails (records queue, then drop)",
			registers: [this.registry],
			collect() {
				this.set(self.#available ? 1 : 0);
			},
		});
		new Gauge({
			name: "mlship_payload_log_queue_depth",
			help: "Payload-log records waiting to be written",
			registers: [this.registry],
			collect() {
				this.set(self.#queue.length);
			},
		});
		new Gauge({
			name: "mlship_payload_log_queue_bytes",
			help: "Bytes of the payload-log records waiting to be written (their text plus a per-record overhead; bounded by the queue's byte budget)",
			registers: [this.registry],
			collect() {
				this.set(self.#bytes);
			},
		});
		for (const r of ["queue_full", "closed", "encode", "too_large"] as const)
			this.#dropped.labels(r).inc(0);
		this.#loop = this.#run();
	}

	/** The data plane hook (bound): samples, then enqueues the call's record or counts it dropped. Never throws. */
	readonly hook = (call: PredictCall): void => {
		if (this.#sample < 1 && !(this.#random() < this.#sample)) return;
		if (this.#closing) {
			this.#drop("closed");
			return;
		}
		if (
			this.#queue.length >= this.#queueSize ||
			this.#bytes >= this.#queueBytes
		) {
			this.#drop("queue_full");
			return;
		}
		let r: PayloadRecord;
		try {
			r = toRecord(call);
		} catch {
			this.#drop("encode");
			return;
		}
		// Room was checked before decoding (cheap); a record larger than what is left is dropped too.
		const size = recordBytes(r);
		if (this.#bytes + size > this.#queueBytes) {
			this.#drop("queue_full");
			return;
		}
		this.#queue.push(r);
		this.#bytes += size;
		const wake = this.#wake;
		if (wake) {
			this.#wake = undefined;
			wake();
		}
	};

	#drop(reason: DropReason, n = 1): void {
		this.#droppedCount += n;
		this.#dropped.labels(reason).inc(n);
	}

	/** For readiness details: where, whether it is reachable (and why not), and the counts. */
	status(): PayloadLogStatus {
		const s: PayloadLogStatus = {
			destination: `${this.#sink.kind}:${this.#sink.where}`,
			available: this.#available,
			queued: this.#queue.length,
			queued_bytes: this.#bytes,
			written: this.#written,
			dropped: this.#droppedCount,
		};
		if (this.#reason !== undefined) s.reason = this.#reason;
		return s;
	}

	/** Prometheus exposition of the log's metrics. */
	async exposition(): Promise<{ contentType: string; body: string }> {
		return {
			contentType: this.registry.contentType,
			body: await this.registry.metrics(),
		};
	}

	async #run(): Promise<void> {
		for (;;) {
			// Opened at start, not at the first record: an unreachable destination shows in readiness at once.
			if (this.#opened && this.#queue.length === 0) {
				if (this.#closing) return;
				await new Promise<void>((r) => {
					this.#wake = r;
				});
				// Let a batch gather (a full one, or closing, goes at once).
				if (this.#queue.length < this.#batch && this.#flushMs > 0)
					await this.#pause(this.#flushMs);
				continue;
			}
			try {
				if (!this.#opened) {
					await this.#sink.open();
					this.#opened = true;
					if (!this.#available) {
						this.#available = true;
						this.#reason = undefined;
						this.#onRecover?.();
					}
					this.#backoff.reset();
					continue;
				}
				const batch = this.#queue.slice(0, this.#batch);
				// A refused record would fail every retry: it is dropped and counted instead, and the log goes on.
				const refused = (await this.#sink.write(batch)) || 0;
				// Written: only now do they leave the queue (a failed write is retried with the same records).
				this.#queue.splice(0, batch.length);
				if (refused > 0) {
					this.#drop("too_large", refused);
					this.#onError?.(
						new Error(
							`${refused} payload record(s) refused by ${this.#sink.kind}:${this.#sink.where} as too large: dropped and counted (mlship_payload_log_dropped_total{reason="too_large"})`,
						),
						undefined,
					);
				}
				let bytes = 0;
				for (const r of batch) bytes += recordBytes(r);
				this.#bytes -= bytes;
				this.#written += batch.length - refused;
				this.#writtenTotal.inc(batch.length - refused);
				this.#bytesTotal.inc(bytes);
				if (!this.#available) {
					this.#available = true;
					this.#reason = undefined;
					this.#onRecover?.();
				}
				this.#backoff.reset();
			} catch (err) {
				const e = err instanceof Error ? err : new Error(String(err));
				this.#available = false;
				this.#reason = e.message;
				this.#errors.inc();
				if (this.#closing) return;
				const ms = this.#backoff.next();
				this.#onError?.(e, ms);
				await this.#pause(ms);
			}
		}
	}

	/** Waits `ms`, or less when close() comes. */
	async #pause(ms: number): Promise<void> {
		if (this.#closing) return;
		await new Promise<void>((resolve) => {
			this.#sleep = { timer: setTimeout(resolve, ms), resolve };
		});
		this.#sleep = undefined;
	}

	/**
	 * Stops taking records, writes what is queued (up to `graceMs`; a destination that is down gets no more tries),
	 * counts the rest as dropped (`closed`) and closes the sink.
	 */
	async close(graceMs = 5_000): Promise<void> {
		if (this.#closing) return;
		this.#closing = true;
		this.#wake?.();
		if (this.#sleep) {
			clearTimeout(this.#sleep.timer);
			this.#sleep.resolve();
		}
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			this.#loop,
			new Promise<void>((r) => {
				timer = setTimeout(r, graceMs);
			}),
		]);
		clearTimeout(timer);
		if (this.#queue.length > 0) {
			this.#drop("closed", this.#queue.length);
			this.#queue = [];
			this.#bytes = 0;
		}
		if (this.#opened) await this.#sink.close().catch(() => undefined);
	}
}
