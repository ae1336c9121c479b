// Runtimes by name: a manifest's `runtime` selects one; each is imported only when first used.
import { MlshipError } from "../protocol/errors.ts";
import type { Runtime } from "./types.ts";

/** A runtime as registered: its name, the bare model files it reads, and how to import it. */
export interface RuntimeRegistration {
	name: string;
	/** File extensions (lowercase, with the dot) of bare model files this runtime reads, e.g. [".onnx"]. */
	extensions: readonly string[];
	/** Imports the runtime; called once, on first use, so importing the core loads no runtime library. */
	load: () => Promise<Runtime>;
}

const registered = new Map<string, RuntimeRegistration>();
const loaded = new Map<string, Promise<Runtime>>();

/**
 * Registers a runtime under its name (a later registration of the same name replaces it).
 * @example registerRuntime({ name: "onnx", extensions: [".onnx"], load: async () => (await import("./onnx/index.ts")).onnxRuntime })
 */
export function registerRuntime(r: RuntimeRegistration): void {
	registered.set(r.name, r);
	loaded.delete(r.name);
}

registerRuntime({
	name: "onnx",
	extensions: [".onnx"],
	load: async () => (await import("./onnx/index.ts")).onnxRuntime,
});

registerRuntime({
	name: "trees",
	// XGBoost JSON, LightGBM text, PMML; ONNX tree/linear models too, when a manifest names this runtime
	extensions: [".pmml", ".json", ".txt"],
	load: async () => (await import("./trees/index.ts")).treesRuntime,
});

/** Names of the registered runtimes. */
export function runtimeNames(): string[] {
	return [...registered.keys()];
}

/** The runtime registered as `name`, imported on first use; MLSHIP_UNSUPPORTED_MODEL naming the registered ones otherwise. */
export function runtime(name: string): Promise<Runtime> {
	const r = registered.get(name);
	if (!r)
		return Promise.reject(
			new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`no runtime '${name}' is registered (registered: ${runtimeNames().join(", ")}); set 'runtime' in mlship.yaml to one of them`,
			),
		);
	let p = loaded.get(name);
	if (!p) {
		p = r.load();
		p.catch(() => loaded.delete(name)); // a failed import is tried again next time
		loaded.set(name, p);
	}
	return p;
}

/** The runtime that reads a bare model file, by its extension (undefined: none does). */
export function runtimeForFile(path: string): string | undefined {
	const lower = path.toLowerCase();
	for (const r of registered.values())
		if (r.extensions.some((x) => lower.endsWith(x))) return r.name;
	return undefined;
}
