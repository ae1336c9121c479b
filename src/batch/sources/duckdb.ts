// Rows from DuckDB: table files and globs (Parquet, CSV, JSON lines) or any DuckDB query, streamed chunk by chunk.
import {
	type DuckDBConnection,
	type DuckDBInstance,
	DuckDBInstance as Instance,
} from "@duckdb/node-api";
import { MlshipError } from "../../protocol/errors.ts";
import {
	columnSource,
	type FileFormat,
	type RejectedLine,
	readExpr,
	rejectedLines,
	sqlIdent,
} from "../files.ts";
import type { BatchSource, SourceChunk } from "../types.ts";
import { onceValues } from "./rows.ts";

/** A DuckDB source: `from` is a table expression (read_parquet(...), a subquery). */
export class DuckDBSource implements BatchSource {
	readonly label: string;
	readonly csv: boolean;
	readonly #from: string;
	readonly #countable: boolean;
	#db: DuckDBInstance | undefined;
	#conn: DuckDBConnection | undefined;
	#columns: Map<string, string> | undefined;

	private constructor(
		label: string,
		from: string,
		csv: boolean,
		countable: boolean,
	) {
		this.label = label;
		this.#from = from;
		this.csv = csv;
		this.#countable = countable;
	}

	/** Rows of a file or glob (`data/*.parquet`) in `format`. */
	static file(path: string, format: FileFormat, label = path): DuckDBSource {
		return new DuckDBSource(
			label,
			readExpr(path, format),
			format === "csv",
			format === "parquet",
		);
	}

	/** Rows of a DuckDB query (it may read files: `SELECT * FROM 'x.parquet' WHERE ...`). */
	static query(sql: string): DuckDBSource {
		return new DuckDBSource(
			`query ${JSON.stringify(sql.length > 60 ? `${sql.slice(0, 60)}…` : sql)}`,
			`(${sql})`,
			false,
			false,
		);
	}

	async #connection(): Promise<DuckDBConnection> {
		if (!this.#conn) {
			this.#db = await Instance.create(":memory:", {
				memory_limit: "256MB",
				preserve_insertion_order: "true",
			});
			this.#conn = await this.#db.connect();
		}
		return this.#conn;
	}

	async columns(): Promise<Map<string, string>> {
		if (this.#columns) return this.#columns;
		const conn = await this.#connection();
		try {
			const r = await conn.runAndReadAll(
				`DESCRIBE SELECT * FROM ${this.#from}`,
			);
			// DECIMAL columns are read as DOUBLE (see chunks()).
			this.#columns = new Map(
				r
					.getRows()
					.map((row) => [
						String(row[0]),
						/^DECIMAL/.test(String(row[1])) ? "DOUBLE" : String(row[1]),
					]),
			);
			return this.#columns;
		} catch (err) {
			const message = (err as Error).message.split("\n")[0] ?? "";
			// A file or glob that matches nothing is "not found" (exit 3), like a missing model.
			throw new MlshipError(
				/No files found|does not exist/i.test(message)
					? "MLSHIP_MODEL_NOT_FOUND"
					: "MLSHIP_INVALID_INPUT",
				`cannot read ${this.label}: ${message}`,
				{ cause: err },
			);
		}
	}

	async total(): Promise<number | undefined> {
		if (!this.#countable) return undefined;
		const conn = await this.#connection();
		const r = await conn.runAndReadAll(`SELECT count(*) FROM ${this.#from}`);
		return Number(r.getRows()[0]?.[0] ?? 0);
	}

	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		const types = await this.columns();
		const conn = await this.#connection();
		// DECIMAL values arrive as objects; models and sinks want numbers.
		const select = columns
			.map((c) =>
				types.get(c) === "DOUBLE"
					? `CAST(${sqlIdent(c)} AS DOUBLE) AS ${sqlIdent(c)}`
					: sqlIdent(c),
			)
			.join(", ");
		const result = await conn.stream(`SELECT ${select} FROM ${this.#from}`);
		for (;;) {
			const chunk = await result.fetchChunk();
			const n = chunk?.rowCount ?? 0;
			if (!chunk || n === 0) return;
			yield {
				rows: n,
				source: (i) => columnSource(chunk.getColumnVector(i)),
				values: onceValues((i) => chunk.getColumnValues(i)),
			};
		}
	}

	async rejected(): Promise<RejectedLine[]> {
		return this.csv && this.#conn ? rejectedLines(this.#conn) : [];
	}

	async close(): Promise<void> {
		this.#conn?.closeSync();
		this.#db?.closeSync();
		this.#conn = undefined;
		this.#db = undefined;
	}
}
