// The scoring loop every batch job shares: chunks from a source → encoder → model (pipelined) → sink; bad rows recorded or fatal.
import {
	formatRowError,
	outputsToColumns,
	type RowError,
	TableEncoder,
} from "../codec/table.ts";
import { keepRows } from "../dataplane/instance.ts";
import type { Model } from "../model.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import { didYouMean, nearest } from "../protocol/suggest.ts";
import type { Tensor } from "../protocol/types.ts";
import type { Explanation } from "../runtime/types.ts";
import { onceValues } from "./sources/rows.ts";
import type {
	BatchSink,
	BatchSource,
	KeptColumn,
	PredictionColumn,
	RejectedRow,
	SourceChunk,
} from "./types.ts";

export interface ScoreOptions {
	/** `fail` stops at the first bad row; `skip` records it and goes on. */
	onError: "fail" | "skip";
	/** Source columns copied beside the predictions (`["*"]` = all). */
	keep: readonly string[];
	/** Constant columns written after the kept ones (e.g. model name and version). */
	stamp?: readonly { name: string; type: string; value: unknown }[];
	/** Rows per model call. */
	chunkRows: number;
	/** A second model scoring the same rows (same features); its columns are written as `challenger_<column>`. */
	challenger?: Model;
	/**
	 * Adds the K largest contributions (by magnitude) of each row's prediction as columns `explain_<i>_feature`
	 * and `explain_<i>_value` (a classifier: of its predicted class, in raw-output units).
	 */
	explain?: number;
	/** Called with the rows read so far (and the total when known). */
	onProgress?: (rows: number, total: number | undefined) => void;
	/** Rows at the start of the source that an earlier, interrupted run already handled: read, not scored. */
	skipRows?: number;
	/** The bad rows that earlier run found (reported again, in order, with this run's). */
	skippedRejected?: readonly RejectedRow[];
	/**
	 * Called, in source order, once every row before `rowsDone` is in the sink: `rowsScored` written by this run,
	 * `rejected` the bad rows among them (a checkpoint).
	 */
	onDurable?: (
		rowsDone: number,
		rowsScored: number,
		rejected: readonly RejectedRow[],
	) => Promise<void>;
}

export interface ScoreResult {
	/** Rows the source delivered plus lines it refused. */
	rowsIn: number;
	rowsScored: number;
	/** Refused CSV lines first, then bad rows in row order. */
	rejected: RejectedRow[];
}

const VECTOR_SIZE = 2048;
/** Chunks in the model at once: with the chunk being read, what bounds a job's memory (chunkRows × (this + 1) rows). */
export const MAX_INFLIGHT = 3;

/**
 * Scores every row of `source` with `model` into `sink`. Up to three chunks are in the model at once (the
 * model's worker pool uses every core) while the next is read; sink writes keep source order.
 * The caller finishes or aborts the sink.
 */
