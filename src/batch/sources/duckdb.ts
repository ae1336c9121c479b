// Rows from DuckDB: table files and globs (Parquet, CSV, JSON lines) or any DuckDB query, streamed chunk by chunk.
import {
	type DuckDBConnection,
	type DuckDBInstance,
	DuckDBInstance as Instance,
} from "@duckdb/node-api";
import { MlshipError } from "../../protocol/errors.ts";
import { sqlIdent } from "../../protocol/sql.ts";
import {
	columnSource,
	csvLineOf,
	type FileFormat,
	type RejectedLine,
	readExpr,
	rejectedLines,
} from "../files.ts";
import type { BatchSource, SourceChunk } from "../types.ts";
import { onceValues } from "./rows.ts";

/** The column DuckDB adds to CSV rows with their file's path (left out of columns()). */
const FILE_COLUMN = "mlship_source_file";

/** A DuckDB source: `from` is a table expression (read_parquet(...), a subquery). */
export class DuckDBSource implements BatchSource {
	readonly label: string;
	path?: string;
	readonly csv: boolean;
	readonly #from: string;
	readonly #countable: boolean;
	#db: DuckDBInstance | undefined;
	#conn: DuckDBConnection | undefined;
	#columns: Map<string, string> | undefined;
	/** CSV: where each file's rows start among the rows delivered (files come one after another, in order). */
	#files: { start: number; file: string }[] | undefined;
	/** The path is a glob: messages name the file of a line. */
	#glob = false;
	#byFile: { of: readonly RejectedLine[]; lines: Map<string, RejectedLine[]> } =
		{ of: [], lines: new Map() };

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
		const csv = format === "csv";
		const source = new DuckDBSource(
			label,
			readExpr(path, format, csv ? FILE_COLUMN : undefined),
			csv,
			format === "parquet",
		);
		source.path = label;
		source.#files = csv ? [] : undefined;
		source.#glob = /[*?[{]/.test(path);
		return source;
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
					.filter((row) => !(this.#files && row[0] === FILE_COLUMN))
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
		const files = this.#files;
		const result = await conn.stream(
			`SELECT ${select}${files ? `, ${sqlIdent(FILE_COLUMN)}` : ""} FROM ${this.#from}`,
		);
		let delivered = 0;
		for (;;) {
			const chunk = await result.fetchChunk();
			const n = chunk?.rowCount ?? 0;
			if (!chunk || n === 0) return;
			if (files) {
				const names = chunk.getColumnVector(columns.length);
				// Rows of one file are contiguous: only a chunk whose last row is of another file needs a scan.
				if (String(names.getItem(n - 1)) !== files.at(-1)?.file)
					for (let r = 0; r < n; r++) {
						const file = String(names.getItem(r));
						if (file !== files.at(-1)?.file)
							files.push({ start: delivered + r, file });
					}
				delivered += n;
			}
			yield {
				rows: n,
				source: (i) => columnSource(chunk.getColumnVector(i)),
				values: onceValues((i) => chunk.getColumnValues(i)),
			};
		}
	}

	async rejected(): Promise<RejectedLine[]> {
		if (!this.csv || !this.#conn) return [];
		const lines = await rejectedLines(this.#conn);
		if (this.#glob) return lines;
		return lines.map(({ file: _, ...rest }) => rest);
	}

	/** CSV: the file (for a glob) and line of the `index`-th (0-based) row delivered, given the rejected lines. */
	lineOf(
		index: number,
		refused: readonly RejectedLine[],
	): { file?: string; line: number } | undefined {
		const files = this.#files;
		if (!files) return undefined;
		// The last file that starts at or before `index` (binary search: a glob may match thousands of files).
		let lo = 0;
		let hi = files.length - 1;
		while (lo < hi) {
			const mid = (lo + hi + 1) >> 1;
			if ((files[mid] as { start: number }).start <= index) lo = mid;
			else hi = mid - 1;
		}
		const at = files[lo];
		if (!at) return { line: csvLineOf(index, refused) };
		if (this.#byFile.of !== refused) {
			const lines = new Map<string, RejectedLine[]>();
			for (const r of refused) {
				const key = r.file ?? at.file;
				const list = lines.get(key);
				if (list) list.push(r);
				else lines.set(key, [r]);
			}
			this.#byFile = { of: refused, lines };
		}
		const line = csvLineOf(
			index - at.start,
			this.#byFile.lines.get(at.file) ?? [],
		);
		return this.#glob ? { file: at.file, line } : { line };
	}

	async close(): Promise<void> {
		this.#conn?.closeSync();
		this.#db?.closeSync();
		this.#conn = undefined;
		this.#db = undefined;
	}
}
