// Bundles on disk: read a bundle directory or a bare model file (.onnx), verify every artifact's sha256.
import { createHash } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import {
	basename,
	dirname,
	extname,
	join,
	relative,
	resolve,
	sep,
} from "node:path";
import { effectiveFeatures } from "../codec/table.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { Signature } from "../protocol/types.ts";
import { runtime, runtimeForFile } from "../runtime/registry.ts";
import type { InputCategories } from "../runtime/types.ts";
import {
	type Feature,
	type Manifest,
	parseManifest,
	unsafeBundlePath,
} from "./manifest.ts";
import type { Bundle } from "./types.ts";

export { artifactBytes, type Bundle } from "./types.ts";

export const MANIFEST_FILE = "mlship.yaml";

/** Lowercase hex sha256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
	return createHash("sha256").update(bytes).digest("hex");
}

/** Paths of the files a manifest names, with their expected digests. */
export function manifestFiles(m: Manifest): { path: string; sha256: string }[] {
	const files = [m.artifact];
	if (m.reference) files.push(m.reference);
	if (m.profile) files.push(m.profile);
	if (m.covers) files.push(m.covers);
	return files;
}

/** Throws MLSHIP_INTEGRITY when any file's sha256 differs from the manifest's (a bundle is never half-trusted). */
export function verifyFiles(
	m: Manifest,
	files: Map<string, Uint8Array>,
	source: string,
): void {
	for (const f of manifestFiles(m)) {
		const bytes = files.get(f.path);
		if (!bytes)
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`${source}: file '${f.path}' named in the manifest is missing`,
			);
		const got = sha256Hex(bytes);
		if (got !== f.sha256)
			throw new MlshipError(
				"MLSHIP_INTEGRITY",
				`${source}: sha256 of '${f.path}' is ${got} but the manifest says ${f.sha256}; the file was changed or corrupted (if the change is intended, run 'mlship bundle init' to record the new digest)`,
			);
	}
}

/**
 * Reads a bundle in memory from its manifest text and files (as stored in a registry), verifying digests.
 * `json`: the manifest text is JSON (a registry stores it so), parsed without the YAML parser.
 */
export function bundleFromParts(
	manifestText: string,
	files: Map<string, Uint8Array>,
	source: string,
	json = false,
): Bundle {
	const manifest = parseManifest(manifestText, `${source}: mlship.yaml`, json);
	verifyFiles(manifest, files, source);
	return { manifest, files, source };
}

/**
 * Gives each feature the categories the graph's encoders accept for the input column it feeds (features in
 * input-column order, as in mlship.yaml). Only encoders that fail on another value count (`strict`): a value the
 * model maps to a default is not refused. A feature that already lists categories keeps its own.
 */
export function withGraphCategories(
	features: readonly Feature[],
	signature: Signature,
	categories: readonly InputCategories[],
): Feature[] {
	const strict = new Map(
		categories
			.filter((c) => c.strict)
			.map((c) => [`${c.input}\u0000${c.column}`, c.values]),
	);
	const next = new Map<string, number>();
	const first = signature.inputs[0]?.name ?? "";
	return features.map((f) => {
		const input = f.input ?? first;
		const column = next.get(input) ?? 0;
		next.set(input, column + 1);
		const values = strict.get(`${input}\u0000${column}`);
		return values && !f.categories ? { ...f, categories: values } : f;
	});
}

/**
 * Builds a manifest for a bare model file from what its runtime reads in it (by default the runtime its file
 * extension names, e.g. `.onnx`): signature, and the features of inputs whose encoders accept only known
 * categories (so an unknown one is a clear 400, and warm-up rows use a known one). `skipped` names outputs the
 * runtime cannot return (ONNX ZipMap), left out; `categories` is what the graph's encoders accept.
 * `source` names the file in errors (default: the artifact path), e.g. "not an ONNX model: SOURCE".
 */
