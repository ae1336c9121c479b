// Worker-thread entry: holds one onnxruntime session and runs batches posted by WorkerPool.
import { parentPort, workerData } from "node:worker_threads";
import { toMlshipError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";
import { createSession, runSession } from "./session.ts";

const { bytes, intraOpThreads } = workerData as {
	bytes: Uint8Array;
	intraOpThreads: number;
};
const port = parentPort;
if (!port) throw new Error("onnx worker must run in a worker thread");

try {
	const session = await createSession(bytes, intraOpThreads);
	port.on(
		"message",
		async (msg: { id: number; inputs: Tensor[]; outputs: string[] }) => {
			try {
				const value = await runSession(session, msg.inputs, msg.outputs);
				const transfer = value.flatMap((t) =>
					Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer],
				);
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
		},
	);
	port.postMessage({ ready: true });
} catch (err) {
	const e = toMlshipError(err);
	port.postMessage({ ready: false, code: e.code, message: e.message });
}
