// `mlship bundle`: write a manifest for a model file (init) and check a bundle (verify).

import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { Command, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { formatOf, readExpr } from "../batch/files.ts";
import {
	artifactBytes,
	type Bundle,
	MANIFEST_FILE,
	manifestFromArtifact,
	readBundle,
	sha256Hex,
	withGraphCategories,
} from "../bundle/bundle.ts";
import {
	compareGolden,
	GOLDEN_ABS,
	GOLDEN_FILE,
	GOLDEN_REL,
	parseGolden,
} from "../bundle/golden.ts";
import {
	type Manifest,
	stringifyManifest,
	unsafeBundlePath,
	validateManifest,
} from "../bundle/manifest.ts";
import type { Row } from "../codec/table.ts";
import { loadBundle } from "../model.ts";
import { stringifyProfile } from "../monitor/profile/format.ts";
import { MlshipError } from "../protocol/errors.ts";
import { COVERS_FILE, parseCovers, withCovers } from "../trees/covers.ts";
import { readTreeModel } from "../trees/read/index.ts";
import { action, example, output } from "./common.ts";
import { computeReference, type ReferenceResult } from "./reference.ts";

/**
 * When the bundle has covers.json: that they fit the model file's trees (counted on this artifact, as this version
 * reads it); refused with what to run otherwise.
 */
function checkCovers(b: Bundle): { rows: number; trees: number } | undefined {
	const ref = b.manifest.covers;
	if (!ref) return undefined;
	const where = `${b.source}: ${ref.path}`;
	const bytes = b.files.get(ref.path) ?? new Uint8Array();
	const model = withCovers(
		readTreeModel(artifactBytes(b), b.manifest.artifact.path),
		bytes,
		b.manifest.artifact.sha256,
		where,
	);
	const trees = model.body.kind === "ensemble" ? model.body.trees.length : 0;
	return { rows: parseCovers(bytes, where).rows, trees };
}

/** Scores golden.json's records (when the bundle directory has one) and refuses outputs that differ from the library's. */
async function checkGolden(
	dir: string,
	m: Awaited<ReturnType<typeof loadBundle>>,
): Promise<{ rows: number; outputs: string[] } | undefined> {
	const file = join(dir, GOLDEN_FILE);
	if (!existsSync(file)) return undefined;
	const g = parseGolden(await readFile(file, "utf8"), file);
	if (g.records.length === 0) return { rows: 0, outputs: [] };
	const outs = await m.predictTensors(m.encodeTable(g.records as Row[]));
	const { checked, mismatches, bad } = compareGolden(g, outs);
	if (bad > 0)
		throw new MlshipError(
			"MLSHIP_INTEGRITY",
			`${file}: the model gives other outputs than the library (${g.produced_by}) on ${bad} of ${g.records.length} rows (|d| ≤ ${GOLDEN_REL}·|library| + ${GOLDEN_ABS}, labels exact):\n${mismatches.map((x) => `  row ${x.row} ${x.output}: library ${JSON.stringify(x.expected)}, model ${JSON.stringify(x.got)}`).join("\n")}\nThe artifact or the runtime changed since the bundle was saved: save it again from the trained model`,
		);
	return { rows: g.records.length, outputs: checked };
}

async function columnsOf(path: string): Promise<string[]> {
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		const r = await conn.runAndReadAll(
			`DESCRIBE SELECT * FROM ${readExpr(resolve(path), formatOf(path))}`,
		);
		return r.getRows().map((row) => String(row[0]));
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`cannot read columns of ${path}: ${(err as Error).message.split("\n")[0]}`,
		);
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

const list = (s: string) =>
	s
		.split(",")
		.map((x) => x.trim())
		.filter(Boolean);

interface InitOpts {
	name?: string;
	features?: string[];
	featuresFrom?: string;
	exclude?: string[];
	labels?: string[];
	force?: boolean;
	json?: boolean;
	/** A training sample (CSV/Parquet/JSONL) to profile as the drift reference. */
	reference?: string;
	/** A column of the reference weighing each row in the node covers (as sample_weight did in training). */
	referenceWeight?: string;
}

/** Where `bundle init --reference` writes the reference profile, relative to the bundle. */
export const PROFILE_FILE = "profile.json";

/**
 * The model file `model` names: the file itself; in a directory, the artifact its mlship.yaml names (a bundle being
 * refreshed, any format), else the only .onnx file there.
 */
async function onnxFileOf(model: string): Promise<string> {
	const full = resolve(model);
	const info = await stat(full).catch(() => {
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`no such file or directory: ${model}`,
		);
	});
	if (!info.isDirectory()) return full;
	const manifest = join(full, MANIFEST_FILE);
	if (existsSync(manifest)) {
		const art = (
			parseYaml(await readFile(manifest, "utf8")) as {
				artifact?: { path?: unknown };
			} | null
		)?.artifact?.path;
		if (typeof art === "string" && !unsafeBundlePath(art))
			return join(full, art);
	}
	const found = (await readdir(full, { withFileTypes: true }))
		.filter((d) => d.isFile() && /\.onnx$/i.test(d.name))
		.map((d) => d.name)
		.sort();
	if (found.length === 1) return join(full, found[0] as string);
	if (found.length === 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`no .onnx file in ${model}: put the model there, or give its path (mlship bundle init path/to/model.onnx)`,
		);
	throw new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`${model} holds ${found.length} .onnx files (${found.join(", ")}): name the one to bundle, e.g. mlship bundle init ${join(model, found[0] as string)}`,
	);
}

