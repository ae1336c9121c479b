// SharedOnnxPool: a few worker threads that hold the sessions of many models (per-entity families, lazy fleets),
// so a thousand loaded models cost a thousand sessions per worker, not a thousand thread pools.
import type { TransferListItem } from "node:worker_threads";
import { defaultWorkers, WorkerPool } from "../pool.ts";
import type { SharedExecutor } from "../types.ts";
import { WORKER_URL } from "./worker-url.ts";

/** One model's place in a shared pool: runs batches on any worker, and leaves every worker when removed. */
export interface PoolSlot {
	call<T>(
		payload: Record<string, unknown>,
		transfer?: TransferListItem[],
	): Promise<T>;
	close(): Promise<void>;
}

/**
 * Worker threads shared by many models. `add` loads a model's session into every worker; a worker that dies is
 * replaced and reloaded with every model it held before it takes calls again.
 * @example const pool = await SharedOnnxPool.start(); const m = await onnxRuntime.load(bundle, { shared: pool });
 */
export class SharedOnnxPool implements SharedExecutor {
	readonly #pool: WorkerPool;
	readonly #models = new Map<
		string,
		{ bytes: Uint8Array; intraOpThreads: number }
	>();
	#next = 1;

	private constructor(pool: WorkerPool) {
		this.#pool = pool;
		pool.onRespawn(async (post) => {
			for (const [key, m] of this.#models)
				await post({ op: "load", key, ...m });
		});
	}

	/** Starts `workers` threads (default: one per core ÷ intra-op threads). */
	static async start(
		workers?: number,
		intraOpThreads = 1,
	): Promise<SharedOnnxPool> {
		return new SharedOnnxPool(
			await WorkerPool.start(
				WORKER_URL,
				undefined,
				workers ?? defaultWorkers(intraOpThreads),
			),
		);
	}

	get workers(): number {
		return this.#pool.size;
	}

	/** Models loaded now. */
	get models(): number {
		return this.#models.size;
	}

	/** Loads a model into every worker; the slot runs it and removes it again. */
	async add(bytes: Uint8Array, intraOpThreads: number): Promise<PoolSlot> {
		const key = String(this.#next++);
		const m = { bytes, intraOpThreads };
		this.#models.set(key, m);
		try {
			await this.#pool.broadcast({ op: "load", key, ...m });
		} catch (err) {
			this.#models.delete(key);
			await this.#pool.broadcast({ op: "unload", key }).catch(() => {});
			throw err;
		}
		let closed = false;
		return {
			call: <T>(
				payload: Record<string, unknown>,
				transfer?: TransferListItem[],
			) => this.#pool.call<T>({ ...payload, key }, transfer),
			close: async () => {
				if (closed) return;
				closed = true;
				this.#models.delete(key);
				await this.#pool.broadcast({ op: "unload", key }).catch(() => {});
			},
		};
	}

	async close(): Promise<void> {
		this.#models.clear();
		await this.#pool.close();
	}
}
