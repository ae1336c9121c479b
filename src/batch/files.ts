// Table files through DuckDB: format by extension, a streaming reader with CSV reject capture, a writer.

import { endianness } from "node:os";
import { extname } from "node:path";
import {
	BIGINT,
	BOOLEAN,
	DOUBLE,
	type DuckDBAppender,
	type DuckDBConnection,
	DuckDBDataChunk,
	DuckDBDecimalValue,
	type DuckDBType,
	type DuckDBValue,
	type DuckDBVector,
	FLOAT,
	VARCHAR,
} from "@duckdb/node-api";
import type { ColumnSource } from "../codec/table.ts";
import { DATATYPE_INFO, type Datatype } from "../protocol/datatypes.ts";
import { MlshipError } from "../protocol/errors.ts";
import { sqlString } from "../protocol/sql.ts";

export type FileFormat = "csv" | "jsonl" | "parquet";

/** The format of a table file from its extension (.csv/.tsv, .jsonl/.ndjson/.json, .parquet/.pq). */
export function formatOf(path: string, override?: string): FileFormat {
	const ext = (override ?? extname(path).slice(1)).toLowerCase();
	if (ext === "csv" || ext === "tsv") return "csv";
	if (ext === "jsonl" || ext === "ndjson" || ext === "json") return "jsonl";
	if (ext === "parquet" || ext === "pq") return "parquet";
	throw new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`cannot tell the format of '${path}' from its extension; use .csv, .jsonl or .parquet (or --input-format/--output-format)`,
	);
}

/**
 * A DuckDB table expression reading `path`. CSV keeps bad lines out of the result and records them
 * (line, message) in `reject_errors`, so a ragged row never silently shifts or empties the data.
 */
export function readExpr(
	path: string,
	format: FileFormat,
	/** CSV: a column holding each row's file (for file and line in messages about a glob of files). */
	fileColumn?: string,
): string {
	const p = sqlString(path);
	if (format === "parquet") return `read_parquet(${p})`;
	if (format === "jsonl")
		return `read_json(${p}, format = 'newline_delimited')`;
	return `read_csv(${p}, header = true, store_rejects = true${fileColumn ? `, filename = ${sqlString(fileColumn)}` : ""})`;
}

/** A CSV line DuckDB refused: its 1-based line number in its file and why (`file`: set when reading several files). */
export interface RejectedLine {
	file?: string;
	line: number;
	message: string;
	text: string;
}

/** CSV lines rejected by the scans on this connection, in file order then line order, each with its file. */
export async function rejectedLines(
	conn: DuckDBConnection,
): Promise<(RejectedLine & { file: string })[]> {
	try {
		// A file is scanned more than once (type detection, then the rows), and a short line gets one error per
		// missing column: one entry per line.
		const r = await conn.runAndReadAll(
			"SELECT s.file_id, s.file_path, e.line, min(e.error_message), min(e.csv_line) FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) GROUP BY ALL ORDER BY s.file_id, e.line",
		);
		return r.getRows().map((row) => ({
			file: String(row[1]),
			line: Number(row[2]),
			message: String(row[3]),
			text: String(row[4] ?? ""),
		}));
	} catch {
		return [];
	}
}

/** The file line of the `index`-th (0-based) data row of one CSV file, given that file's rejected lines in line order. */
export function csvLineOf(
	index: number,
	rejected: readonly RejectedLine[],
): number {
	let line = index + 2; // header is line 1
	for (const r of rejected) {
		// In line order: once a rejected line is past this row's line, so are the rest.
		if (r.line > line) break;
		line++;
	}
	return line;
}

/** DuckDB column type for an output tensor's values (class names are text). */
export function duckTypeFor(datatype: Datatype, isText: boolean): DuckDBType {
	if (isText) return VARCHAR;
	const kind = DATATYPE_INFO[datatype].kind;
	if (kind === "bool") return BOOLEAN;
	if (kind === "int" || kind === "bigint") return BIGINT;
	if (datatype === "FP64") return DOUBLE;
	if (kind === "bytes") return VARCHAR;
	return FLOAT;
}

const VECTOR = 2048;

/** A column of non-NULL values already in the typed array of its DuckDB vector (FLOAT, DOUBLE, BIGINT). */
export type TypedColumn = Float32Array | Float64Array | BigInt64Array;

/**
 * Appends columns (all of `n` rows) through an appender, 2048 rows per DuckDB chunk. A typed column is
 * copied into its vector's array in one step when the vector holds that array type (else value by value).
 */
