// Offline prediction over table files: stream chunks from DuckDB, score them on the model, write through DuckDB.

import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
	type DuckDBConnection,
	type DuckDBDataChunk,
	DuckDBInstance,
	type DuckDBType,
	type DuckDBValue,
} from "@duckdb/node-api";
import {
	formatRowError,
	outputsToColumns,
	type RowError,
	selectRows,
	TableEncoder,
} from "../codec/table.ts";
import type { Model } from "../model.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import {
	appendColumns,
	columnSource,
	copyOptions,
	csvLineOf,
	duckTypeFor,
	type FileFormat,
	formatOf,
	type RejectedLine,
	readExpr,
	rejectedLines,
	sqlIdent,
	sqlString,
} from "./files.ts";

export interface PredictFileOptions {
	input: string;
	output: string;
	inputFormat?: string;
	outputFormat?: string;
	/** `fail` stops at the first bad row and writes no output; `skip` writes bad rows to the error file and goes on. */
	onError?: "fail" | "skip";
	/** Where skipped rows go (JSON lines); default `<output>.errors.jsonl`. */
	errorsPath?: string;
	/** Input columns copied to the output beside the predictions (`["*"]` = all). */
	keep?: string[];
	/** Rows per model call (default 32768). */
	chunkRows?: number;
	/** Called with the rows read so far (and the total when known). */
	onProgress?: (rows: number, total: number | undefined) => void;
}

export interface PredictFileSummary {
	model: string;
	version: number | null;
	input: string;
	output: string;
	rows_in: number;
	rows_scored: number;
	rows_rejected: number;
	errors_file: string | null;
	duration_ms: number;
	rows_per_second: number;
}

interface BadRow {
	index: number; // 0-based among delivered rows
	column: string;
	message: string;
	values: Record<string, unknown>;
}

/**
 * Scores a CSV, JSON-lines or Parquet file with `model` and writes predictions (plus `keep` columns) to `output`.
 * Memory stays bounded: chunks stream in, predictions go to a DuckDB table that spills to disk, then one COPY.
 * @example await predictFile(model, { input: "rows.parquet", output: "pred.parquet", onError: "skip" })
 */
