// Rows from a PostgreSQL table or query, read through a server-side cursor in chunks (bounded memory).
import type pg from "pg";
import { pgIdent, pgTable } from "../../protocol/sql.ts";
import type { RejectedLine } from "../files.ts";
import { connectPg, pgQuery, pgTypeName } from "../pg.ts";
import type { BatchSource, SourceChunk } from "../types.ts";
import { rowsChunk } from "./rows.ts";

const CHUNK = 4096;

export class PostgresSource implements BatchSource {
	readonly label: string;
	readonly csv = false;
	readonly #url: string;
	readonly #sql: string;
	readonly #table: string | undefined;
	#client: pg.Client | undefined;
	/** A REPEATABLE READ transaction is open: columns, count and rows all come from its one snapshot. */
	#inTx = false;

	constructor(url: string, what: { table?: string; query?: string }) {
		this.#url = url;
		this.#table = what.table;
		this.label = what.table
			? `PostgreSQL table '${what.table}'`
			: "PostgreSQL query";
		this.#sql = what.table
			? `SELECT * FROM ${pgTable(what.table)}`
			: (what.query as string);
	}

	/**
	 * The connection, inside one read-only REPEATABLE READ transaction: on a live table the count and the rows read
	 * agree, so a job is never failed for "read N of M rows" by concurrent inserts.
	 */
	async #conn(): Promise<pg.Client> {
		this.#client ??= await connectPg(this.#url);
		if (!this.#inTx) {
			await pgQuery(
				this.#client,
				"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
			);
			this.#inTx = true;
		}
		return this.#client;
	}

	async columns(): Promise<Map<string, string>> {
		const r = await pgQuery(
			await this.#conn(),
			`SELECT * FROM (${this.#sql}) AS s LIMIT 0`,
			[],
			this.label,
		);
		return new Map(r.fields.map((f) => [f.name, pgTypeName(f.dataTypeID)]));
	}

	async total(): Promise<number | undefined> {
		if (!this.#table) return undefined;
		const r = await pgQuery<{ n: string }>(
			await this.#conn(),
			`SELECT count(*) AS n FROM ${pgTable(this.#table)}`,
			[],
			this.label,
		);
		return Number(r.rows[0]?.n);
	}

	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		const c = await this.#conn();
		const select = `SELECT ${columns.map((c) => pgIdent(c)).join(", ")} FROM (${this.#sql}) AS s`;
		try {
			await pgQuery(
				c,
				`DECLARE mlship_rows NO SCROLL CURSOR FOR ${select}`,
				[],
				this.label,
			);
			for (;;) {
				const r = await pgQuery(
					c,
					`FETCH ${CHUNK} FROM mlship_rows`,
					[],
					this.label,
				);
				if (r.rows.length === 0) break;
				yield rowsChunk(r.rows, columns);
			}
		} finally {
			await c.query("ROLLBACK").catch(() => {});
			this.#inTx = false;
		}
	}

	async rejected(): Promise<RejectedLine[]> {
		return [];
	}

	async close(): Promise<void> {
		this.#inTx = false;
		await this.#client?.end().catch(() => {});
		this.#client = undefined;
	}
}