export function appendColumns(
	appender: DuckDBAppender,
	types: readonly DuckDBType[],
	columns: readonly (readonly DuckDBValue[] | TypedColumn)[],
	n: number,
): void {
	// One chunk for every slice (creating one builds its column types each time): reset and resized per slice.
	let chunk: DuckDBDataChunk | undefined;
	for (let start = 0; start < n; start += VECTOR) {
		const end = Math.min(n, start + VECTOR);
		if (chunk) {
			chunk.reset();
			chunk.rowCount = end - start;
		} else chunk = DuckDBDataChunk.create(types, end - start);
		for (let c = 0; c < columns.length; c++) {
			const col = columns[c] as readonly DuckDBValue[] | TypedColumn;
			if (ArrayBuffer.isView(col)) {
				const part = col.subarray(start, end);
				const vector = chunk.getColumnVector(c) as unknown as {
					items?: unknown;
					flush(): void;
				};
				if (
					vector.items instanceof part.constructor &&
					(vector.items as TypedColumn).length === part.length
				) {
					(vector.items as TypedColumn).set(part as never);
					vector.flush();
				} else
					chunk.setColumnValues(c, Array.from(part as ArrayLike<DuckDBValue>));
				continue;
			}
			chunk.setColumnValues(
				c,
				start === 0 && end === col.length ? col : col.slice(start, end),
			);
		}
		appender.appendDataChunk(chunk);
	}
}

/** COPY options writing `format`. */
export function copyOptions(format: FileFormat): string {
	if (format === "parquet") return "(FORMAT parquet, COMPRESSION zstd)";
	if (format === "jsonl") return "(FORMAT json)";
	return "(FORMAT csv, HEADER true)";
}

// DECIMAL and ENUM vectors also keep integers in typed arrays, but those are scaled values and dictionary
// indices: only these types hold the numbers themselves.
const PLAIN_NUMBER_TYPES = new Set([
	"DOUBLE",
	"FLOAT",
	"INTEGER",
	"SMALLINT",
	"TINYINT",
	"UINTEGER",
	"USMALLINT",
	"UTINYINT",
]);

/**
 * A DuckDB vector as an encoder column. Numeric vectors hold their values in a typed array; reading it
 * directly (with the validity mask) is ~5x cheaper than item-by-item reads. Those fields are not public
 * API, so anything unexpected falls back to getItem.
 */
export function columnSource(vector: DuckDBVector): ColumnSource {
	const get = (r: number) => {
		const v = vector.getItem(r);
		// DECIMAL (e.g. a SQL literal such as 5.1) arrives as an object; models read it as a number.
		return v instanceof DuckDBDecimalValue ? v.toDouble() : v;
	};
	const raw = vector as unknown as {
		items?: unknown;
		validity?: { itemValid?: (i: number) => boolean };
	};
	const items = raw.items;
	const itemValid = raw.validity?.itemValid;
	if (
		(items instanceof Float64Array ||
			items instanceof Float32Array ||
			items instanceof Int32Array ||
			items instanceof Int16Array ||
			items instanceof Int8Array ||
			items instanceof Uint8Array ||
			items instanceof Uint16Array ||
			items instanceof Uint32Array) &&
		typeof itemValid === "function" &&
		PLAIN_NUMBER_TYPES.has(vector.type.toString())
	) {
		return { get, numbers: items, ...validityOf(raw.validity) };
	}
	return { get };
}

const LITTLE_ENDIAN = endianness() === "LE";

/**
 * A vector's validity as the encoder reads it: nothing when every row is valid (DuckDB leaves the mask
 * unallocated), else a test on 32-bit words of the mask. The library's itemValid does BigInt arithmetic per
 * call, which cost more than the rest of encoding a value; the mask's layout (64-bit little-endian words,
 * bit i of the vector = bit i % 64 of word i / 64) is DuckDB's, so two 32-bit halves read the same bits.
 */
function validityOf(validity: unknown): { valid?: (r: number) => boolean } {
	const v = validity as {
		data?: unknown;
		offset?: unknown;
		itemValid: (i: number) => boolean;
	};
	if (v.data === null) return {};
	if (
		LITTLE_ENDIAN &&
		v.data instanceof BigUint64Array &&
		typeof v.offset === "number"
	) {
		const words = new Uint32Array(
			v.data.buffer,
			v.data.byteOffset,
			v.data.length * 2,
		);
		const offset = v.offset;
		return {
			valid: (r) => {
				const bit = offset + r;
				return ((words[bit >>> 5] as number) & (1 << (bit & 31))) !== 0;
			},
		};
	}
	return { valid: (r) => v.itemValid(r) };
}
