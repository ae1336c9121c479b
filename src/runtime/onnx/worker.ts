// Worker-thread entry: holds one onnxruntime session and runs batches posted by WorkerPool or a BlockingSession.
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { toMlshipError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";
import { createSession, runSession } from "./session.ts";

const { bytes, intraOpThreads, blocking } = workerData as {
	bytes: Uint8Array;
	intraOpThreads: number;
	/** Set by BlockingSession: replies go to this port and `signal[0]` is bumped so a caller blocked in Atomics.wait wakes. */
	blocking?: { port: MessagePort; signal: Int32Array };
};
const port = parentPort;
if (!port) throw new Error("onnx worker must run in a worker thread");

try {
	const session = await createSession(bytes, intraOpThreads);
	const reply = (msg: unknown, transfer: ArrayBuffer[] = []) => {
		if (!blocking) return port.postMessage(msg, transfer);
		blocking.port.postMessage(msg, transfer);
		Atomics.add(blocking.signal, 0, 1);
		Atomics.notify(blocking.signal, 0);
	};
	const onMessage = async (msg: {
		id: number;
		inputs: Tensor[];
		outputs: string[];
	}) => {
		try {
			const value = await runSession(session, msg.inputs, msg.outputs);
			const transfer = value.flatMap((t) =>
				Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer],
			);
			reply({ id: msg.id, ok: true, value }, transfer);
		} catch (err) {
			const e = toMlshipError(err);
			reply({ id: msg.id, ok: false, code: e.code, message: e.message });
		}
	};
	(blocking?.port ?? port).on("message", onMessage);
	port.postMessage({ ready: true });
} catch (err) {
	const e = toMlshipError(err);
	port.postMessage({ ready: false, code: e.code, message: e.message });
}
