// The embedded API: loadModel(path | 'name@alias') → a model instance with predict(records | columns | tensors | request).
import { stat } from "node:fs/promises";
import { type Bundle, readBundle } from "./bundle/bundle.ts";
import type { FollowedModel, FollowOptions } from "./dataplane/dataplane.ts";
import {
	type InstanceObserver,
	type InstanceOptions,
	loadInstance,
	ModelInstance,
} from "./dataplane/instance.ts";
import type { FeedbackOptions } from "./feedback/join.ts";
import { MlshipError } from "./protocol/errors.ts";
import type { ModelStore } from "./registry/types.ts";
import type { LoadOptions } from "./runtime/types.ts";

export type { FollowedModel } from "./dataplane/dataplane.ts";

/** A loaded model: the per-version instance every entry point runs models through (see dataplane/instance.ts). */
export { ModelInstance as Model };

export interface LoadModelOptions extends LoadOptions {
	/** Registry for `name@alias` references: a URI (`sqlite:path`) or an open store. Default: MLSHIP_REGISTRY or ./.mlship/registry.db. */
	registry?: string | ModelStore;
	/** Told of each batch the model's scheduler runs and of each request's outcome (metrics). */
	observer?: InstanceObserver;
	/**
	 * Keep predictions made with an id (`predict(rows, { id })`) so `model.feedback()` can join truths and rewards
	 * to them; `model.quality()` then gives live quality. Options: ids kept, retention, quality window.
	 */
	feedback?: FeedbackOptions;
}

async function isPath(ref: string): Promise<boolean> {
	try {
		await stat(ref);
		return true;
	} catch {
		return false;
	}
}

/** A reference that can only be a file path (a separator, or a model/manifest file extension). */
function looksLikePath(ref: string): boolean {
	return /[\\/]|\.(onnx|ya?ml)$/i.test(ref);
}

export type LoadBundleOptions = InstanceOptions;

/** Loads a bundle already in memory behind its scheduler, with the runtime its manifest names. */
export function loadBundle(
	bundle: Bundle,
	opts: LoadBundleOptions = {},
): Promise<ModelInstance> {
	return loadInstance(bundle, opts);
}

/**
 * Loads a model from a bundle directory, a bare `.onnx` file, or the registry (`name`, `name@3`, `name@production`).
 * @example
 * const m = await loadModel("iris@production");
 * const rows = await m.predict([{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }]);
 * await m.close();
 */
export async function loadModel(
	ref: string,
	opts: LoadModelOptions = {},
): Promise<ModelInstance> {
	const { registry, feedback, ...load } = opts;
	const r = await resolveBundle(ref, registry);
	const m = await loadBundle(r.bundle, {
		...load,
		...(r.name !== undefined ? { name: r.name } : {}),
		...(r.version !== undefined ? { version: r.version } : {}),
	});
	if (feedback !== undefined) {
		// Loaded on demand: embedded users without feedback never load it.
		const { FeedbackJoin } = await import("./feedback/join.ts");
		const join = new FeedbackJoin(feedback);
		m.keepFeedback(join);
	}
	return m;
}

/**
 * Loads a model for long-running work that should pick up registry updates without a restart: a registry
 * reference (`name`, `name@production`) follows the registry (hot swap between leases, see
 * followRegistryModel); a bundle directory or `.onnx` file is loaded once.
 * @example const m = await followModel("churn@production", { mode: "pool" }); ... await m.close();
 */
export async function followModel(
	ref: string,
	opts: LoadModelOptions & Pick<FollowOptions, "onEvent"> = {},
): Promise<FollowedModel> {
	const { registry, onEvent, observer, ...load } = opts;
	if ((await isPath(ref)) || looksLikePath(ref)) {
		// A model instance is a FollowedModel that never moves.
		return loadModel(ref, {
			...load,
			...(registry !== undefined ? { registry } : {}),
			...(observer ? { observer } : {}),
		});
	}
	// Loaded on demand: the data plane brings prom-client, which `import "mlship"` does not need.
	const { followRegistryModel } = await import("./dataplane/dataplane.ts");
	return followRegistryModel(ref, {
		load,
		...(registry !== undefined ? { registry } : {}),
		...(onEvent ? { onEvent } : {}),
		...(observer ? { observer } : {}),
	});
}

/**
 * Finds the bundle a model reference names: a bundle directory, a bare `.onnx` file, or a registered model
 * (`name`, `name@3`, `name@production`; then `name` and `version` come from the registry).
 */
export async function resolveBundle(
	ref: string,
	registry?: string | ModelStore,
): Promise<{ bundle: Bundle; name?: string; version?: number }> {
	if (await isPath(ref)) return { bundle: await readBundle(ref) };
	if (looksLikePath(ref))
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`no bundle or .onnx file at '${ref}'`,
		);
	// Loaded on demand: embedded users of bundle paths never open SQLite.
	const store =
		typeof registry === "object"
			? registry
			: await (await import("./registry/open.ts")).openRegistry(registry);
	try {
		const v = await store.get(ref);
		return {
			bundle: await store.openBundle(v),
			name: v.name,
			version: v.version,
		};
	} finally {
		if (typeof registry !== "object") await store.close();
	}
}