/**
 * Writes (or refreshes) mlship.yaml next to an ONNX file (or the only one in a directory). The model is named after
 * the bundle directory unless `name` is given. An existing manifest keeps the user's edits; its digest and
 * signature are brought up to date.
 */
export async function initBundle(
	model: string,
	opts: InitOpts,
): Promise<{
	path: string;
	manifest: Manifest;
	refreshed: boolean;
	skipped: string[];
	/** `covers`: trees and nodes counted into covers.json (a tree model whose file carries no node covers). */
	reference?: Omit<ReferenceResult, "profile" | "covers"> & {
		covers?: { trees: number; nodes: number };
	};
}> {
	const file = await onnxFileOf(model);
	const bytes = new Uint8Array(
		await readFile(file).catch(() => {
			throw new MlshipError("MLSHIP_MODEL_NOT_FOUND", `no such file: ${model}`);
		}),
	);
	const dir = dirname(file);
	const path = join(dir, MANIFEST_FILE);
	// The directory is the bundle (one mlship.yaml): converters all write "model.onnx", so the file says nothing.
	const {
		manifest: fresh,
		skipped,
		categories,
	} = await manifestFromArtifact(
		bytes,
		opts.name ?? (basename(dir) || basename(file).replace(/\.onnx$/i, "")),
		relative(dir, file),
		file === resolve(model) ? model : join(model, basename(file)),
	);
	let manifest: Manifest = fresh;
	let refreshed = false;
	if (existsSync(path) && !opts.force) {
		const old = parseYaml(await readFile(path, "utf8")) as Record<
			string,
			unknown
		>;
		manifest = {
			...(old as Manifest),
			artifact: fresh.artifact,
			signature: fresh.signature,
		};
		refreshed = true;
	}
	let names = opts.features;
	if (opts.featuresFrom) {
		const exclude = new Set(opts.exclude ?? []);
		names = (await columnsOf(opts.featuresFrom)).filter((c) => !exclude.has(c));
	}
	if (names) {
		if (fresh.signature.inputs.length !== 1)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`the model has ${fresh.signature.inputs.length} inputs: each input is a feature column of its name; edit 'features' in mlship.yaml to rename them`,
			);
		manifest.features = withGraphCategories(
			names.map((n) => ({ name: n })),
			fresh.signature,
			categories,
		);
	}
	if (opts.labels) manifest.labels = opts.labels;
	if (opts.name) manifest.name = opts.name;
	manifest = validateManifest(manifest, path);
	let reference: Omit<ReferenceResult, "profile" | "covers"> | undefined;
	let covered: { trees: number; nodes: number } | undefined;
	if (opts.referenceWeight !== undefined && !opts.reference)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"--reference-weight names a column of the --reference file: give both",
		);
	if (opts.reference) {
		const { profile: _stale, covers: _staleCovers, ...current } = manifest;
		const r = await computeReference(
			{
				manifest: current,
				files: new Map([[manifest.artifact.path, bytes]]),
				source: dir,
			},
			opts.reference,
			opts.referenceWeight,
		);
		const text = new TextEncoder().encode(stringifyProfile(r.profile));
		await writeFile(join(dir, PROFILE_FILE), text);
		manifest = validateManifest(
			{
				...current,
				profile: { path: PROFILE_FILE, sha256: sha256Hex(text) },
			},
			path,
		);
		if (r.covers) {
			const c = new TextEncoder().encode(`${JSON.stringify(r.covers)}\n`);
			await writeFile(join(dir, COVERS_FILE), c);
			manifest = validateManifest(
				{ ...manifest, covers: { path: COVERS_FILE, sha256: sha256Hex(c) } },
				path,
			);
			covered = {
				trees: r.covers.trees.length,
				nodes: r.covers.trees.reduce((a, t) => a + t.length, 0),
			};
		}
		reference = { rows: r.rows, sampled: r.sampled, unscored: r.unscored };
	}
	await writeFile(path, stringifyManifest(manifest));
	return {
		path,
		manifest,
		refreshed,
		skipped,
		...(reference
			? { reference: { ...reference, ...(covered ? { covers: covered } : {}) } }
			: {}),
	};
}

