// Checkpoints of file jobs: which input rows an interrupted run already wrote (as part files), so --resume goes on from there.
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { invalidInput } from "../protocol/errors.ts";
import type { RejectedRow } from "./types.ts";

/** The model that wrote a checkpoint: a run with another model (another artifact or registry version) never resumes it. */
export interface CheckpointModel {
	name: string;
	version: number | null;
	/** sha256 of the model's artifact (what the registry records per version). */
	sha256: string;
}

export interface Checkpoint {
	/** What the job is; a checkpoint of another job is never resumed. */
	job: Record<string, unknown>;
	model: CheckpointModel;
	/** Input rows (from the start of the source) whose predictions are in part files. */
	rows_done: number;
	rows_scored: number;
	/** Part files written: part-000000.parquet … */
	parts: number;
	rejected: RejectedRow[];
}

const FILE = "checkpoint.json";

/**
 * Opens the checkpoint directory of a job: the saved state when it belongs to `job`, else a fresh start
 * (an empty directory). A directory holding another job's checkpoint is refused rather than overwritten.
 */
export async function openCheckpoint(
	dir: string,
	job: Record<string, unknown>,
	model: CheckpointModel,
): Promise<Checkpoint> {
	let saved: Checkpoint | undefined;
	try {
		saved = JSON.parse(await readFile(join(dir, FILE), "utf8")) as Checkpoint;
	} catch {
		saved = undefined;
	}
	if (saved && !isDeepStrictEqual(saved.model, model))
		throw invalidInput(
			`${dir} was written by ${describeModel(saved.model)}, but this run's model is ${describeModel(model)}: resuming would mix the predictions of two models. Run with the model that wrote it, or delete ${dir} to start over`,
		);
	if (saved && !isDeepStrictEqual(saved.job, job))
		throw invalidInput(
			`${dir} holds the checkpoint of another job (${JSON.stringify(saved.job)}); delete it or change --sink`,
		);
	if (saved) return saved;
	await rm(dir, { recursive: true, force: true });
	await mkdir(dir, { recursive: true });
	return { job, model, rows_done: 0, rows_scored: 0, parts: 0, rejected: [] };
}

function describeModel(m: CheckpointModel | undefined): string {
	if (!m?.sha256) return "a model mlship did not record (an older checkpoint)";
	return `${m.name}${m.version !== null ? `@${m.version}` : ""} (sha256 ${m.sha256})`;
}

/** Saves a checkpoint atomically (write, then rename): a kill leaves the old one or the new one, never half. */
export async function saveCheckpoint(
	dir: string,
	cp: Checkpoint,
): Promise<void> {
	const tmp = join(dir, `${FILE}.tmp`);
	await writeFile(tmp, JSON.stringify(cp));
	await rename(tmp, join(dir, FILE));
}
