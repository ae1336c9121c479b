// Worker-thread entry: holds onnxruntime sessions and runs batches posted by WorkerPool or a BlockingSession.
// A dedicated worker gets its one model in workerData; a shared worker (SharedOnnxPool) gets models by key
// through `load`/`unload` messages, so thousands of small models share a few threads.
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { MlshipError, toMlshipError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";
import { createSession, type OrtSession, runSession } from "./session.ts";

interface Message {
	id: number;
	op?: "run" | "load" | "unload";
	/** Which model (shared workers); "" is a dedicated worker's only model. */
	key?: string;
	bytes?: Uint8Array;
	intraOpThreads?: number;
	inputs?: Tensor[];
	outputs?: string[];
}

const data = workerData as
	| {
			bytes?: Uint8Array;
			intraOpThreads?: number;
			/** Set by BlockingSession: replies go to this port and `signal[0]` is bumped so a caller blocked in Atomics.wait wakes. */
			blocking?: { port: MessagePort; signal: Int32Array };
	  }
	| undefined;
const port = parentPort;
if (!port) throw new Error("onnx worker must run in a worker thread");
const sessions = new Map<string, OrtSession>();
const blocking = data?.blocking;

async function handle(msg: Message): Promise<unknown> {
	const key = msg.key ?? "";
	if (msg.op === "load") {
		if (!sessions.has(key))
			sessions.set(
				key,
				await createSession(msg.bytes as Uint8Array, msg.intraOpThreads ?? 1),
			);
		return null;
	}
	if (msg.op === "unload") {
		const s = sessions.get(key);
		sessions.delete(key);
		await s?.release();
		return null;
	}
	const session = sessions.get(key);
	if (!session)
		throw new MlshipError(
			"MLSHIP_CLOSED",
			"the model is not loaded in this worker",
		);
	return runSession(session, msg.inputs ?? [], msg.outputs ?? []);
}

function reply(msg: unknown, transfer: ArrayBuffer[] = []): void {
	if (!blocking) {
		port?.postMessage(msg, transfer);
		return;
	}
	blocking.port.postMessage(msg, transfer);
	Atomics.add(blocking.signal, 0, 1);
	Atomics.notify(blocking.signal, 0);
}

try {
	if (data?.bytes)
		sessions.set("", await createSession(data.bytes, data.intraOpThreads ?? 1));
	(blocking?.port ?? port).on("message", async (msg: Message) => {
		try {
			const value = await handle(msg);
			const transfer = Array.isArray(value)
				? (value as Tensor[]).flatMap((t) =>
						Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer],
					)
				: [];
			reply({ id: msg.id, ok: true, value }, transfer);
		} catch (err) {
			const e = toMlshipError(err);
			reply({ id: msg.id, ok: false, code: e.code, message: e.message });
		}
	});
	port.postMessage({ ready: true });
} catch (err) {
	const e = toMlshipError(err);
	port.postMessage({ ready: false, code: e.code, message: e.message });
}
