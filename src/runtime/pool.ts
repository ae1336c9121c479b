// A pool of worker threads that each run one model instance; calls go to the least-busy worker.
import { availableParallelism } from "node:os";
import { type TransferListItem, Worker } from "node:worker_threads";
import { MlshipError } from "../protocol/errors.ts";

interface Pending {
	resolve: (v: unknown) => void;
	reject: (e: Error) => void;
}

interface Slot {
	worker: Worker;
	inflight: Map<number, Pending>;
	ready: Promise<void>;
}

type Reply =
	| { id: number; ok: true; value: unknown }
	| { id: number; ok: false; code: string; message: string };

/** Default number of workers: one per core divided by the threads each uses, at least 1. */
export function defaultWorkers(threadsPerWorker: number): number {
	return Math.max(
		1,
		Math.floor(availableParallelism() / Math.max(1, threadsPerWorker)),
	);
}

/**
 * Starts `size` workers from `url` with `workerData`; each posts `{ready: true}` or `{ready: false, message}`
 * once loaded, then answers `{id, ...}` messages. A worker that dies fails its in-flight calls and is replaced.
 */
export class WorkerPool {
	readonly #url: URL;
	readonly #data: unknown;
	readonly #slots: Slot[] = [];
	#nextId = 1;
	#closed = false;
	/** Brings a replacement worker up to date (e.g. loads the shared models it must hold) before it takes calls. */
	#replay:
		| ((
				post: (payload: Record<string, unknown>) => Promise<unknown>,
		  ) => Promise<void>)
		| undefined;

	private constructor(url: URL, data: unknown) {
		this.#url = url;
		this.#data = data;
	}

	static async start(
		url: URL,
		data: unknown,
		size: number,
	): Promise<WorkerPool> {
		const pool = new WorkerPool(url, data);
		for (let i = 0; i < size; i++) pool.#slots.push(pool.#spawn());
		try {
			await Promise.all(pool.#slots.map((s) => s.ready));
		} catch (err) {
			await pool.close();
			throw err;
		}
		return pool;
	}

	get size(): number {
		return this.#slots.length;
	}

	/** Sets what a replacement worker must be told before it serves (see SharedOnnxPool). */
	onRespawn(
		replay: (
			post: (payload: Record<string, unknown>) => Promise<unknown>,
		) => Promise<void>,
	): void {
		this.#replay = replay;
	}

	#spawn(replacement = false): Slot {
		const worker = new Worker(this.#url, { workerData: this.#data });
		const inflight = new Map<number, Pending>();
		const slot: Slot = { worker, inflight, ready: Promise.resolve() };
		slot.ready = new Promise<void>((resolve, reject) => {
			const onMessage = (
				msg: {
					ready?: boolean;
					code?: string;
					message?: string;
				} & Partial<Reply>,
			) => {
				if (msg.ready === true) return resolve();
				if (msg.ready === false)
					return reject(
						new MlshipError(
							(msg.code as "MLSHIP_INTERNAL") ?? "MLSHIP_INTERNAL",
							msg.message ?? "worker failed",
						),
					);
				const m = msg as Reply;
				const p = inflight.get(m.id);
				if (!p) return;
				inflight.delete(m.id);
				if (m.ok) p.resolve(m.value);
				else p.reject(new MlshipError(m.code as "MLSHIP_INTERNAL", m.message));
			};
			worker.on("message", onMessage);
			worker.on("error", (err) => {
				reject(err);
				for (const p of inflight.values())
					p.reject(
						new MlshipError(
							"MLSHIP_INTERNAL",
							`model worker crashed: ${err.message}`,
							{ cause: err },
						),
					);
				inflight.clear();
			});
			worker.on("exit", () => {
				for (const p of inflight.values())
					p.reject(new MlshipError("MLSHIP_INTERNAL", "model worker exited"));
				inflight.clear();
				const i = this.#slots.indexOf(slot);
				if (!this.#closed && i >= 0) this.#slots[i] = this.#spawn(true);
			});
		});
		const replay = this.#replay;
		if (replacement && replay)
			slot.ready = slot.ready.then(() =>
				replay((payload) => this.#post(slot, payload)),
			);
		slot.ready.catch(() => {});
		return slot;
	}

	#post<T>(
		slot: Slot,
		payload: Record<string, unknown>,
		transfer?: TransferListItem[],
	): Promise<T> {
		const id = this.#nextId++;
		return new Promise<T>((resolve, reject) => {
			slot.inflight.set(id, {
				resolve: resolve as (v: unknown) => void,
				reject,
			});
			slot.worker.postMessage({ ...payload, id }, transfer);
		});
	}

	/** Sends `payload` to every worker and waits for all answers (e.g. load or unload a shared model). */
	async broadcast(payload: Record<string, unknown>): Promise<void> {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the worker pool is closed");
		await Promise.all(
			this.#slots.map(async (s) => {
				await s.ready;
				await this.#post(s, payload);
			}),
		);
	}

	/** Sends `payload` to the least-busy worker; resolves with its answer. */
	async call<T>(
		payload: Record<string, unknown>,
		transfer?: TransferListItem[],
	): Promise<T> {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		let best = this.#slots[0] as Slot;
		for (const s of this.#slots)
			if (s.inflight.size < best.inflight.size) best = s;
		await best.ready;
		return this.#post<T>(best, payload, transfer);
	}

	async close(): Promise<void> {
		this.#closed = true;
		await Promise.all(this.#slots.map((s) => s.worker.terminate()));
	}
}
