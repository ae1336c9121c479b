// Scored rows into a PostgreSQL table (created if absent), all in one transaction committed by finish().
import type pg from "pg";
import { pgIdent, pgTable } from "../../protocol/sql.ts";
import { connectPg, pgColumnType, pgQuery, pgValue } from "../pg.ts";
import type {
	BatchSink,
	KeptColumn,
	PredictionColumn,
	RejectedRow,
} from "../types.ts";
import type { ErrorSink } from "./errors.ts";
import { tableColumns } from "./tables.ts";

/**
 * Runs a CREATE TABLE IF NOT EXISTS under a transaction-scoped advisory lock on the table name: concurrent
 * workers creating the same table would otherwise race on PostgreSQL's catalog (duplicate key in pg_type).
 */
export async function createTable(
	client: pg.Client,
	table: string,
	ddl: string,
	context: string,
): Promise<void> {
	await pgQuery(
		client,
		"SELECT pg_advisory_xact_lock(hashtext($1))",
		[table],
		context,
	);
	await pgQuery(client, ddl, [], context);
}

/** A statement with its parameters, to run alone or as one part of a larger statement (a CTE). */
export interface PgStatement {
	sql: string;
	params: unknown[];
	/** The CREATE TABLE IF NOT EXISTS for the table the statement writes. */
	ddl: string;
}

/**
 * The INSERT writing a chunk (one array parameter per column, unnested into rows), its parameters numbered from
 * `$first`, and the DDL of a table for these columns.
 */
export function insertStatement(
	table: string,
	kept: readonly KeptColumn[],
	predictions: readonly PredictionColumn[],
	first = 1,
): PgStatement {
	const cols = tableColumns(kept, predictions).map((c) => ({
		name: pgIdent(c.name),
		type: pgColumnType(c.type),
	}));
	const params = [
		...kept.map((k) => k.values),
		...predictions.map((p) => p.values),
	].map((vs, i) =>
		vs.map((v) => pgValue((cols[i] as { type: string }).type, v)),
	);
	return {
		sql: `INSERT INTO ${pgTable(table)} (${cols.map((c) => c.name).join(", ")}) SELECT * FROM unnest(${cols.map((c, i) => `$${i + first}::${c.type}[]`).join(", ")})`,
		params,
		ddl: `CREATE TABLE IF NOT EXISTS ${pgTable(table)} (${cols.map((c) => `${c.name} ${c.type}`).join(", ")})`,
	};
}

/**
 * Writes a chunk with one statement (insertStatement), first creating the table for these columns when `create`
 * is set and it does not exist. `client` must be in the transaction the caller wants the rows in.
 */
export async function insertChunk(
	client: pg.Client,
	table: string,
	kept: readonly KeptColumn[],
	predictions: readonly PredictionColumn[],
	context: string,
	create: boolean,
): Promise<void> {
	const s = insertStatement(table, kept, predictions);
	if (create) await createTable(client, table, s.ddl, context);
	await pgQuery(client, s.sql, s.params, context);
}

export class PostgresSink implements BatchSink {
	readonly label: string;
	readonly #url: string;
	readonly #table: string;
	#client: pg.Client | undefined;
	#created = false;
	/** Error tables this sink has created (or found) in a committed or open transaction. */
	readonly #errorTables = new Set<string>();

	/** Rows go into one transaction on a connection of its own, committed by finish(). */
	constructor(url: string, table: string) {
		this.#url = url;
		this.#table = table;
		this.label = `PostgreSQL table '${table}'`;
	}

	async write(
		kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
	): Promise<void> {
		const client = await this.#begin();
		await insertChunk(
			client,
			this.#table,
			kept,
			predictions,
			this.label,
			!this.#created,
		);
		this.#created = true;
	}

	/** The sink's connection, in its one transaction. */
	async #begin(): Promise<pg.Client> {
		if (!this.#client) {
			this.#client = await connectPg(this.#url);
			await pgQuery(this.#client, "BEGIN");
		}
		return this.#client;
	}

	errorSink(table: string): ErrorSink {
		const label = `PostgreSQL table '${table}'`;
		return {
			label,
			write: async (rows) => {
				await writeErrors(
					await this.#begin(),
					table,
					rows,
					label,
					!this.#errorTables.has(table),
				);
				this.#errorTables.add(table);
			},
		};
	}

	async finish(): Promise<void> {
		if (!this.#client) return;
		await pgQuery(this.#client, "COMMIT", [], this.label);
		await this.#client.end();
		this.#client = undefined;
	}

	async abort(): Promise<void> {
		if (!this.#client) return;
		await this.#client.query("ROLLBACK").catch(() => {});
		await this.#client.end().catch(() => {});
		this.#client = undefined;
	}
}

/** The INSERT of rejected rows into `table` `(row, line, "column", error, data jsonb)`, parameters from `$first`. */
export function errorsStatement(
	table: string,
	rows: readonly RejectedRow[],
	first = 1,
): PgStatement {
	const t = pgTable(table);
	const $ = (i: number) => `$${first + i}`;
	return {
		sql: `INSERT INTO ${t} ("row", line, "column", error, data) SELECT * FROM unnest(${$(0)}::bigint[], ${$(1)}::bigint[], ${$(2)}::text[], ${$(3)}::text[], ${$(4)}::jsonb[])`,
		params: [
			rows.map((r) => r.row ?? null),
			rows.map((r) => r.line ?? null),
			rows.map((r) => r.column ?? null),
			rows.map((r) => r.error),
			rows.map((r) => JSON.stringify(r.values ?? r.text ?? null)),
		],
		ddl: `CREATE TABLE IF NOT EXISTS ${t} ("row" bigint, line bigint, "column" text, error text, data jsonb)`,
	};
}

/** Rejected rows into a PostgreSQL table `(row, line, "column", error, data jsonb)`, in the client's transaction. */
export async function writeErrors(
	c: pg.Client,
	table: string,
	rows: readonly RejectedRow[],
	context: string,
	/** Create the table when absent (false: this connection already did, earlier in the run). */
	create = true,
): Promise<void> {
	const s = errorsStatement(table, rows);
	if (create) await createTable(c, table, s.ddl, context);
	await pgQuery(c, s.sql, s.params, context);
}

/** Rejected rows into a table of a PostgreSQL database the predictions do not go to. */
export class PostgresErrorSink implements ErrorSink {
	readonly label: string;
	readonly #url: string;
	readonly #table: string;

	constructor(url: string, table: string) {
		this.#url = url;
		this.#table = table;
		this.label = `PostgreSQL table '${table}'`;
	}

	async write(rows: readonly RejectedRow[]): Promise<void> {
		const c = await connectPg(this.#url);
		try {
			await pgQuery(c, "BEGIN");
			await writeErrors(c, this.#table, rows, this.label);
			await pgQuery(c, "COMMIT");
		} finally {
			await c.end().catch(() => {});
		}
	}
}
