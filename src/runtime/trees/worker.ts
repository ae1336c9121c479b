// Worker-thread entry of the trees runtime: reads the model once (workerData), then evaluates posted batches.
import { parentPort, workerData } from "node:worker_threads";
import { toMlshipError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";
import { withCovers } from "../../trees/covers.ts";
import { predictTree } from "../../trees/eval.ts";
import { explainTree } from "../../trees/explain.ts";
import { loadTreeModel, nameFeatures } from "./load.ts";

interface Message {
	id: number;
	op?: "run" | "explain";
	inputs?: Tensor[];
	outputs?: string[];
}

const port = parentPort;
if (!port) throw new Error("trees worker must run in a worker thread");
const data = workerData as {
	bytes: Uint8Array;
	source: string;
	manifest: Parameters<typeof nameFeatures>[1];
	/** covers.json bytes and the artifact's sha256, when the bundle's covers fit the model (checked on the main thread). */
	covers?: Uint8Array;
	sha256?: string;
};

try {
	const read = nameFeatures(
		loadTreeModel(data.bytes, data.source, data.manifest.signature),
		data.manifest,
	);
	const model = data.covers
		? withCovers(read, data.covers, data.sha256 ?? "", data.source)
		: read;
	port.on("message", (msg: Message) => {
		try {
			if (msg.op === "explain") {
				const e = explainTree(model, msg.inputs ?? []);
				port.postMessage({ id: msg.id, ok: true, value: e }, [
					e.values.buffer as ArrayBuffer,
					e.base.buffer as ArrayBuffer,
				]);
				return;
			}
			const value = predictTree(model, msg.inputs ?? [], msg.outputs ?? []);
			port.postMessage(
				{ id: msg.id, ok: true, value },
				value.flatMap((t) =>
					Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer],
				),
			);
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
