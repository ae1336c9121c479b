// The reference profile of a bundle: read a training sample (CSV/Parquet/JSONL) through DuckDB, run the model on it,
// profile features and outputs; for a tree model whose file carries no node covers, count the rows reaching each node.
import { resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { formatOf, readExpr } from "../batch/files.ts";
import type { Bundle } from "../bundle/types.ts";
import { encodeColumns, outputsToColumns } from "../codec/table.ts";
import { keepRows } from "../dataplane/instance.ts";
import { loadBundle } from "../model.ts";
import {
	type ColumnKind,
	type ReferenceColumn,
	referenceProfile,
} from "../monitor/profile/build.ts";
import type { Profile } from "../monitor/profile/format.ts";
import { columnKinds } from "../monitor/profile/kinds.ts";
import { MlshipError } from "../protocol/errors.ts";
import { sqlIdent } from "../protocol/sql.ts";
import { CoverCounter, type CoversFile, lacksCovers } from "../trees/covers.ts";
import type { TreeModel } from "../trees/ir.ts";
import { readTreeModel } from "../trees/read/index.ts";

/** Reference rows read at most; a larger file is sampled (reservoir, repeatable) down to this many. */
export const MAX_REFERENCE_ROWS = 1_000_000;
/** Rows scored per model call while computing the reference's outputs. */
const CHUNK = 8192;

/** Result of {@link computeReference}: the profile, and how many rows it read (and whether it sampled). */
export interface ReferenceResult {
	profile: Profile;
	rows: number;
	sampled: boolean;
	/** Rows the model could not score (bad values): left out of the output profile. */
	unscored: number;
	/** Reference rows per node, when the artifact is a tree ensemble whose file carries no training counts. */
	covers?: CoversFile;
}

/** The tree ensemble in a bundle's artifact when its file carries no node covers (ONNX, sklearn2pmml); else undefined. */
function uncoveredTrees(bundle: Bundle): TreeModel | undefined {
	const a = bundle.manifest.artifact;
	let m: TreeModel;
	try {
		m = readTreeModel(bundle.files.get(a.path) ?? new Uint8Array(), a.path);
	} catch {
		return undefined; // not a tree or linear model (a neural network, another runtime's file)
	}
	return lacksCovers(m) ? m : undefined;
}

/**
 * Profiles `file` as the reference of `bundle`: its feature columns (it must have every feature; others, such as
 * the target, are ignored), and the model's outputs on it. A tree ensemble without node covers (ONNX, sklearn2pmml)
 * also gets them: the rows (weighted by column `weight` when given) reaching each node.
 */
export async function computeReference(
	bundle: Bundle,
	file: string,
	weight?: string,
): Promise<ReferenceResult> {
	const trees = uncoveredTrees(bundle);
	const counter = trees ? new CoverCounter(trees) : undefined;
	const model = await loadBundle(bundle, { mode: "inline" });
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		const from = readExpr(resolve(file), formatOf(file));
		let described: string[];
		let total: number;
		try {
			described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`))
				.getRows()
				.map((r) => String(r[0]));
			total = Number(
				(
					await conn.runAndReadAll(`SELECT count(*) FROM ${from}`)
				).getRows()[0]?.[0] ?? 0,
			);
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`cannot read the reference ${file}: ${(err as Error).message.split("\n")[0]}`,
			);
		}
		const features = model.features;
		const missing = features.filter((f) => !described.includes(f));
		if (missing.length > 0)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`reference ${file} has no column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")} for the model's feature${missing.length > 1 ? "s" : ""}; its columns are ${described.map((c) => `'${c}'`).join(", ")} (rename them, or give a file with every feature: ${features.join(", ")})`,
			);
		if (weight !== undefined && !described.includes(weight))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`reference ${file} has no weight column '${weight}'; its columns are ${described.map((c) => `'${c}'`).join(", ")}`,
			);
		if (total === 0)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`reference ${file} has no rows`,
			);
		const sampled = total > MAX_REFERENCE_ROWS;
		const sample = sampled
			? ` USING SAMPLE reservoir(${MAX_REFERENCE_ROWS} ROWS) REPEATABLE (42)`
			: "";
		const cols = (
			await conn.runAndReadAll(
				`SELECT ${[...features, ...(weight !== undefined ? [weight] : [])].map((f) => sqlIdent(f, "column")).join(", ")} FROM ${from}${sample}`,
			)
		).getColumnsObjectJS() as Record<string, unknown[]>;
		const rows = cols[features[0] as string]?.length ?? 0;
		const kinds = columnKinds(model.manifest, model.plan);
		const featureCols: ReferenceColumn[] = features.map((name) => ({
			name,
			kind: kinds.features.get(name) ?? "numeric",
			values: cols[name] ?? [],
		}));
		// Outputs: score the rows the model accepts, chunk by chunk.
		const outValues = new Map<string, unknown[]>();
		let unscored = 0;
		for (let start = 0; start < rows; start += CHUNK) {
			const end = Math.min(rows, start + CHUNK);
			const chunk: Record<string, unknown[]> = {};
			for (const f of features)
				chunk[f] = (cols[f] as unknown[]).slice(start, end);
			const enc = encodeColumns(model.plan, chunk);
			const bad = new Set(enc.errors.map((e) => e.row));
			unscored += bad.size;
			const { inputs, kept } = keepRows(
				enc.tensors,
				end - start,
				(r) => bad.has(r),
				bad.size > 0,
			);
			if (kept !== undefined && kept.length === 0) continue;
			if (counter) {
				const w =
					weight !== undefined ? (cols[weight] as unknown[]) : undefined;
				counter.add(
					inputs,
					w &&
						(kept ?? Array.from({ length: end - start }, (_, i) => i)).map(
							(r) => Number(w[start + r] ?? Number.NaN),
						),
				);
			}
			const outs = await model.predictTensors(inputs);
			for (const c of outputsToColumns(model.plan, outs)) {
				const acc = outValues.get(c.name) ?? [];
				for (const v of c.values) acc.push(v);
				outValues.set(c.name, acc);
			}
		}
		const outputCols: ReferenceColumn[] = [...outValues].map(
			([name, values]) => ({
				name,
				kind: kinds.outputs(name, values) satisfies ColumnKind,
				values,
			}),
		);
		return {
			profile: referenceProfile(rows, featureCols, outputCols),
			rows,
			sampled,
			unscored,
			...(counter
				? {
						covers: counter.file(bundle.manifest.artifact.sha256, weight),
					}
				: {}),
		};
	} finally {
		conn.closeSync();
		db.closeSync();
		await model.close();
	}
}
