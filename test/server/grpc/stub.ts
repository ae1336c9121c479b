// A scripted DataPlane for adapter-only tests: echoes inputs as outputs, or throws what a test sets.
import type { DataPlane } from "../../../src/dataplane/types.ts";
import { MlshipError } from "../../../src/protocol/errors.ts";
import type {
	InferenceRequest,
	InferenceResponse,
} from "../../../src/protocol/types.ts";

export interface EchoPlane extends DataPlane {
	/** Requests as the data plane received them (decoded by the adapter), with their options. */
	seen: {
		name: string;
		version: string | undefined;
		request: InferenceRequest;
		timeoutMs: number | undefined;
	}[];
	/** When set, every call throws it. */
	fail: unknown;
	/** When set, infer waits this long first. */
	delayMs: number;
}

/** A data plane serving one model "echo" whose outputs are its inputs (filtered by requested outputs). */
export function echoPlane(): EchoPlane {
	const check = (name: string) => {
		if (plane.fail !== undefined) throw plane.fail;
		if (name !== "echo")
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' is unknown`,
			);
	};
	const plane: EchoPlane = {
		seen: [],
		fail: undefined,
		delayMs: 0,
		metadata: () => {
			if (plane.fail !== undefined) throw plane.fail;
			return { name: "stub", version: "0", extensions: [] };
		},
		live: () => true,
		ready: () => true,
		registry: () => undefined,
		registryStore: () => undefined,
		modelMetadata(name) {
			check(name);
			return {
				name,
				versions: ["1"],
				version: "1",
				platform: "onnx_onnxv1",
				inputs: [],
				outputs: [],
				features: [],
				state: "READY",
			};
		},
		modelReady(name) {
			check(name);
			return true;
		},
		async infer(name, version, request, opts): Promise<InferenceResponse> {
			plane.seen.push({ name, version, request, timeoutMs: opts?.timeoutMs });
			if (plane.delayMs > 0)
				await new Promise((r) => setTimeout(r, plane.delayMs));
			check(name);
			const wanted = request.outputs?.map((o) => o.name);
			const res: InferenceResponse = {
				model_name: name,
				model_version: "1",
				outputs: request.inputs.filter(
					(t) => !wanted || wanted.includes(t.name),
				),
			};
			if (request.id !== undefined) res.id = request.id;
			if (request.parameters) res.parameters = request.parameters;
			return res;
		},
		predict: async () => {
			throw new MlshipError("MLSHIP_UNAVAILABLE", "not in the stub");
		},
		entities: async () => {
			throw new MlshipError("MLSHIP_MODEL_NOT_FOUND", "not in the stub");
		},
		repositoryIndex: () => [
			{ name: "echo", version: "1", state: "READY", reason: "" },
		],
		load: async (name) => check(name),
		unload: async (name) => check(name),
		addModel: () => {
			throw new Error("the echo plane serves a fixed set of models");
		},
		removeModel: () => false,
		metrics: async () => ({ contentType: "text/plain", body: "" }),
		close: async () => {},
	};
	return plane;
}
