// Raw-bound worker: one onnxruntime session on its own thread, scoring the rows it is sent in one loop.
import { parentPort, workerData } from "node:worker_threads";
import { createRawSession, scoreAll } from "./raw.ts";

const { model, width, batch } = workerData as {
	model: Uint8Array;
	width: number;
	batch: number;
};
const port = parentPort;
if (!port) throw new Error("raw-worker must run in a worker thread");

const session = await createRawSession(model);
port.once("message", async (msg: { rows: Float32Array }) => {
	const started = performance.now();
	const result = await scoreAll(session, msg.rows, width, batch);
	const ms = performance.now() - started;
	await session.release();
	port.postMessage({ ...result, ms });
});
port.postMessage({ ready: true });
