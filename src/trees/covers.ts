// Node covers from reference data: how many reference rows (or how much of their weight) reach each node of each
// tree, for path-dependent TreeSHAP on model files that carry no training counts (ONNX TreeEnsemble, sklearn2pmml
// trees). Counted once, at `bundle init --reference`, by passing the rows through the representation, and kept in
// the bundle as covers.json (its sha256 in the manifest); the runtime lays them onto the trees it reads.
import { createHash } from "node:crypto";
import { MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import { batchRows, featureMatrix } from "./eval.ts";
import { goesLeft, type Tree, type TreeModel } from "./ir.ts";

/** The `format` of covers.json. */
export const COVERS_FORMAT = "mlship.covers";
/** Where `bundle init --reference` writes the covers, relative to the bundle. */
export const COVERS_FILE = "covers.json";
/** Largest covers.json read (a hostile file cannot make us parse more): 256 MiB. */
export const MAX_COVERS_BYTES = 256 * 1024 * 1024;

/** What covers.json holds: per tree of the representation, per node id, the reference weight reaching it. */
export interface CoversFile {
	format: typeof COVERS_FORMAT;
	version: 1;
	/** sha256 of the model file the covers were counted on. */
	artifact_sha256: string;
	/** sha256 of the trees' structure as read (node ids, splits, children): stale covers are refused. */
	structure: string;
	/** Reference rows counted. */
	rows: number;
	/** Column of the reference whose values weighted each row (null: every row counts 1). */
	weight: string | null;
	trees: number[][];
}

/** What to run when a tree model has no covers. */
export const ADD_COVERS =
	"count them from the training data: mlship bundle init DIR --reference TRAINING.parquet (writes covers.json)";

/** Whether `model` is a tree ensemble some of whose nodes lack a cover (TreeSHAP needs them all). */
export function lacksCovers(model: TreeModel): boolean {
	return (
		model.body.kind === "ensemble" &&
		model.body.trees.some((t) => t.cover.some((c) => Number.isNaN(c)))
	);
}

/** sha256 of what decides which node a row reaches: every tree's node count, features, modes, thresholds, children, sets. */
export function treeStructure(model: TreeModel): string {
	const h = createHash("sha256");
	if (model.body.kind !== "ensemble") return h.digest("hex");
	const bytes = (a: ArrayBufferView) =>
		new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
	for (const t of model.body.trees) {
		h.update(bytes(Int32Array.of(t.feature.length)));
		for (const a of [
			t.feature,
			t.threshold,
			t.mode,
			t.left,
			t.right,
			t.missingLeft,
			t.catStart,
			t.catLen,
			t.cats,
		])
			h.update(bytes(a));
	}
	return h.digest("hex");
}

/** Counts reference rows per node, batch by batch. */
export class CoverCounter {
	readonly #model: TreeModel;
	readonly #trees: Tree[];
	readonly #counts: Float64Array[];
	#rows = 0;

	constructor(model: TreeModel) {
		if (model.body.kind !== "ensemble")
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				"covers are counted for tree ensembles only",
			);
		this.#model = model;
		this.#trees = model.body.trees;
		this.#counts = this.#trees.map((t) => new Float64Array(t.feature.length));
	}

	get rows(): number {
		return this.#rows;
	}

	/**
	 * Adds a batch (tensors as the model's signature names them). `weights[r]` weighs row r (default 1); a row whose
	 * weight is not a finite number ≥ 0 is refused.
	 */
	add(inputs: readonly Tensor[], weights?: ArrayLike<number>): void {
		const rows = batchRows(inputs);
		const nf = this.#model.features.length;
		const X = featureMatrix(this.#model, inputs);
		for (let r = 0; r < rows; r++) {
			const w = weights ? (weights[r] as number) : 1;
			if (!Number.isFinite(w) || w < 0)
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`reference row ${this.#rows + r + 1}: weight ${w} is not a finite number ≥ 0`,
				);
			const xo = r * nf;
			this.#trees.forEach((t, k) => {
				const c = this.#counts[k] as Float64Array;
				let n = 0;
				c[0] = (c[0] as number) + w;
				while ((t.feature[n] as number) >= 0) {
					const v = X[xo + (t.feature[n] as number)] as number;
					n = goesLeft(t, n, v)
						? (t.left[n] as number)
						: (t.right[n] as number);
					c[n] = (c[n] as number) + w;
				}
			});
		}
		this.#rows += rows;
	}

	/** covers.json for the model file whose sha256 is `artifactSha256`. */
	file(artifactSha256: string, weight?: string): CoversFile {
		if (this.#rows === 0 || this.#counts.some((c) => !((c[0] as number) > 0)))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"the reference gives no weight to the model's trees (no rows, or every weight 0): covers need rows that reach them",
			);
		return {
			format: COVERS_FORMAT,
			version: 1,
			artifact_sha256: artifactSha256,
			structure: treeStructure(this.#model),
			rows: this.#rows,
			weight: weight ?? null,
			trees: this.#counts.map((c) => Array.from(c)),
		};
	}
}

