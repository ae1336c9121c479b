// Scored rows into a SQLite table (created if absent), all in one transaction committed by finish().
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { MlshipError } from "../../protocol/errors.ts";
import { sqlIdent, sqlTable } from "../../protocol/sql.ts";
import type {
	BatchSink,
	KeptColumn,
	PredictionColumn,
	RejectedRow,
} from "../types.ts";
import type { ErrorSink } from "./errors.ts";
import {
	rowValues,
	sqliteColumnType,
	sqliteValue,
	tableColumns,
} from "./tables.ts";

/** Opens a SQLite database for writing (waits up to 10 s for another writer's lock). */
export function openSqliteForWriting(path: string): DatabaseSync {
	try {
		const db = new DatabaseSync(path);
		db.exec("PRAGMA busy_timeout = 10000");
		return db;
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`cannot open SQLite database ${path}: ${(err as Error).message}`,
			{ cause: err },
		);
	}
}

function run<T>(label: string, fn: () => T): T {
	try {
		return fn();
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_INPUT",
			`${label}: ${(err as Error).message}`,
			{ cause: err },
		);
	}
}

export class SqliteSink implements BatchSink {
	readonly label: string;
	readonly #db: DatabaseSync;
	readonly #table: string;
	#insert: StatementSync | undefined;

	/** With `db`, writes go through that connection (shared with a source reading the same file). */
	constructor(path: string, table: string, db?: DatabaseSync) {
		this.label = `sqlite table '${table}' in ${path}`;
		this.#db = db ?? openSqliteForWriting(path);
		this.#table = table;
	}

	async write(
		kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
		rows: number,
	): Promise<void> {
		run(this.label, () => {
			if (!this.#insert) {
				const cols = tableColumns(kept, predictions);
				this.#db.exec("BEGIN IMMEDIATE");
				this.#db.exec(
					`CREATE TABLE IF NOT EXISTS ${sqlTable(this.#table)} (${cols.map((c) => `${sqlIdent(c.name)} ${sqliteColumnType(c.type)}`).join(", ")})`,
				);
				this.#insert = this.#db.prepare(
					`INSERT INTO ${sqlTable(this.#table)} (${cols.map((c) => sqlIdent(c.name)).join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`,
				);
			}
			const insert = this.#insert;
			for (let r = 0; r < rows; r++)
				insert.run(...rowValues(kept, predictions, r).map(sqliteValue));
		});
	}

	errorSink(table: string): ErrorSink {
		const label = `sqlite table '${table}' in ${this.label.replace(/^.* in /, "")}`;
		return {
			label,
			write: async (rows) =>
				run(label, () => {
					if (!this.#db.isTransaction) this.#db.exec("BEGIN IMMEDIATE");
					writeErrors(this.#db, table, rows);
				}),
		};
	}

	async finish(): Promise<void> {
		if (this.#db.isTransaction) this.#db.exec("COMMIT");
		this.#db.close();
	}

	async abort(): Promise<void> {
		if (!this.#db.isOpen) return;
		if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
		this.#db.close();
	}
}

/** Rejected rows into a SQLite table `(row, line, "column", error, data)`; data is the row's values (or the line) as JSON. */
function writeErrors(
	db: DatabaseSync,
	table: string,
	rows: readonly RejectedRow[],
): void {
	const t = sqlTable(table);
	db.exec(
		`CREATE TABLE IF NOT EXISTS ${t} ("row" INTEGER, line INTEGER, "column" TEXT, error TEXT, data TEXT)`,
	);
	const ins = db.prepare(
		`INSERT INTO ${t} ("row", line, "column", error, data) VALUES (?, ?, ?, ?, ?)`,
	);
	for (const r of rows)
		ins.run(
			r.row ?? null,
			r.line ?? null,
			r.column ?? null,
			r.error,
			JSON.stringify(r.values ?? r.text ?? null),
		);
}

/** Rejected rows into a table of a SQLite database the predictions do not go to. */
export class SqliteErrorSink implements ErrorSink {
	readonly label: string;
	readonly #path: string;
	readonly #table: string;

	constructor(path: string, table: string) {
		this.label = `sqlite table '${table}' in ${path}`;
		this.#path = path;
		this.#table = table;
	}

	async write(rows: readonly RejectedRow[]): Promise<void> {
		const db = openSqliteForWriting(this.#path);
		try {
			run(this.label, () => {
				db.exec("BEGIN IMMEDIATE");
				writeErrors(db, this.#table, rows);
				db.exec("COMMIT");
			});
		} finally {
			if (db.isTransaction) db.exec("ROLLBACK");
			db.close();
		}
	}
}