export async function scoreSource(
	model: Model,
	source: BatchSource,
	sink: BatchSink,
	opts: ScoreOptions,
): Promise<ScoreResult> {
	const described = await source.columns();
	const features = model.plan.features.map((f) => f.name);
	const missing = features.filter((f) => !described.has(f));
	if (missing.length > 0) {
		const others = [...described.keys()].filter((c) => !features.includes(c));
		const hints = missing.flatMap((m) => {
			const n = nearest(m, others);
			return n === undefined ? [] : [`'${n}' for '${m}'`];
		});
		throw invalidInput(
			`${source.label} has no column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")}${hints.length > 0 ? `; did you mean ${hints.join(", ")}?` : ""} (the model reads: ${features.join(", ")}; the source has: ${[...described.keys()].join(", ")})${model.manifest.features ? "" : unnamedHint(model, source)}`,
		);
	}
	const ch = opts.challenger;
	if (ch) {
		const theirs = ch.plan.features.map((f) => f.name);
		if (theirs.join("\0") !== features.join("\0"))
			throw invalidInput(
				`the challenger ${ch.name}${ch.version !== undefined ? `@${ch.version}` : ""} reads other features than ${model.name} (${theirs.join(", ")} vs ${features.join(", ")}); a challenger scores the same rows, so it must read the same columns`,
			);
	}
	const keep = opts.keep.includes("*") ? [...described.keys()] : opts.keep;
	for (const k of keep)
		if (!described.has(k))
			throw invalidInput(
				`--keep: ${source.label} has no column '${k}'${didYouMean(k, described.keys())}`,
			);
	const readCols = [...new Set([...keep, ...features])];
	const featureCols = features.map((f) => readCols.indexOf(f));
	const keepCols = keep.map((k) => readCols.indexOf(k));
	const total = await source.total();
	const enc = new TableEncoder(
		model.plan,
		Math.max(opts.chunkRows, VECTOR_SIZE),
		// Each batch goes to a model worker by reference, not copied (and not allocated again on the worker's heap):
		// 12% less CPU per row for the whole job on the breast_cancer GBDT (bench/batch, stage table).
		{ shared: true },
	);
	const rejected = (opts.skippedRejected ?? []).map((r) => ({
		row: r.row ?? 0,
		column: r.column ?? "",
		error: r.error,
		values: r.values ?? {},
	}));
	const inflight: Promise<() => Promise<void>>[] = [];
	let chunks: SourceChunk[] = [];
	let rowsIn = 0;
	let rowsScored = 0;
	let checkedNames = false;

	const valuesAt = (row: number): Record<string, unknown> => {
		let r = row;
		for (const c of chunks) {
			if (r < c.rows) {
				const values: Record<string, unknown> = {};
				readCols.forEach((name, i) => {
					values[name] = jsonSafe(c.values(i)[r]);
				});
				return values;
			}
			r -= c.rows;
		}
		return {};
	};

	const flush = async () => {
		const base = rowsIn;
		const n = enc.rows;
		const { tensors, errors } = enc.take();
		const bad = new Set<number>();
		if (errors.length > 0) {
			if (opts.onError === "fail") {
				const e = errors[0] as RowError;
				const at = source.lineOf?.(base + e.row, await source.rejected());
				const where = at
					? ` (${at.file ? `${at.file} ` : ""}line ${at.line})`
					: "";
				throw invalidInput(
					`${source.label}: ${formatRowError(e, base)}${where}`,
				);
			}
			for (const e of errors) {
				if (bad.has(e.row)) continue;
				bad.add(e.row);
				rejected.push({
					row: base + e.row + 1,
					column: e.column,
					error: e.message,
					values: valuesAt(e.row),
				});
			}
		}
		const { inputs, kept } = keepRows(
			tensors,
			n,
			(r) => bad.has(r),
			bad.size > 0,
		);
		const keptRows = kept ? kept.length : n;
		const keptCols: KeptColumn[] = keepCols.map((c, i) => {
			const all = chunks.flatMap((ch) => ch.values(c));
			return {
				name: keep[i] as string,
				type: described.get(keep[i] as string) as string,
				values: kept ? kept.map((r) => all[r]) : all,
			};
		});
		for (const s of opts.stamp ?? []) {
			// Built only for a sink that reads them: the file sink writes the constant once, in its final SELECT.
			let values: unknown[] | undefined;
			keptCols.push({
				name: s.name,
				type: s.type,
				get values() {
					values ??= new Array(keptRows).fill(s.value);
					return values;
				},
				constant: { value: s.value },
			});
		}
		rowsIn += n;
		chunks = [];
		opts.onProgress?.(rowsIn, total);
		const end = rowsIn;
		const badSoFar = rejected.length;
		const durable = async () => {
			if (opts.onDurable)
				await opts.onDurable(end, rowsScored, rejected.slice(0, badSoFar));
		};
		if (keptRows === 0) {
			inflight.push(Promise.resolve(durable));
			return;
		}
		const explain = opts.explain;
		const pending = Promise.all([
			model.predictTensors(inputs),
			ch?.predictTensors(inputs),
			explain ? model.explainTensors(inputs) : undefined,
		]).then(([outs, theirs, why]) => async () => {
			const preds = predictionColumns(model, outs);
			if (ch && theirs)
				for (const c of predictionColumns(ch, theirs))
					preds.push(Object.assign(c, { name: `challenger_${c.name}` }));
			if (why && explain) preds.push(...explainColumns(why, explain));
			if (!checkedNames) {
				checkedNames = true;
				const clash = preds.find((p) =>
					keptCols.some((k) => k.name === p.name),
				);
				if (clash)
					throw invalidInput(
						`--keep: input column '${clash.name}' has the name of a prediction column`,
					);
			}
			await sink.write(keptCols, preds, keptRows);
			rowsScored += keptRows;
			await durable();
		});
		pending.catch(() => {});
		inflight.push(pending);
		if (inflight.length >= MAX_INFLIGHT)
			await (await (inflight.shift() as Promise<() => Promise<void>>))();
	};

	let skip = opts.skipRows ?? 0;
	for await (const read of source.chunks(readCols)) {
		let chunk = read;
		if (skip > 0) {
			const s = Math.min(skip, chunk.rows);
			skip -= s;
			rowsIn += s;
			if (s === chunk.rows) continue;
			chunk = sliceChunk(chunk, s);
		}
		const n = chunk.rows;
		if (n === 0) continue;
		if (enc.rows + n > enc.capacity) await flush();
		featureCols.forEach((c, fi) => {
			enc.writeColumn(fi, n, chunk.source(c));
		});
		enc.commit(n);
		chunks.push(chunk);
		if (enc.rows >= opts.chunkRows) await flush();
	}
	if (enc.rows > 0) await flush();
	while (inflight.length > 0)
		await (await (inflight.shift() as Promise<() => Promise<void>>))();
	if (total !== undefined && rowsIn !== total)
		throw new MlshipError(
			"MLSHIP_INTERNAL",
			`read ${rowsIn} of the ${total} rows in ${source.label}; no output written`,
		);
	const refused = await source.rejected();
	if (refused.length > 0 && opts.onError === "fail") {
		const r = refused[0] as (typeof refused)[number];
		throw invalidInput(
			`${r.file ?? source.label}: line ${r.line}: ${r.message}: ${JSON.stringify(r.text)}`,
		);
	}
	if (rowsIn + refused.length === 0)
		throw invalidInput(`${source.label} has no rows to predict`);
	return {
		rowsIn: rowsIn + refused.length,
		rowsScored,
		rejected: [
			...refused.map((r) => ({
				...(r.file !== undefined ? { file: r.file } : {}),
				line: r.line,
				error: r.message,
				text: r.text,
			})),
			...rejected.map((b) => ({
				row: b.row,
				...source.lineOf?.(b.row - 1, refused),
				column: b.column,
				error: b.error,
				values: b.values,
			})),
		],
	};
}

