// The pieces a batch job is built from: a source of row chunks, a sink for scored rows, and rejected-row records.
import type { ColumnSource } from "../codec/table.ts";
import type { Datatype } from "../protocol/datatypes.ts";
import type { RejectedLine } from "./files.ts";

/** A chunk of rows read from a source, column by column (columns in the order asked for). */
export interface SourceChunk {
	readonly rows: number;
	/** Column `i` for the encoder. */
	source(i: number): ColumnSource;
	/** Column `i` as values, for kept columns and the error sink (built once per column: callers ask per bad row). */
	values(i: number): unknown[];
}

/** Where rows come from: files (DuckDB), a DuckDB query, a SQLite or PostgreSQL table or query. */
export interface BatchSource {
	/** For messages: the file, query or table. */
	readonly label: string;
	/** File sources: the file or glob the rows come from, as the user gave it. */
	readonly path?: string;
	/** Column name → type, as the source names it (DuckDB type names for DuckDB sources). */
	columns(): Promise<Map<string, string>>;
	/** Rows the source will deliver, when cheap to know (for progress and a completeness check). */
	total(): Promise<number | undefined>;
	/** Streams the named columns in chunks, in source order. */
	chunks(columns: readonly string[]): AsyncIterable<SourceChunk>;
	/** Lines a CSV reader refused, in file order (others: none). */
	rejected(): Promise<RejectedLine[]>;
	/** True when rows are lines of a CSV file (errors then also give the file line). */
	readonly csv: boolean;
	/** CSV sources: the line (and, reading several files, the file) of the `index`-th (0-based) row delivered. */
	lineOf?(
		index: number,
		refused: readonly RejectedLine[],
	): { file?: string; line: number } | undefined;
	close(): Promise<void>;
}

/** One input column copied beside the predictions (ids). */
export interface KeptColumn {
	name: string;
	/** The source's type name for it. */
	type: string;
	readonly values: unknown[];
	/** Set when every value is this one (model name and version): a sink may store it once. */
	constant?: { value: unknown };
}

/** One prediction column: its values and the datatype of the output it came from. */
export interface PredictionColumn {
	name: string;
	datatype: Datatype;
	/** Values are text (class names). */
	text: boolean;
	readonly values: unknown[];
	/** The same values as a typed array (float outputs), for sinks that copy arrays; `values` is then built on first read. */
	numbers?: Float32Array | Float64Array;
	/** A class-name column as class indices and names (`values[r]` = `names[indices[r]]`, else the index as text). */
	codes?: {
		indices: BigInt64Array | Int32Array | Int16Array | Int8Array;
		names: readonly string[];
	};
}

/** Where scored rows go: files, a SQLite or PostgreSQL table. Nothing is visible until finish(). */
export interface BatchSink {
	readonly label: string;
	write(
		kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
		rows: number,
	): Promise<void>;
	/** Makes the written rows visible (file written, transaction committed). */
	finish(): Promise<void>;
	/** Drops what was written. */
	abort(): Promise<void>;
	/** An error sink writing table `table` in this sink's database and transaction (rejected rows commit with the predictions). */
	errorSink?(table: string): {
		label: string;
		write(rows: readonly RejectedRow[]): Promise<void>;
	};
}

/** A row that could not be scored: where it was, which column, why, and its values. */
export interface RejectedRow {
	/** 1-based row number among the rows the source delivered (absent for a CSV line the reader refused). */
	row?: number;
	/** The CSV file of `line`, when the source is a glob of files. */
	file?: string;
	/** 1-based line in a CSV file. */
	line?: number;
	column?: string;
	error: string;
	/** The row's values (a bad row) or the line's text (a refused CSV line). */
	values?: Record<string, unknown>;
	text?: string;
}