const bad = (where: string, why: string): never => {
	throw new MlshipError(
		"MLSHIP_INVALID_BUNDLE",
		`${where}: ${why}; ${ADD_COVERS}`,
	);
};

/** Parses and checks covers.json (shape and size; not yet against a model). */
export function parseCovers(bytes: Uint8Array, where: string): CoversFile {
	if (bytes.byteLength > MAX_COVERS_BYTES)
		bad(where, `${bytes.byteLength} bytes (at most ${MAX_COVERS_BYTES})`);
	let v: unknown;
	try {
		v = JSON.parse(new TextDecoder().decode(bytes));
	} catch (err) {
		return bad(where, `not JSON: ${(err as Error).message}`);
	}
	const f = v as Partial<CoversFile> | null;
	if (!f || typeof f !== "object" || f.format !== COVERS_FORMAT)
		bad(where, `not a covers file (format '${COVERS_FORMAT}')`);
	const c = f as CoversFile;
	if (c.version !== 1) bad(where, `version ${String(c.version)} (1 is read)`);
	if (typeof c.artifact_sha256 !== "string" || typeof c.structure !== "string")
		bad(where, "artifact_sha256 and structure must be strings");
	if (
		!Array.isArray(c.trees) ||
		!c.trees.every(
			(t) =>
				Array.isArray(t) &&
				t.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0),
		)
	)
		bad(where, "trees must be lists of finite numbers ≥ 0, one per node");
	return c;
}

/**
 * `model` with the covers of `bytes` laid onto its trees. Refused (MLSHIP_INVALID_BUNDLE, saying to count them
 * again) when they were counted on another model file or another reading of its trees.
 */
export function withCovers(
	model: TreeModel,
	bytes: Uint8Array,
	artifactSha256: string,
	where: string,
): TreeModel {
	const c = parseCovers(bytes, where);
	if (model.body.kind !== "ensemble")
		return bad(where, "covers given for a model that is not a tree ensemble");
	if (c.artifact_sha256 !== artifactSha256)
		bad(
			where,
			`counted on another model file (sha256 ${c.artifact_sha256.slice(0, 12)}…, the artifact is ${artifactSha256.slice(0, 12)}…)`,
		);
	if (c.structure !== treeStructure(model))
		bad(
			where,
			"counted on another reading of the trees (this version of mlship lays them out differently)",
		);
	const trees = model.body.trees;
	if (
		c.trees.length !== trees.length ||
		c.trees.some((t, k) => t.length !== trees[k]?.feature.length)
	)
		bad(where, "the number of trees or nodes differs from the model's");
	return {
		...model,
		body: {
			...model.body,
			trees: trees.map((t, k) => ({
				...t,
				cover: Float64Array.from(c.trees[k] as number[]),
			})),
		},
	};
}