/** A bare .onnx has no feature names, only its inputs' columns (float_input_0…): say how to name them from the data. */
function unnamedHint(model: Model, source: BatchSource): string {
	return `. The model has no feature names (a bare .onnx reads columns by position): run 'mlship bundle init ${model.manifest.artifact.path} --features-from ${source.path ?? "FILE"}' (add --exclude for columns that are not features, e.g. the target) to name them from your data, then give --model the directory holding the .onnx and its new mlship.yaml`;
}

/** The rows of `chunk` from `offset` on. */
function sliceChunk(chunk: SourceChunk, offset: number): SourceChunk {
	return {
		rows: chunk.rows - offset,
		source: (i) => {
			const src = chunk.source(i);
			const valid = src.valid;
			const nums = src.numbers as
				| (ArrayLike<number> & { subarray?: (a: number) => ArrayLike<number> })
				| undefined;
			return {
				get: (r) => src.get(r + offset),
				...(nums?.subarray ? { numbers: nums.subarray(offset) } : {}),
				...(valid && nums?.subarray
					? { valid: (r: number) => valid(r + offset) }
					: {}),
			};
		},
		values: onceValues((i) => chunk.values(i).slice(offset)),
	};
}

/**
 * The top-k contributions of each row as 2k columns (feature name, value), largest magnitude first; for several
 * targets, those of the target with the largest raw output (a classifier's predicted class).
 */
export function explainColumns(e: Explanation, k: number): PredictionColumn[] {
	const nf = e.features.length;
	const T = e.targets;
	const names: string[][] = Array.from({ length: k }, () => new Array(e.rows));
	const values: number[][] = Array.from({ length: k }, () => new Array(e.rows));
	const order = Array.from({ length: nf }, (_, j) => j);
	for (let r = 0; r < e.rows; r++) {
		let best = 0;
		let bestOut = Number.NEGATIVE_INFINITY;
		for (let t = 0; t < T; t++) {
			let out = e.base[t] as number;
			for (let j = 0; j < nf; j++)
				out += e.values[(r * T + t) * nf + j] as number;
			if (out > bestOut) [best, bestOut] = [t, out];
		}
		const o = (r * T + best) * nf;
		order.sort(
			(a, b) =>
				Math.abs(e.values[o + b] as number) -
				Math.abs(e.values[o + a] as number),
		);
		for (let i = 0; i < k; i++) {
			const j = order[i];
			(names[i] as string[])[r] =
				j === undefined ? "" : (e.features[j] as string);
			(values[i] as number[])[r] =
				j === undefined ? 0 : (e.values[o + j] as number);
		}
	}
	return names.flatMap((n, i) => [
		{
			name: `explain_${i + 1}_feature`,
			datatype: "BYTES" as const,
			text: true,
			values: n,
		},
		{
			name: `explain_${i + 1}_value`,
			datatype: "FP64" as const,
			text: false,
			values: values[i] as number[],
		},
	]);
}

/** Model outputs as table columns, each with the datatype of the output it came from. */
export function predictionColumns(
	model: Model,
	outs: Tensor[],
): PredictionColumn[] {
	return outputsToColumns(model.plan, outs).map((c) => {
		const t = outs.find(
			(o) => c.name === o.name || c.name.startsWith(`${o.name}_`),
		) as Tensor;
		// Assigned onto the column, not spread: its values stay unbuilt until a sink reads them.
		return Object.assign(c, {
			datatype: t.datatype,
			text:
				c.codes !== undefined ||
				t.datatype === "BYTES" ||
				(c.numbers === undefined && typeof c.values[0] === "string"),
		});
	});
}

/** A value as JSON can hold it (bigints as numbers, as text beyond 2^53 where a number would change; DuckDB values as text). */
export function jsonSafe(v: unknown): unknown {
	if (typeof v === "bigint")
		return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
	if (v !== null && typeof v === "object") return String(v);
	return v;
}
