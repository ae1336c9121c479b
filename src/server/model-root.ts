// Loading a model that is not served yet, by name, from --model-root (a Triton-style model repository): only a
// bundle directory or .onnx file directly under the root, never a path the client names, never a symlink out of it.
import { realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { DataPlane } from "../dataplane/types.ts";
import { MlshipError } from "../protocol/errors.ts";
import { assertName } from "../registry/types.ts";

function notInRoot(name: string, root: string, why: string): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`unknown model '${name.slice(0, 200)}': ${why} under the model root ${root}`,
	);
}

/**
 * The bundle a model name names under `root`: `ROOT/NAME` (a bundle directory) or `ROOT/NAME.onnx`. The name must be
 * a model name (letters, digits, '.', '_', '-'; no '/', no leading '.'), and the real path, every symlink followed,
 * must stay inside the root's real path.
 * @example await bundleUnderRoot("/models", "churn") // "/models/churn"
 */
export async function bundleUnderRoot(
	root: string,
	name: string,
): Promise<string> {
	try {
		assertName(name);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${(err as Error).message}; models load by name from the model root, never by path`,
		);
	}
	const realRoot = await realpath(root).catch((err: unknown) => {
		throw new MlshipError(
			"MLSHIP_UNAVAILABLE",
			`the model root ${root} cannot be read: ${(err as Error).message}`,
		);
	});
	for (const candidate of [name, `${name}.onnx`]) {
		const path = join(realRoot, candidate);
		const info = await stat(path).catch(() => undefined);
		if (!info) continue;
		const real = await realpath(path);
		const rel = relative(realRoot, real);
		if (rel === "" || rel.split(sep).includes("..") || rel.startsWith(sep))
			throw notInRoot(
				name,
				root,
				`${candidate} is a symlink that leads out of the model root, to ${real}; it is not`,
			);
		return real;
	}
	throw notInRoot(name, root, `no ${name}/ or ${name}.onnx`);
}

/**
 * Loads (or reloads) a model by name: a served one as it is; with a model root, a name that is not served yet from
 * its bundle under the root (and forgotten again if that first load fails, so readiness is not lost).
 */
export async function loadByName(
	dp: DataPlane,
	name: string,
	modelRoot: string | undefined,
): Promise<void> {
	if (
		modelRoot === undefined ||
		dp.repositoryIndex().some((e) => e.name === name)
	)
		return dp.load(name);
	const source = await bundleUnderRoot(modelRoot, name);
	try {
		dp.addModel({ name, source });
	} catch (err) {
		// Another request added it meanwhile: load it like any served model.
		if (!(err instanceof MlshipError && err.code === "MLSHIP_ALREADY_EXISTS"))
			throw err;
		return dp.load(name);
	}
	try {
		await dp.load(name);
	} catch (err) {
		dp.removeModel(name);
		throw err;
	}
}