export function bundleCommand(): Command {
	const cmd = new Command("bundle").description(
		"Create and check model bundles (mlship.yaml + artifact)",
	);
	example(
		cmd
			.command("init")
			.description(
				"Write mlship.yaml next to an ONNX model, with the signature read from the graph",
			)
			.argument(
				"<model.onnx>",
				"the model file (.onnx, .pmml, XGBoost .json, LightGBM .txt), or a bundle directory: the artifact its mlship.yaml names, else its only .onnx file",
			)
			.option(
				"--name <name>",
				"model name (default: the bundle directory's name)",
			)
			.option(
				"--features <a,b,c>",
				"feature column names, in input-column order",
				list,
			)
			.option(
				"--features-from <file>",
				"take feature names from the columns of a CSV/Parquet/JSONL file",
			)
			.option(
				"--exclude <a,b>",
				"with --features-from: columns that are not features (e.g. the target)",
				list,
			)
			.option(
				"--labels <a,b,c>",
				"class names in probability-column order",
				list,
			)
			.option(
				"--reference <file>",
				"profile a training sample (CSV/Parquet/JSONL with every feature column) as the drift reference: writes profile.json with the features' and the model's outputs' distributions; for a tree model whose file carries no node covers (ONNX, sklearn2pmml) also covers.json, the rows reaching each node, which TreeSHAP needs",
			)
			.option(
				"--reference-weight <column>",
				"with --reference: a column weighing each row in covers.json (the sample_weight the model was trained with)",
			)
			.option(
				"--force",
				"overwrite an existing mlship.yaml instead of refreshing it",
			)
			.option("--json", "print the manifest as JSON")
			.action(
				action(async (model: string, opts: InitOpts) => {
					const r = await initBundle(model, opts);
					if (r.skipped.length > 0)
						process.stderr.write(
							`warning: output(s) ${r.skipped.join(", ")} are ZipMap (sequence of maps) and were left out; re-export with zipmap disabled to serve probabilities\n`,
						);
					output(
						Boolean(opts.json),
						{
							path: r.path,
							refreshed: r.refreshed,
							manifest: r.manifest,
							...(r.reference ? { reference: r.reference } : {}),
						},
						() =>
							`${r.refreshed ? "refreshed" : "wrote"} ${r.path}: ${r.manifest.signature.inputs.length} input(s), ${r.manifest.signature.outputs.length} output(s); edit features, labels and metadata there${r.reference ? `\nreference profile: ${r.reference.rows} rows${r.reference.sampled ? " (a sample of the file)" : ""}${r.reference.unscored > 0 ? `, ${r.reference.unscored} the model could not score` : ""} → ${PROFILE_FILE}${r.reference.covers ? `\nnode covers for TreeSHAP: ${r.reference.covers.nodes} nodes of ${r.reference.covers.trees} trees → ${COVERS_FILE}` : ""}` : ""}`,
					);
				}),
			),
		"mlship bundle init model.onnx --features-from train.csv --exclude target --labels setosa,versicolor,virginica",
		"mlship bundle init ./churn-bundle --name churn",
		"mlship bundle init ./churn-bundle --reference train.parquet",
		"mlship bundle init ./gbdt-onnx --reference train.parquet   # + covers.json: TreeSHAP for ONNX/PMML trees",
	);
	example(
		cmd
			.command("verify")
			.description(
				"Check a bundle: manifest schema, sha256 of every artifact, that the model loads, and (when the bundle directory has golden.json, as the Python SDK writes) that it gives the original library's outputs on those rows",
			)
			.argument("<path>", "bundle directory or .onnx file")
			.addOption(new Option("--json", "print the result as JSON"))
			.action(
				action(async (path: string, opts: { json?: boolean }) => {
					const b = await readBundle(path);
					const covers = checkCovers(b);
					const m = await loadBundle(b, { mode: "inline" });
					let golden: { rows: number; outputs: string[] } | undefined;
					try {
						golden = await checkGolden(b.source, m);
					} finally {
						await m.close();
					}
					output(
						Boolean(opts.json),
						{
							ok: true,
							name: b.manifest.name,
							sha256: b.manifest.artifact.sha256,
							signature: b.manifest.signature,
							golden: golden ?? null,
							covers: covers ?? null,
						},
						() =>
							`ok: ${b.manifest.name} (sha256 ${b.manifest.artifact.sha256.slice(0, 12)}…) loads; features: ${m.features.join(", ")}${golden ? `\ngolden.json: ${golden.rows} rows give the library's ${golden.outputs.join(", ")} (|d| ≤ ${GOLDEN_REL}·|library| + ${GOLDEN_ABS})` : ""}${covers ? `\n${b.manifest.covers?.path}: node covers of ${covers.rows} reference rows fit the model's ${covers.trees} trees` : ""}`,
					);
				}),
			),
		"mlship bundle verify ./my-bundle",
		"mlship bundle verify ./my-bundle --json",
	);
	return cmd;
}
