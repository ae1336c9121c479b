// A model session the calling thread can use synchronously: SQL engines call functions synchronously
// (DuckDB's scalar functions, SQLite's user functions), while onnxruntime-node only has an async run().
import {
	MessageChannel,
	type MessagePort,
	receiveMessageOnPort,
	Worker,
} from "node:worker_threads";
import { artifactBytes, type Bundle } from "../../bundle/types.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";
import { checkSignature } from "./check.ts";
import { createSession, sessionSignature } from "./session.ts";
import { WORKER_URL } from "./worker-url.ts";

/** Checks the bundle's signature against its graph (read from a throwaway session). */
export async function checkGraph(
	bundle: Bundle,
	bytes: Uint8Array,
): Promise<void> {
	const probe = await createSession(bytes, 1);
	try {
		checkSignature(
			bundle.manifest.signature,
			sessionSignature(probe).signature,
			bundle.source,
		);
	} finally {
		await probe.release();
	}
}

type Reply =
	| { id: number; ok: true; value: Tensor[] }
	| { id: number; ok: false; code: string; message: string };

/**
 * One worker thread running the model; `run` posts a batch and blocks in Atomics.wait until the worker
 * answers (the worker bumps a shared counter after replying on a private port). The thread hop costs
 * tens of microseconds, so callers should hand it whole batches (a DuckDB chunk), not single rows.
 * @example const s = await BlockingSession.start(bundle); const outs = s.run(inputs, ["label"]); await s.close();
 */
export class BlockingSession {
	readonly #worker: Worker;
	readonly #port: MessagePort;
	readonly #signal: Int32Array;
	readonly #timeoutMs: number;
	#nextId = 1;
	#closed = false;

	private constructor(
		worker: Worker,
		port: MessagePort,
		signal: Int32Array,
		timeoutMs: number,
	) {
		this.#worker = worker;
		this.#port = port;
		this.#signal = signal;
		this.#timeoutMs = timeoutMs;
	}

	/** Checks the bundle's signature against its graph and starts the worker. `timeoutMs` bounds one call. */
	static async start(
		bundle: Bundle,
		opts: { intraOpThreads?: number; timeoutMs?: number } = {},
	): Promise<BlockingSession> {
		const bytes = artifactBytes(bundle);
		const threads =
			opts.intraOpThreads ?? bundle.manifest.executor?.intra_op_threads ?? 1;
		await checkGraph(bundle, bytes);
		const { port1, port2 } = new MessageChannel();
		const signal = new Int32Array(new SharedArrayBuffer(4));
		const worker = new Worker(WORKER_URL, {
			workerData: {
				bytes,
				intraOpThreads: threads,
				blocking: { port: port2, signal },
			},
			transferList: [port2],
		});
		await new Promise<void>((resolve, reject) => {
			worker.once(
				"message",
				(m: { ready: boolean; code?: string; message?: string }) =>
					m.ready
						? resolve()
						: reject(
								new MlshipError(
									(m.code as "MLSHIP_INTERNAL") ?? "MLSHIP_INTERNAL",
									m.message ?? "model worker failed to start",
								),
							),
			);
			worker.once("error", reject);
		});
		// Neither keeps the process alive: close() ends them, and a process that forgets to still exits.
		worker.unref();
		port1.unref();
		return new BlockingSession(
			worker,
			port1,
			signal,
			opts.timeoutMs ?? 120_000,
		);
	}

	/** Runs the model on validated inputs, blocking the calling thread until the outputs are back. */
	run(inputs: Tensor[], outputs: readonly string[]): Tensor[] {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		const id = this.#nextId++;
		let seen = Atomics.load(this.#signal, 0);
		this.#port.postMessage({ id, inputs, outputs });
		const deadline = performance.now() + this.#timeoutMs;
		for (;;) {
			const got = receiveMessageOnPort(this.#port);
			if (got) {
				const r = got.message as Reply;
				if (r.id !== id) continue; // an answer to a call that timed out
				if (r.ok) return r.value;
				throw new MlshipError(r.code as "MLSHIP_INTERNAL", r.message);
			}
			const left = deadline - performance.now();
			if (
				left <= 0 ||
				Atomics.wait(this.#signal, 0, seen, left) === "timed-out"
			)
				throw new MlshipError(
					"MLSHIP_TIMEOUT",
					`the model did not answer within ${this.#timeoutMs} ms`,
				);
			seen = Atomics.load(this.#signal, 0);
		}
	}

	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		this.#port.close();
		await this.#worker.terminate();
	}
}
