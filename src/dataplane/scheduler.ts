// The per-model scheduler: adaptive batching, a bounded queue, per-request deadlines. "No batching" is max_batch_size 1.
import { MlshipError, toMlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import { batchKey, concatInputs, rowsOf, sliceRows } from "./batch.ts";

export interface SchedulerSettings {
	/** Rows per batch; a single larger request runs alone. 1 = batching off. */
	maxBatchSize: number;
	/** Longest wait to fill a batch once a runner is free (0 = dispatch at once; batches still form while runners are busy). */
	maxQueueDelayUs: number;
	/** Waiting requests before new ones are refused with MLSHIP_OVERLOADED (0 = unbounded). */
	maxQueueSize: number;
	/** Batches that may run at the same time (the executor's workers). */
	concurrency: number;
	/** Timeout of requests that name none (0 = none). */
	defaultTimeoutMs?: number;
}

/** Batching settings as written in mlship.yaml and server settings (snake_case, all optional). */
export interface Batching {
	max_batch_size?: number | undefined;
	max_queue_delay_us?: number | undefined;
	max_queue_size?: number | undefined;
	timeout_ms?: number | undefined;
}

/** Defaults: batches of up to 256 rows formed while runners are busy, no extra wait, 4096 queued requests. */
export const DEFAULT_BATCHING = {
	max_batch_size: 256,
	max_queue_delay_us: 0,
	max_queue_size: 4096,
	timeout_ms: 0,
};

/** Merges batching layers (later wins; unset fields keep the earlier value) into scheduler settings. */
export function schedulerSettings(
	concurrency: number,
	...layers: (Batching | undefined)[]
): SchedulerSettings {
	const b = { ...DEFAULT_BATCHING };
	for (const l of layers) {
		if (!l) continue;
		for (const k of Object.keys(b) as (keyof Batching)[]) {
			const v = l[k];
			if (v !== undefined) b[k] = v;
		}
	}
	return {
		maxBatchSize: b.max_batch_size,
		maxQueueDelayUs: b.max_queue_delay_us,
		maxQueueSize: b.max_queue_size,
		defaultTimeoutMs: b.timeout_ms,
		concurrency,
	};
}

/** Runs one batch: inputs (batch-first), the outputs wanted, whether more work waits; returns outputs in order. */
export type RunBatch = (
	inputs: Tensor[],
	outputs: string[],
	busy: boolean,
) => Promise<Tensor[]>;

/** Called once per executed batch and per finished request, for metrics. */
export interface SchedulerObserver {
	batch?(rows: number, computeSeconds: number): void;
	request?(queueSeconds: number): void;
	depth?(waiting: number): void;
}

/** When a traced request's batch ran (performance.now() ms) and its size: filled in by the scheduler. */
export interface BatchTiming {
	started?: number;
	ended?: number;
	rows?: number;
}

interface Pending {
	timing: BatchTiming | undefined;
	inputs: Tensor[];
	outputs: string[];
	rows: number;
	key: string;
	enqueued: number;
	deadline: number;
	timer: ReturnType<typeof setTimeout> | undefined;
	done: boolean;
	resolve: (t: Tensor[]) => void;
	reject: (e: Error) => void;
}

/**
 * Queues requests for one model version and runs them in batches of up to `maxBatchSize` rows on up to
 * `concurrency` runners. While every runner is busy requests accumulate, so batch size adapts to load;
 * a full queue refuses at once (MLSHIP_OVERLOADED), and a request that cannot start before its deadline
 * is refused with MLSHIP_TIMEOUT. A failed batch fails each of its requests.
 */
export class Scheduler {
	readonly #settings: SchedulerSettings;
	readonly #run: RunBatch;
	readonly #observe: SchedulerObserver;
	#queue: Pending[] = [];
	#running = 0;
	#timer: ReturnType<typeof setTimeout> | undefined;
	#closing = false;
	#idle: (() => void)[] = [];

	constructor(
		settings: SchedulerSettings,
		run: RunBatch,
		observe: SchedulerObserver = {},
	) {
		this.#settings = settings;
		this.#run = run;
		this.#observe = observe;
	}

	/** Requests waiting (not yet running). */
	get waiting(): number {
		return this.#queue.length;
	}

	/** Batches running now. */
	get running(): number {
		return this.#running;
	}

	/**
	 * Schedules one request (inputs already validated against the signature).
	 * @param timeoutMs reject if the request has not started within this many ms (0/undefined = no limit)
	 */
	submit(
		inputs: Tensor[],
		outputs: string[],
		timeoutMs?: number,
		timing?: BatchTiming,
	): Promise<Tensor[]> {
		if (this.#closing)
			return Promise.reject(
				new MlshipError("MLSHIP_CLOSED", "the model has been unloaded"),
			);
		const max = this.#settings.maxQueueSize;
		if (max > 0 && this.#queue.length >= max)
			return Promise.reject(
				new MlshipError(
					"MLSHIP_OVERLOADED",
					`the model's queue is full (${max} requests waiting); retry later`,
				),
			);
		const timeout = timeoutMs ?? this.#settings.defaultTimeoutMs ?? 0;
		return new Promise<Tensor[]>((resolve, reject) => {
			const now = performance.now();
			const p: Pending = {
				timing,
				inputs,
				outputs,
				rows: rowsOf(inputs),
				key: `${batchKey(inputs)}|${outputs.join(",")}`,
				enqueued: now,
				deadline: timeout ? now + timeout : Number.POSITIVE_INFINITY,
				timer: undefined,
				done: false,
				resolve,
				reject,
			};
			if (timeout)
				p.timer = setTimeout(() => {
					if (p.done) return;
					this.#queue = this.#queue.filter((q) => q !== p);
					this.#observe.depth?.(this.#queue.length);
					this.#finish(
						p,
						new MlshipError(
							"MLSHIP_TIMEOUT",
							`the request did not start within its ${timeout} ms timeout`,
						),
					);
				}, timeout);
			this.#queue.push(p);
			this.#observe.depth?.(this.#queue.length);
			this.#pump();
		});
	}

	#finish(p: Pending, result: Tensor[] | Error): void {
		if (p.done) return;
		p.done = true;
		if (p.timer) clearTimeout(p.timer);
		if (result instanceof Error) p.reject(result);
		else p.resolve(result);
	}

	#pump(): void {
		const s = this.#settings;
		while (this.#running < s.concurrency && this.#queue.length > 0) {
			const oldest = this.#queue[0] as Pending;
			const waitedUs = (performance.now() - oldest.enqueued) * 1000;
			if (
				s.maxQueueDelayUs > 0 &&
				waitedUs < s.maxQueueDelayUs &&
				this.#queue.reduce((n, q) => n + q.rows, 0) < s.maxBatchSize
			) {
				if (!this.#timer)
					this.#timer = setTimeout(
						() => {
							this.#timer = undefined;
							this.#pump();
						},
						Math.max(0, (s.maxQueueDelayUs - waitedUs) / 1000),
					);
				return;
			}
			this.#dispatch(this.#take());
		}
	}

	/** Takes the oldest request plus compatible followers up to maxBatchSize rows. */
	#take(): Pending[] {
		const first = this.#queue.shift() as Pending;
		const batch = [first];
		let rows = first.rows;
		const rest: Pending[] = [];
		for (const q of this.#queue) {
			if (q.key === first.key && rows + q.rows <= this.#settings.maxBatchSize) {
				batch.push(q);
				rows += q.rows;
			} else rest.push(q);
		}
		this.#queue = rest;
		this.#observe.depth?.(this.#queue.length);
		return batch;
	}

	#dispatch(batch: Pending[]): void {
		const now = performance.now();
		const live = batch.filter((p) => {
			if (p.done) return false;
			if (p.deadline <= now) {
				this.#finish(
					p,
					new MlshipError(
						"MLSHIP_TIMEOUT",
						"the request did not start within its timeout",
					),
				);
				return false;
			}
			return true;
		});
		if (live.length === 0) return;
		for (const p of live) {
			if (p.timer) clearTimeout(p.timer);
			p.timer = undefined;
			this.#observe.request?.((now - p.enqueued) / 1000);
		}
		this.#running++;
		const inputs = concatInputs(live.map((p) => p.inputs));
		const outputs = (live[0] as Pending).outputs;
		const started = performance.now();
		this.#run(inputs, outputs, this.#running > 1 || this.#queue.length > 0)
			.then(
				(outs) => {
					this.#observe.batch?.(
						rowsOf(inputs),
						(performance.now() - started) / 1000,
					);
					const ended = performance.now();
					let at = 0;
					for (const p of live) {
						if (p.timing) {
							p.timing.started = started;
							p.timing.ended = ended;
							p.timing.rows = rowsOf(inputs);
						}
						this.#finish(
							p,
							live.length === 1
								? outs
								: outs.map((t) => sliceRows(t, at, p.rows)),
						);
						at += p.rows;
					}
				},
				(err) => {
					const e = toMlshipError(err);
					for (const p of live) this.#finish(p, e);
				},
			)
			.finally(() => {
				this.#running--;
				if (this.#running === 0 && this.#queue.length === 0)
					for (const f of this.#idle.splice(0)) f();
				this.#pump();
			});
	}

	/** Stops accepting requests and resolves when every queued and running request has finished. */
	drain(): Promise<void> {
		this.#closing = true;
		if (this.#running === 0 && this.#queue.length === 0)
			return Promise.resolve();
		return new Promise((resolve) => this.#idle.push(resolve));
	}
}
