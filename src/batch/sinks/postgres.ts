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
async function createTable(
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

/**
 * Writes a chunk with one statement (one array parameter per column, unnested into rows), first creating
 * the table for these columns when `create` is set and it does not exist. `client` must be in the
 * transaction the caller wants the rows in.
 */
export async function insertChunk(
	client: pg.Client,
	table: string,
	kept: readonly KeptColumn[],
	predictions: readonly PredictionColumn[],
	context: string,
	create: boolean,
): Promise<void> {
	const cols = tableColumns(kept, predictions).map((c) => ({
		name: pgIdent(c.name),
		type: pgColumnType(c.type),
	}));
	if (create)
		await createTable(
			client,
			table,
			`CREATE TABLE IF NOT EXISTS ${pgTable(table)} (${cols.map((c) => `${c.name} ${c.type}`).join(", ")})`,
			context,
		);
	const values = [
		...kept.map((k) => k.values),
		...predictions.map((p) => p.values),
	].map((vs, i) =>
		vs.map((v) => pgValue((cols[i] as { type: string }).type, v)),
	);
	await pgQuery(
		client,
		`INSERT INTO ${pgTable(table)} (${cols.map((c) => c.name).join(", ")}) SELECT * FROM unnest(${cols.map((c, i) => `$${i + 1}::${c.type}[]`).join(", ")})`,
		values,
		context,
	);
}

export class PostgresSink implements BatchSink {
	readonly label: string;
	readonly #url: string;
	readonly #table: string;
	#client: pg.Client | undefined;
	/** Set when the sink writes into a transaction someone else owns (and commits). */
	readonly #borrowed: boolean;
	#created = false;
	/** Error tables this sink has created (or found) in a committed or open transaction. */
	readonly #errorTables = new Set<string>();

	/**
	 * With `client`, rows go into that client's open transaction and finish()/abort() leave it to the owner; one
	 * sink may serve many transactions of that client in turn (its tables are created once, by the first).
	 */
	constructor(url: string, table: string, client?: pg.Client) {
		this.#url = url;
		this.#table = table;
		this.#client = client;
		this.#borrowed = client !== undefined;
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
		if (!this.#client || this.#borrowed) return;
		await pgQuery(this.#client, "COMMIT", [], this.label);
		await this.#client.end();
		this.#client = undefined;
	}

	async abort(): Promise<void> {
		if (!this.#client || this.#borrowed) return;
		await this.#client.query("ROLLBACK").catch(() => {});
		await this.#client.end().catch(() => {});
		this.#client = undefined;
	}
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
	const t = pgTable(table);
	if (create)
		await createTable(
			c,
			table,
			`CREATE TABLE IF NOT EXISTS ${t} ("row" bigint, line bigint, "column" text, error text, data jsonb)`,
			context,
		);
	await pgQuery(
		c,
		`INSERT INTO ${t} ("row", line, "column", error, data) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[])`,
		[
			rows.map((r) => r.row ?? null),
			rows.map((r) => r.line ?? null),
			rows.map((r) => r.column ?? null),
			rows.map((r) => r.error),
			rows.map((r) => JSON.stringify(r.values ?? r.text ?? null)),
		],
		context,
	);
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
