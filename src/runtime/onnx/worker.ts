// Worker-thread entry: holds onnxruntime sessions and runs batches posted by WorkerPool.
// A dedicated worker gets its one model in workerData; a shared worker (SharedOnnxPool) gets models by key
// through `load`/`unload` messages, so thousands of small models share a few threads.
import { parentPort, workerData } from "node:worker_threads";
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
	| { bytes?: Uint8Array; intraOpThreads?: number }
	| undefined;
const port = parentPort;
if (!port) throw new Error("onnx worker must run in a worker thread");
const sessions = new Map<string, OrtSession>();

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

try {
	if (data?.bytes)
		sessions.set("", await createSession(data.bytes, data.intraOpThreads ?? 1));
	port.on("message", async (msg: Message) => {
		try {
			const value = await handle(msg);
			const transfer = Array.isArray(value)
				? (value as Tensor[]).flatMap((t) =>
						Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer],
					)
				: [];
			port.postMessage({ id: msg.id, ok: true, value }, transfer);
		} catch (err) {
			const e = toMlshipError(err);
			port.postMessage({
				id: msg.id,
				ok: false,
				code: e.code,
				message: e.message,
			});
		}
	});
	port.postMessage({ ready: true });
} catch (err) {
	const e = toMlshipError(err);
	port.postMessage({ ready: false, code: e.code, message: e.message });
}