export async function predictFile(
	model: Model,
	opts: PredictFileOptions,
): Promise<PredictFileSummary> {
	const started = performance.now();
	const input = resolve(opts.input);
	const output = resolve(opts.output);
	const inFormat = formatOf(input, opts.inputFormat);
	const outFormat = formatOf(output, opts.outputFormat);
	const onError = opts.onError ?? "fail";
	const chunkRows = opts.chunkRows ?? 32768;
	const work = await mkdtemp(join(tmpdir(), "mlship-predict-"));
	const db = await DuckDBInstance.create(join(work, "work.duckdb"), {
		memory_limit: "512MB",
		temp_directory: join(work, "spill"),
		preserve_insertion_order: "true",
	});
	const conn = await db.connect();
	try {
		const source = readExpr(input, inFormat);
		const described = await describe(conn, source, input);
		const features = model.plan.features.map((f) => f.name);
		const missing = features.filter((f) => !described.has(f));
		if (missing.length > 0)
			throw invalidInput(
				`${opts.input} has no column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")} (the model reads: ${features.join(", ")}; the file has: ${[...described.keys()].join(", ")})`,
			);
		const keep = opts.keep?.includes("*")
			? [...described.keys()]
			: (opts.keep ?? []);
		for (const k of keep)
			if (!described.has(k))
				throw invalidInput(`--keep: ${opts.input} has no column '${k}'`);
		const readCols = [...new Set([...keep, ...features])];
		const select = readCols
			.map((c) =>
				/^DECIMAL/.test(described.get(c) ?? "")
					? `CAST(${sqlIdent(c)} AS DOUBLE) AS ${sqlIdent(c)}`
					: sqlIdent(c),
			)
			.join(", ");
		const total =
			inFormat === "parquet" ? await countRows(conn, source) : undefined;

		// The writer has its own connection: a statement on the reading connection ends its open stream.
		const state = new Writer(
			await db.connect(),
			keep,
			keep.map((k) => described.get(k) as string),
		);
		const bad: BadRow[] = [];
		let rowsIn = 0;
		let rowsScored = 0;
		const inflight: Promise<() => Promise<void>>[] = [];
		const maxInflight = 3;

		const result = await conn.stream(`SELECT ${select} FROM ${source}`);
		const names = result.columnNames();
		const featureCols = features.map((f) => names.indexOf(f));
		const keepCols = keep.map((k) => names.indexOf(k));
		const enc = new TableEncoder(model.plan, Math.max(chunkRows, VECTOR_SIZE));
		let chunks: DuckDBDataChunk[] = [];

		/** Values of the read columns at batch row `row`, for the error file. */
		const valuesAt = (row: number): Record<string, unknown> => {
			let r = row;
			for (const c of chunks) {
				if (r < c.rowCount) {
					const values: Record<string, unknown> = {};
					names.forEach((name, i) => {
						values[name] = jsonSafe(c.getColumnVector(i).getItem(r));
					});
					return values;
				}
				r -= c.rowCount;
			}
			return {};
		};

		const flush = async (base: number) => {
			const n = enc.rows;
			const { tensors, errors } = enc.take();
			let inputs = tensors;
			let kept: number[] | undefined;
			if (errors.length > 0) {
				if (onError === "fail") {
					const lines = inFormat === "csv" ? await rejectedLines(conn) : [];
					throw invalidInput(
						describeRowError(
							errors[0] as RowError,
							base,
							inFormat,
							lines,
							opts.input,
						),
					);
				}
				const badRows = new Set<number>();
				for (const e of errors) {
					if (badRows.has(e.row)) continue;
					badRows.add(e.row);
					bad.push({
						index: base + e.row,
						column: e.column,
						message: e.message,
						values: valuesAt(e.row),
					});
				}
				kept = [];
				for (let r = 0; r < n; r++) if (!badRows.has(r)) kept.push(r);
				if (kept.length === 0) return;
				inputs = selectRows(tensors, kept);
			}
			const keepValues = keepCols.map((c) => {
				const all = chunks.flatMap((ch) => ch.getColumnValues(c));
				return kept ? kept.map((r) => all[r] as DuckDBValue) : all;
			});
			const pending = model
				.predictTensors(inputs)
				.then((outs: Tensor[]) => async () => {
					await state.write(model, outs, keepValues);
					rowsScored += outs[0]?.shape[0] ?? 0;
				});
			pending.catch(() => {});
			inflight.push(pending);
			if (inflight.length >= maxInflight)
				await (await (inflight.shift() as Promise<() => Promise<void>>))();
		};

		for (;;) {
			const chunk = await result.fetchChunk();
			const n = chunk?.rowCount ?? 0;
			if (chunk && n > 0) {
				if (enc.rows + n > enc.capacity) {
					const before = enc.rows;
					await flush(rowsIn);
					rowsIn += before;
					chunks = [];
					opts.onProgress?.(rowsIn, total);
				}
				featureCols.forEach((c, fi) => {
					enc.writeColumn(fi, n, columnSource(chunk.getColumnVector(c)));
				});
				enc.commit(n);
				chunks.push(chunk);
			}
			if (enc.rows > 0 && (enc.rows >= chunkRows || !chunk || n === 0)) {
				const before = enc.rows;
				await flush(rowsIn);
				rowsIn += before;
				chunks = [];
				opts.onProgress?.(rowsIn, total);
			}
			if (!chunk || n === 0) break;
		}
		while (inflight.length > 0)
			await (await (inflight.shift() as Promise<() => Promise<void>>))();
		if (total !== undefined && rowsIn !== total)
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				`read ${rowsIn} of the ${total} rows in ${opts.input}; no output written`,
			);

		const rejected = inFormat === "csv" ? await rejectedLines(conn) : [];
		if (rejected.length > 0 && onError === "fail") {
			const r = rejected[0] as (typeof rejected)[number];
			throw invalidInput(
				`${opts.input}: line ${r.line}: ${r.message}: ${JSON.stringify(r.text)}`,
			);
		}
		if (rowsIn + rejected.length === 0)
			throw invalidInput(`${opts.input} has no rows to predict`);

		let errorsFile: string | null = null;
		if (bad.length + rejected.length > 0) {
			errorsFile = resolve(opts.errorsPath ?? `${output}.errors.jsonl`);
			await writeErrors(errorsFile, bad, rejected, inFormat);
		}
		await state.finish(output, outFormat);
		const ms = performance.now() - started;
		return {
			model: model.name,
			version: model.version ?? null,
			input,
			output,
			rows_in: rowsIn + rejected.length,
			rows_scored: rowsScored,
			rows_rejected: bad.length + rejected.length,
			errors_file: errorsFile,
			duration_ms: Math.round(ms),
			rows_per_second: Math.round(rowsScored / (ms / 1000)),
		};
	} finally {
		conn.closeSync();
		db.closeSync();
		await rm(work, { recursive: true, force: true });
	}
}

