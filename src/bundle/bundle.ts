// Bundles on disk: read a bundle directory or a bare .onnx file, verify every artifact's sha256.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { effectiveFeatures } from "../codec/table.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { Signature } from "../protocol/types.ts";
import {
	type InputCategories,
	readOnnxCategories,
} from "../runtime/onnx/graph.ts";
import { readOnnxSignature } from "../runtime/onnx/session.ts";
import { type Feature, type Manifest, parseManifest } from "./manifest.ts";

/** A bundle in memory: its manifest and the bytes of every file it names, verified. */
export interface Bundle {
	manifest: Manifest;
	/** Files by bundle-relative path (the artifact, and the reference data when present). */
	files: Map<string, Uint8Array>;
	/** Where it was read from, for messages. */
	source: string;
}

export const MANIFEST_FILE = "mlship.yaml";

/** Lowercase hex sha256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
	return createHash("sha256").update(bytes).digest("hex");
}

/** Paths of the files a manifest names, with their expected digests. */
export function manifestFiles(m: Manifest): { path: string; sha256: string }[] {
	return m.reference ? [m.artifact, m.reference] : [m.artifact];
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

/** The model artifact's bytes. */
export function artifactBytes(b: Bundle): Uint8Array {
	return b.files.get(b.manifest.artifact.path) as Uint8Array;
}

/** Reads a bundle in memory from its manifest text and files (as stored in a registry), verifying digests. */
export function bundleFromParts(
	manifestText: string,
	files: Map<string, Uint8Array>,
	source: string,
): Bundle {
	const manifest = parseManifest(manifestText, `${source}: mlship.yaml`);
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
 * Builds a manifest for a bare ONNX model from its graph: signature, and the features of inputs whose encoders
 * accept only known categories (so an unknown one is a clear 400, and warm-up rows use a known one). `skipped`
 * names non-tensor (ZipMap) outputs that were left out; `categories` is what the graph's encoders accept.
 */
export async function manifestFromOnnx(
	bytes: Uint8Array,
	name: string,
	artifactPath: string,
): Promise<{
	manifest: Manifest;
	skipped: string[];
	categories: InputCategories[];
}> {
	const { signature, skipped } = await readOnnxSignature(bytes);
	const categories = readOnnxCategories(bytes);
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
		runtime: "onnx",
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
	if (info.isFile() && extname(full).toLowerCase() === ".onnx") {
		const bytes = await readOrFail(full);
		const { manifest } = await manifestFromOnnx(
			bytes,
			basename(full, extname(full)),
			basename(full),
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
	for (const f of manifestFiles(manifest)) {
		if (f.path.includes(".."))
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`${manifestPath}: path '${f.path}' leaves the bundle`,
			);
		files.set(f.path, await readOrFail(join(dir, f.path)));
	}
	verifyFiles(manifest, files, dir);
	return { manifest, files, source: dir };
}