export async function manifestFromArtifact(
	bytes: Uint8Array,
	name: string,
	artifactPath: string,
	source: string = artifactPath,
	runtimeName = runtimeForFile(artifactPath) ?? "onnx",
): Promise<{
	manifest: Manifest;
	skipped: string[];
	categories: InputCategories[];
}> {
	const rt = await runtime(runtimeName);
	if (!rt.describe)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${artifactPath}: the ${runtimeName} runtime cannot read a signature from the model file; write mlship.yaml with its signature`,
		);
	const {
		signature,
		skipped,
		categories = [],
	} = await rt.describe(bytes, source);
	const outNames = signature.outputs.map((o) => o.name);
	const task =
		outNames.includes("probabilities") || outNames.includes("label")
			? "classification"
			: outNames.length === 1
				? "regression"
				: "other";
	const manifest: Manifest = {
		mlship: 1,
		name:
			name.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") ||
			"model",
		runtime: runtimeName,
		task,
		artifact: { path: artifactPath, sha256: sha256Hex(bytes) },
		signature,
	};
	if (categories.some((c) => c.strict)) {
		let features: Feature[] | undefined;
		try {
			features = effectiveFeatures({ signature });
		} catch {
			// an input of variable width has no default features; its categories wait for explicit ones
		}
		if (features)
			manifest.features = withGraphCategories(features, signature, categories);
	}
	return { manifest, skipped, categories };
}

async function readOrFail(path: string): Promise<Uint8Array> {
	try {
		return new Uint8Array(await readFile(path));
	} catch (err) {
		const code = (err as NodeJS.ErrnoException).code;
		throw new MlshipError(
			code === "ENOENT" ? "MLSHIP_MODEL_NOT_FOUND" : "MLSHIP_INVALID_BUNDLE",
			code === "ENOENT"
				? `no such file: ${path}`
				: `cannot read ${path}: ${(err as Error).message}`,
			{ cause: err },
		);
	}
}

/**
 * The real path of a manifest's file, refused unless it stays inside the bundle directory once every symlink is
 * followed: `ln -s /etc/passwd bundle/model.onnx` (or a symlinked subdirectory) must not register /etc/passwd. The
 * file is then read at that real path, so a symlink swapped in after the check is not followed.
 */
async function insideBundle(
	realDir: string,
	path: string,
	manifestPath: string,
): Promise<string> {
	const why = unsafeBundlePath(path);
	if (why)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${manifestPath}: path '${path}' ${why}`,
		);
	let real: string;
	try {
		real = await realpath(join(realDir, path));
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code === "ENOENT")
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`no such file: ${join(realDir, path)} (named by ${manifestPath})`,
				{ cause: err },
			);
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`cannot read ${join(realDir, path)}: ${(err as Error).message}`,
			{ cause: err },
		);
	}
	const rel = relative(realDir, real);
	if (
		rel === "" ||
		rel.startsWith(`..${sep}`) ||
		rel === ".." ||
		resolve(realDir, rel) !== real
	)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${manifestPath}: '${path}' is a symlink (or under one) that leads out of the bundle, to ${real}; copy the file into the bundle directory instead`,
		);
	return real;
}

/**
 * Reads a bundle from a directory holding mlship.yaml, the mlship.yaml file itself, or a bare `.onnx` file
 * (its signature read from the graph). Every artifact's sha256 is verified.
 */
export async function readBundle(path: string): Promise<Bundle> {
	const full = resolve(path);
	let info: Awaited<ReturnType<typeof stat>>;
	try {
		info = await stat(full);
	} catch {
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`no bundle, .onnx file or registered model at '${path}'`,
		);
	}
	const bare = info.isFile() ? runtimeForFile(full) : undefined;
	if (bare !== undefined) {
		const bytes = await readOrFail(full);
		const { manifest } = await manifestFromArtifact(
			bytes,
			basename(full, extname(full)),
			basename(full),
			path,
			bare,
		);
		return {
			manifest,
			files: new Map([[manifest.artifact.path, bytes]]),
			source: full,
		};
	}
	const dir = info.isDirectory() ? full : dirname(full);
	const manifestPath = info.isDirectory() ? join(dir, MANIFEST_FILE) : full;
	const text = new TextDecoder().decode(await readOrFail(manifestPath));
	const manifest = parseManifest(text, manifestPath);
	const files = new Map<string, Uint8Array>();
	const realDir = await realpath(dir);
	for (const f of manifestFiles(manifest))
		files.set(
			f.path,
			await readOrFail(await insideBundle(realDir, f.path, manifestPath)),
		);
	verifyFiles(manifest, files, dir);
	return { manifest, files, source: dir };
}
