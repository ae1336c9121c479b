// Rows from a SQLite table or query (node:sqlite), in chunks.
import { DatabaseSync } from "node:sqlite";
import { MlshipError } from "../../protocol/errors.ts";
import { sqlTable } from "../../protocol/sql.ts";
import type { RejectedLine } from "../files.ts";
import type { BatchSource, SourceChunk } from "../types.ts";
import { rowsChunk } from "./rows.ts";

const CHUNK = 2048;

/** SQLite declared type → the type name sinks understand (DuckDB's). */
export function sqliteTypeName(declared: string | null | undefined): string {
	const t = (declared ?? "").toUpperCase();
	if (t.includes("INT")) return "BIGINT";
	if (/REAL|FLOA|DOUB|NUM|DEC/.test(t)) return "DOUBLE";
	if (t.includes("BOOL")) return "BOOLEAN";
	return "VARCHAR";
}

export class SqliteSource implements BatchSource {
	readonly label: string;
	readonly csv = false;
	readonly #db: DatabaseSync;
	/** False when the sink's connection is shared (the sink closes it). */
	readonly #owned: boolean;
	readonly #sql: string;
	readonly #table: string | undefined;

	/**
	 * With `db`, rows are read on that connection: a sink writing to the same file must share it, since a second
	 * connection's read lock would block the sink's commit.
	 */
	constructor(
		path: string,
		what: { table?: string; query?: string },
		db?: DatabaseSync,
	) {
		this.label = what.table
			? `sqlite table '${what.table}' in ${path}`
			: `sqlite query in ${path}`;
		this.#owned = db === undefined;
		try {
			this.#db = db ?? new DatabaseSync(path, { readOnly: true });
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`cannot open SQLite database ${path}: ${(err as Error).message}`,
				{ cause: err },
			);
		}
		this.#table = what.table;
		this.#sql = what.table
			? `SELECT * FROM ${sqlTable(what.table)}`
			: (what.query as string);
	}

	#prepare(sql: string) {
		try {
			return this.#db.prepare(sql);
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_INPUT",
				`${this.label}: ${(err as Error).message}`,
				{ cause: err },
			);
		}
	}

	async columns(): Promise<Map<string, string>> {
		return new Map(
			this.#prepare(this.#sql)
				.columns()
				.map((c) => [c.name, sqliteTypeName(c.type)]),
		);
	}

	async total(): Promise<number | undefined> {
		if (!this.#table) return undefined;
		const r = this.#prepare(`SELECT count(*) AS n FROM (${this.#sql})`).get();
		return Number(r?.n);
	}

	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		const stmt = this.#prepare(this.#sql);
		let rows: Record<string, unknown>[] = [];
		for (const row of stmt.iterate()) {
			rows.push(row as Record<string, unknown>);
			if (rows.length === CHUNK) {
				yield rowsChunk(rows, columns);
				rows = [];
			}
		}
		if (rows.length > 0) yield rowsChunk(rows, columns);
	}

	async rejected(): Promise<RejectedLine[]> {
		return [];
	}

	async close(): Promise<void> {
		if (this.#owned && this.#db.isOpen) this.#db.close();
	}
}