function describeRowError(
	e: RowError,
	base: number,
	format: FileFormat,
	rejected: readonly RejectedLine[],
	file: string,
): string {
	const where =
		format === "csv" ? ` (line ${csvLineOf(base + e.row, rejected)})` : "";
	return `${file}: ${formatRowError(e, base)}${where}`;
}

const VECTOR_SIZE = 2048;

function jsonSafe(v: unknown): unknown {
	if (typeof v === "bigint") return Number(v);
	if (v !== null && typeof v === "object") return String(v);
	return v;
}

async function describe(
	conn: DuckDBConnection,
	source: string,
	path: string,
): Promise<Map<string, string>> {
	try {
		const r = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`);
		return new Map(r.getRows().map((row) => [String(row[0]), String(row[1])]));
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_INPUT",
			`cannot read ${path}: ${(err as Error).message.split("\n")[0]}`,
			{ cause: err },
		);
	}
}

async function countRows(
	conn: DuckDBConnection,
	source: string,
): Promise<number> {
	const r = await conn.runAndReadAll(`SELECT count(*) FROM ${source}`);
	return Number(r.getRows()[0]?.[0] ?? 0);
}

async function writeErrors(
	path: string,
	bad: BadRow[],
	rejected: readonly RejectedLine[],
	format: FileFormat,
) {
	const out = createWriteStream(path);
	for (const r of rejected)
		out.write(
			`${JSON.stringify({ line: r.line, error: r.message, text: r.text })}\n`,
		);
	for (const b of bad) {
		const rec: Record<string, unknown> = { row: b.index + 1 };
		if (format === "csv") rec.line = csvLineOf(b.index, rejected);
		rec.column = b.column;
		rec.error = b.message;
		rec.values = b.values;
		out.write(`${JSON.stringify(rec)}\n`);
	}
	await new Promise<void>((res, rej) =>
		out.end((err?: Error | null) => (err ? rej(err) : res())),
	);
}

/** Collects prediction chunks into a DuckDB table (spilling to disk) and copies it to the output file at the end. */
class Writer {
	readonly #conn: DuckDBConnection;
	readonly #keepNames: string[];
	readonly #keepTypes: string[];
	#appender:
		| Awaited<ReturnType<DuckDBConnection["createAppender"]>>
		| undefined;
	#types: DuckDBType[] = [];
	#names: string[] = [];

	constructor(
		conn: DuckDBConnection,
		keepNames: string[],
		keepTypes: string[],
	) {
		this.#conn = conn;
		this.#keepNames = keepNames;
		this.#keepTypes = keepTypes;
	}

	async write(
		model: Model,
		outs: Tensor[],
		keepCols: DuckDBValue[][],
	): Promise<void> {
		const cols = outputsToColumns(model.plan, outs);
		const n = outs[0]?.shape[0] ?? 0;
		if (!this.#appender) {
			const outTypes = cols.map((c) => {
				const t = outs.find(
					(o) => c.name === o.name || c.name.startsWith(`${o.name}_`),
				) as Tensor;
				return duckTypeFor(
					t.datatype,
					typeof c.values[0] === "string" || t.datatype === "BYTES",
				);
			});
			this.#names = [...this.#keepNames, ...cols.map((c) => c.name)];
			const clash = cols.find((c) => this.#keepNames.includes(c.name));
			if (clash)
				throw invalidInput(
					`--keep: input column '${clash.name}' has the name of a prediction column`,
				);
			const ddl = [
				...this.#keepTypes.map(
					(t, i) => `${sqlIdent(this.#names[i] as string)} ${t}`,
				),
				...cols.map((c, i) => `${sqlIdent(c.name)} ${outTypes[i]?.toString()}`),
			];
			await this.#conn.run(`CREATE TABLE predictions (${ddl.join(", ")})`);
			this.#appender = await this.#conn.createAppender("predictions");
			this.#types = [];
			for (let i = 0; i < this.#keepTypes.length; i++)
				this.#types.push(this.#appender.columnType(i));
			this.#types.push(...outTypes);
		}
		const values: DuckDBValue[][] = [...keepCols];
		cols.forEach((c, i) => {
			const t = this.#types[keepCols.length + i]?.toString();
			values.push(
				t === "BIGINT"
					? c.values.map((v) => BigInt(v as number))
					: (c.values as DuckDBValue[]),
			);
		});
		appendColumns(this.#appender, this.#types, values, n);
	}

	async finish(output: string, format: FileFormat): Promise<void> {
		if (!this.#appender)
			throw invalidInput("every row was rejected; nothing to write");
		this.#appender.closeSync();
		await this.#conn.run(
			`COPY predictions TO ${sqlString(output)} ${copyOptions(format)}`,
		);
	}
}
