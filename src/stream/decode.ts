// The processor's side of the decode thread (decode-worker.ts): large JSON payloads of records are parsed there
// into columns, so the main thread keeps to broker I/O, scoring hand-off, results and acks.
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { InMessage } from "./types.ts";

/** Payloads at least this large are parsed on the decode thread; smaller ones cost less to parse than to hand over. */
export const DECODE_THREAD_MIN_BYTES = 8192;
/** Spare payload buffers kept for reuse (about one per batch in flight at once; more are left to the GC). */
const SPARE_BUFFERS = 4;

export interface DecodeTask {
	id: number;
	/** The batch's payloads back to back. */
	bytes: Uint8Array;
	/** End offset of each payload in `bytes`. */
	ends: number[];
}

/** One payload's records as columns: numeric columns are views of the reply's `numbers` at `offsets[k]`. */
export interface DecodedColumns {
	/** Column names; null: the same as the previous decoded payload of the batch. */
	keys: string[] | null;
	/** Records. */
	n: number;
	/** The body's `id` as text, when it had one (`{"records": [...], "id": ...}`). */
	bodyId: string | undefined;
	/** Per key: where its n numbers start in `numbers`, or -1 when the column is in `other` (not all numbers). */
	offsets: number[];
	other: Record<string, unknown[]>;
}

export interface DecodeReply {
	id: number;
	/** The task's bytes, handed back: the next batch's payloads are copied into them (no new buffer per batch). */
	bytes: Uint8Array;
	numbers: Float64Array;
	/** Per payload: its columns, or null when the main thread must decode it (anything but uniform records). */
	decoded: (DecodedColumns | null)[];
}

/** A payload decoded on the thread: the request's columns and the body's id. */
export interface Columnar {
	columns: Record<string, ArrayLike<unknown>>;
	bodyId: string | undefined;
}

const WORKER_URL = new URL(
	`./decode-worker${extname(fileURLToPath(import.meta.url))}`,
	import.meta.url,
);

/**
 * One worker thread that parses batches of JSON payloads. `decode` never rejects: a payload it does not take (small,
 * not a list of uniform records, not JSON, the thread failed) comes back undefined for the main path.
 */
export class DecodeThread {
	#worker: Worker | undefined;
	#broken = false;
	/** Payloads decoded here so far. */
	decoded = 0;
	#nextId = 1;
	/** Buffers the thread handed back, for the next batches' payloads (a fresh 20 MB buffer per batch costs more). */
	readonly #spare: ArrayBuffer[] = [];
	readonly #pending = new Map<
		number,
		{ resolve: (r: DecodeReply | undefined) => void }
	>();

	#start(): Worker {
		const w = new Worker(WORKER_URL);
		w.on("message", (reply: DecodeReply) => {
			const p = this.#pending.get(reply.id);
			this.#pending.delete(reply.id);
			if (this.#spare.length < SPARE_BUFFERS)
				this.#spare.push(reply.bytes.buffer as ArrayBuffer);
			if (this.#pending.size === 0) w.unref();
			p?.resolve(reply);
		});
		const fail = () => {
			// Everything still waiting (and everything after) is decoded on the main thread.
			this.#broken = true;
			this.#worker = undefined;
			for (const p of this.#pending.values()) p.resolve(undefined);
			this.#pending.clear();
		};
		w.on("error", fail);
		w.on("exit", fail);
		// Only a decode in progress keeps the process alive: an idle thread must not hold the exit.
		w.unref();
		return w;
	}

	/** Columns of each message that the thread decoded (undefined: decode it on the main thread). */
	async decode(batch: readonly InMessage[]): Promise<(Columnar | undefined)[]> {
		const out: (Columnar | undefined)[] = new Array(batch.length).fill(
			undefined,
		);
		if (this.#broken) return out;
		const picked: number[] = [];
		let size = 0;
		for (let i = 0; i < batch.length; i++) {
			const v = (batch[i] as InMessage).value;
			if (v !== null && v.length >= DECODE_THREAD_MIN_BYTES) {
				picked.push(i);
				size += v.length;
			}
		}
		if (picked.length === 0) return out;
		const bytes = this.#buffer(size);
		const ends: number[] = [];
		let at = 0;
		for (const i of picked) {
			const v = (batch[i] as InMessage).value as Buffer;
			bytes.set(v, at);
			at += v.length;
			ends.push(at);
		}
		this.#worker ??= this.#start();
		const id = this.#nextId++;
		const reply = await new Promise<DecodeReply | undefined>((resolve) => {
			this.#pending.set(id, { resolve });
			(this.#worker as Worker).ref();
			(this.#worker as Worker).postMessage(
				{ id, bytes, ends } satisfies DecodeTask,
				[bytes.buffer],
			);
		});
		if (reply === undefined) return out;
		let keys: string[] = [];
		reply.decoded.forEach((d, j) => {
			if (d === null) return;
			if (d.keys !== null) keys = d.keys;
			const columns: Record<string, ArrayLike<unknown>> = Object.create(null);
			keys.forEach((k, c) => {
				const o = d.offsets[c] as number;
				columns[k] =
					o < 0
						? (d.other[k] as unknown[])
						: reply.numbers.subarray(o, o + d.n);
			});
			out[picked[j] as number] = { columns, bodyId: d.bodyId };
			this.decoded++;
		});
		return out;
	}

	/** A buffer of `size` bytes for a batch's payloads: a spare one when one is large enough. */
	#buffer(size: number): Uint8Array<ArrayBuffer> {
		for (let i = 0; i < this.#spare.length; i++) {
			const b = this.#spare[i] as ArrayBuffer;
			if (b.byteLength >= size) {
				this.#spare.splice(i, 1);
				return new Uint8Array(b, 0, size);
			}
		}
		// Some room over this batch's size, so the next, a little larger, still fits.
		return new Uint8Array(new ArrayBuffer(Math.ceil(size * 1.25)), 0, size);
	}

	async close(): Promise<void> {
		const w = this.#worker;
		this.#worker = undefined;
		this.#broken = true;
		if (w) await w.terminate();
	}
}
