// In-database trigger pattern on PostgreSQL: a trigger queues new or changed rows of a table, and a worker fills a
// prediction column shortly after (claiming queued keys with FOR UPDATE SKIP LOCKED, updating in one transaction).
// Over 500 lines on purpose: attach, detach and the worker share the generated object names and the stored
// attachment row, and are read together when one of them changes.
import { createHash } from "node:crypto";
import type pg from "pg";
import { ClaimedRows, CTID } from "../batch/pending.ts";
import { connectPg, pgQuery } from "../batch/pg.ts";
import { sleep } from "../batch/schedule.ts";
import { scoreSource } from "../batch/score.ts";
import { writeErrors } from "../batch/sinks/postgres.ts";
import type {
	BatchSink,
	KeptColumn,
	PredictionColumn,
} from "../batch/types.ts";
import {
	type FollowedModel,
	followModel,
	loadModel,
	type Model,
} from "../model.ts";
import type { RunnerMetrics } from "../monitor/metrics.ts";
import { DATATYPE_INFO } from "../protocol/datatypes.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import { dollarQuote, pgIdent, pgTable, sqlString } from "../protocol/sql.ts";

/** Where mlship remembers what is attached (table, column, model) in the user's database. */
const ATTACHMENTS = "mlship_attachments";

export interface Attachment {
	table: string;
	column: string;
	model: string;
	key: string;
	key_type: string;
	column_type: string;
	registry: string | null;
}

/** Names of the objects one attachment creates, each ≤ 63 bytes (PostgreSQL's identifier limit). */
export function objectNames(table: string, column: string) {
	const base = `${table}_${column}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
	const short = (prefix: string) => {
		const name = `${prefix}_${base}`;
		if (name.length <= 63) return name;
		const h = createHash("sha256")
			.update(`${table}\0${column}`)
			.digest("hex")
			.slice(0, 8);
		return `${name.slice(0, 54)}_${h}`;
	};
	return {
		queue: short("mlship_queue"),
		fn: short("mlship_enqueue"),
		trigger: short("mlship_trg"),
		channel: short("mlship"),
		errors: short("mlship_errors"),
	};
}

async function ensureAttachmentsTable(c: pg.Client): Promise<void> {
	await pgQuery(c, "SELECT pg_advisory_xact_lock(hashtext($1))", [ATTACHMENTS]);
	await pgQuery(
		c,
		`CREATE TABLE IF NOT EXISTS ${ATTACHMENTS} (table_name text, column_name text, model text NOT NULL, key_column text NOT NULL, key_type text NOT NULL, column_type text NOT NULL, registry text, attached_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, column_name))`,
	);
}

/** The SQL type of the prediction column: class names for labelled classifiers, else numbers. */
function columnType(model: Model): string {
	const first = model.signature.outputs[0];
	if (!first) return "double precision";
	const kind = DATATYPE_INFO[first.datatype].kind;
	if (
		kind === "bytes" ||
		(model.plan.labels && (kind === "int" || kind === "bigint"))
	)
		return "text";
	if (kind === "int" || kind === "bigint") return "bigint";
	if (kind === "bool") return "boolean";
	return "double precision";
}

export interface AttachOptions {
	db: string;
	table: string;
	column: string;
	model: string;
	/** Single-column key of the table (default: its primary key). */
	key?: string;
	registry?: string;
	/** Queue every existing row too (default: only rows inserted or changed from now on). */
	backfill?: boolean;
}

/**
 * Installs the trigger pattern: adds `column` to `table` if absent, a queue table, and a trigger that queues the
 * key of every inserted row and of every row whose feature columns change (and notifies the worker).
 * @example await attach({ db: "postgres://app@db/prod", table: "customers", column: "churn", model: "churn@production" })
 */
export async function attach(
	opts: AttachOptions,
): Promise<Attachment & { backfilled: number }> {
	const model = await loadModel(opts.model, {
		mode: "inline",
		...(opts.registry ? { registry: opts.registry } : {}),
	});
	const c = await connectPg(opts.db);
	try {
		const t = pgTable(opts.table);
		const cols = await tableColumns(c, opts.table);
		const key = opts.key ?? (await primaryKey(c, opts.table));
		const keyType = cols.get(key);
		if (!keyType)
			throw invalidInput(
				`table '${opts.table}' has no column '${key}' (--key)`,
			);
		const missing = model.features.filter((f) => !cols.has(f));
		if (missing.length > 0)
			throw invalidInput(
				`table '${opts.table}' lacks the model's feature column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")}`,
			);
		if (model.features.includes(opts.column))
			throw invalidInput(
				`--column '${opts.column}' is one of the model's features`,
			);
		const ctype = cols.get(opts.column) ?? columnType(model);
		const n = objectNames(opts.table, opts.column);
		await pgQuery(c, "BEGIN");
		await ensureAttachmentsTable(c);
		await pgQuery(
			c,
			`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS ${pgIdent(opts.column)} ${ctype}`,
		);
		await pgQuery(
			c,
			`CREATE TABLE IF NOT EXISTS ${pgIdent(n.queue)} (key ${keyType} PRIMARY KEY, queued_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
		);
		await pgQuery(
			c,
			`CREATE OR REPLACE FUNCTION ${pgIdent(n.fn)}() RETURNS trigger LANGUAGE plpgsql AS ${dollarQuote(`
BEGIN
	-- DO UPDATE (not DO NOTHING) waits for a worker that holds this key: once it commits and removes the key, the
	-- row is queued again, so a change made while the worker read the old features is scored too.
	INSERT INTO ${pgIdent(n.queue)} (key) VALUES (NEW.${pgIdent(key)})
		ON CONFLICT (key) DO UPDATE SET queued_at = clock_timestamp();
	PERFORM pg_notify(${sqlString(n.channel)}, '');
	RETURN NULL;
END`)}`,
		);
		await pgQuery(c, `DROP TRIGGER IF EXISTS ${pgIdent(n.trigger)} ON ${t}`);
		// Only feature changes queue a row: the worker's own update of the prediction column does not.
		await pgQuery(
			c,
			`CREATE TRIGGER ${pgIdent(n.trigger)} AFTER INSERT OR UPDATE OF ${model.features.map((f) => pgIdent(f)).join(", ")} ON ${t} FOR EACH ROW EXECUTE FUNCTION ${pgIdent(n.fn)}()`,
		);
		await pgQuery(
			c,
			`INSERT INTO ${ATTACHMENTS} (table_name, column_name, model, key_column, key_type, column_type, registry) VALUES ($1, $2, $3, $4, $5, $6, $7)
			 ON CONFLICT (table_name, column_name) DO UPDATE SET model = EXCLUDED.model, key_column = EXCLUDED.key_column, key_type = EXCLUDED.key_type, column_type = EXCLUDED.column_type, registry = EXCLUDED.registry, attached_at = now()`,
			[
				opts.table,
				opts.column,
				opts.model,
				key,
				keyType,
				ctype,
				opts.registry ?? null,
			],
		);
		let backfilled = 0;
		if (opts.backfill) {
			const r = await pgQuery(
				c,
				`INSERT INTO ${pgIdent(n.queue)} (key) SELECT ${pgIdent(key)} FROM ${t} ON CONFLICT (key) DO NOTHING`,
			);
			backfilled = r.rowCount ?? 0;
		}
		await pgQuery(c, "COMMIT");
		return {
			table: opts.table,
			column: opts.column,
			model: opts.model,
			key,
			key_type: keyType,
			column_type: ctype,
			registry: opts.registry ?? null,
			backfilled,
		};
	} catch (err) {
		await c.query("ROLLBACK").catch(() => {});
		throw err;
	} finally {
		await c.end().catch(() => {});
		await model.close();
	}
}

/** Removes the trigger, its function and queue, and the record of the attachment; the column (and its values) stays unless `dropColumn`. */
export async function detach(opts: {
	db: string;
	table: string;
	column: string;
	dropColumn?: boolean;
}): Promise<{ table: string; column: string; dropped_column: boolean }> {
	const c = await connectPg(opts.db);
	try {
		await getAttachment(c, opts.table, opts.column);
		const n = objectNames(opts.table, opts.column);
		const t = pgTable(opts.table);
		await pgQuery(c, "BEGIN");
		await pgQuery(c, `DROP TRIGGER IF EXISTS ${pgIdent(n.trigger)} ON ${t}`);
		await pgQuery(c, `DROP FUNCTION IF EXISTS ${pgIdent(n.fn)}()`);
		await pgQuery(c, `DROP TABLE IF EXISTS ${pgIdent(n.queue)}`);
		await pgQuery(
			c,
			`DELETE FROM ${ATTACHMENTS} WHERE table_name = $1 AND column_name = $2`,
			[opts.table, opts.column],
		);
		if (opts.dropColumn)
			await pgQuery(
				c,
				`ALTER TABLE ${t} DROP COLUMN IF EXISTS ${pgIdent(opts.column)}`,
			);
		await pgQuery(c, "COMMIT");
		return {
			table: opts.table,
			column: opts.column,
			dropped_column: opts.dropColumn === true,
		};
	} catch (err) {
		await c.query("ROLLBACK").catch(() => {});
		throw err;
	} finally {
		await c.end().catch(() => {});
	}
}

async function getAttachment(
	c: pg.Client,
	table: string,
	column: string,
): Promise<Attachment> {
	const r = await pgQuery<Record<string, string>>(
		c,
		`SELECT table_name, column_name, model, key_column, key_type, column_type, registry FROM ${ATTACHMENTS} WHERE table_name = $1 AND column_name = $2`,
		[table, column],
	).catch((err: unknown) => {
		// No attachments table yet means nothing is attached; any other failure is reported as itself.
		if ((err as { cause?: { code?: string } }).cause?.code === "42P01")
			return { rows: [] as Record<string, string>[] };
		throw err;
	});
	const a = r.rows[0];
	if (!a)
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`no model is attached to ${table}.${column}; attach one with mlship pg attach --table ${table} --column ${column} --model REF`,
		);
	return {
		table: a.table_name as string,
		column: a.column_name as string,
		model: a.model as string,
		key: a.key_column as string,
		key_type: a.key_type as string,
		column_type: a.column_type as string,
		registry: a.registry ?? null,
	};
}

async function tableColumns(
	c: pg.Client,
	table: string,
): Promise<Map<string, string>> {
	const r = await pgQuery<{ name: string; type: string }>(
		c,
		"SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
		[pgTable(table)],
	);
	if (r.rows.length === 0)
		throw invalidInput(`PostgreSQL table '${table}' does not exist`);
	return new Map(r.rows.map((x) => [x.name, x.type]));
}

async function primaryKey(c: pg.Client, table: string): Promise<string> {
	const r = await pgQuery<{ name: string }>(
		c,
		"SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
		[pgTable(table)],
	);
	if (r.rows.length !== 1)
		throw invalidInput(
			`table '${table}' has ${r.rows.length === 0 ? "no primary key" : "a composite primary key"}; name a single key column with --key`,
		);
	return (r.rows[0] as { name: string }).name;
}

/** A key as a query parameter: bigints as text, so node-postgres sends every digit. */
function keyParam(v: unknown): unknown {
	return typeof v === "bigint" ? v.toString() : v;
}

/**
 * A type name stored in mlship_attachments as PostgreSQL resolves it, schema-qualified and quoted with the one
 * identifier-quoting helper (pgIdent); a name that is no type (edited, or an injection attempt) is refused.
 */
async function storedType(
	c: pg.Client,
	a: Attachment,
	field: "key_type" | "column_type",
): Promise<string> {
	const stored = a[field];
	const r = await pgQuery<{ nsp: string; name: string }>(
		c,
		"SELECT n.nspname AS nsp, t.typname AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = to_regtype($1)",
		[stored],
	).catch(() => ({ rows: [] as { nsp: string; name: string }[] }));
	const t = r.rows[0];
	if (!t)
		throw invalidInput(
			`${ATTACHMENTS}: ${field} ${JSON.stringify(stored)} of ${a.table}.${a.column} is not a PostgreSQL type; attach the model again (mlship pg attach --table ${a.table} --column ${a.column} --model ${a.model})`,
		);
	return `${pgIdent(t.nsp)}.${pgIdent(t.name)}`;
}

/** Writes the first prediction column into the table's prediction column, by key, on the worker's transaction. */
class ColumnSink implements BatchSink {
	readonly label: string;
	readonly #client: pg.Client;
	readonly #a: Attachment;
	readonly #keyType: string;
	readonly #columnType: string;

	/** `keyType`, `columnType`: quoted type names (see storedType). */
	constructor(
		client: pg.Client,
		a: Attachment,
		keyType: string,
		columnType: string,
	) {
		this.#client = client;
		this.#a = a;
		this.#keyType = keyType;
		this.#columnType = columnType;
		this.label = `${a.table}.${a.column}`;
	}

	async write(
		kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
	): Promise<void> {
		const a = this.#a;
		await pgQuery(
			this.#client,
			`UPDATE ${pgTable(a.table)} AS t SET ${pgIdent(a.column)} = u.v FROM unnest($1::${this.#keyType}[], $2::${this.#columnType}[]) AS u(k, v) WHERE t.${pgIdent(a.key)} = u.k`,
			[
				(kept[0] as KeptColumn).values.map(keyParam),
				(predictions[0] as PredictionColumn).values,
			],
			this.label,
		);
	}

	async finish(): Promise<void> {}
	async abort(): Promise<void> {}
}

export interface WorkerOptions {
	db: string;
	table: string;
	column: string;
	/** Keys claimed per transaction (default 1000). */
	chunkRows?: number;
	/** Stop when the queue is empty instead of waiting for more. */
	once?: boolean;
	/** Longest wait between queue checks when no notification comes (default 5000 ms). */
	pollMs?: number;
	signal?: AbortSignal;
	onChunk?: (scored: number, rejected: number) => void;
	/** Serve's metrics for this worker (`pg worker --metrics-port`). */
	metrics?: RunnerMetrics;
}

/**
 * Fills the prediction column of queued rows: each transaction claims queued keys (FOR UPDATE SKIP LOCKED), scores
 * those rows, updates the column, records bad rows in the error table (their column set to NULL), and dequeues.
 * Wakes on the trigger's NOTIFY; several workers can share one queue.
 */
export async function runAttachedWorker(opts: WorkerOptions): Promise<{
	rows_scored: number;
	rows_rejected: number;
	chunks: number;
	model: string;
	model_version: number | null;
}> {
	const c = await connectPg(opts.db);
	let listener: Awaited<ReturnType<typeof connectPg>> | undefined;
	let followed: FollowedModel | undefined;
	let model: Model | undefined;
	const totals = { scored: 0, rejected: 0, chunks: 0 };
	try {
		// Inside the try: if the second connection fails, the first one is closed too.
		if (!opts.once) listener = await connectPg(opts.db);
		const a = await getAttachment(c, opts.table, opts.column);
		// A worker that runs until stopped follows the registry: a moved alias is swapped in between chunks.
		const load = {
			mode: "pool" as const,
			...(a.registry ? { registry: a.registry } : {}),
			...(opts.metrics ? { observer: opts.metrics.observer } : {}),
		};
		const metrics = opts.metrics;
		followed = opts.once
			? await loadModel(a.model, load)
			: await followModel(a.model, {
					...load,
					// Metrics name the version serving now: relabelled when the alias moves.
					...(metrics ? { onEvent: metrics.onModelEvent } : {}),
				});
		const first = await followed.lease();
		model = first.model;
		first.release();
		metrics?.bind(model.name, model.version);
		// The stored type names are only used as PostgreSQL resolves them, quoted: never pasted in as stored.
		const keyType = await storedType(c, a, "key_type");
		const columnType = await storedType(c, a, "column_type");
		const n = objectNames(a.table, a.column);
		let errorsCreated = false;
		let wake = () => {};
		if (listener) {
			listener.on("notification", () => wake());
			await pgQuery(listener, `LISTEN ${pgIdent(n.channel)}`);
		}
		const q = pgIdent(n.queue);
		const t = pgTable(a.table);
		for (;;) {
			if (opts.signal?.aborted) break;
			await pgQuery(c, "BEGIN");
			try {
				const claimed = await pgQuery<{ key: unknown }>(
					c,
					`SELECT key FROM ${q} ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
					[opts.chunkRows ?? 1000],
				);
				if (claimed.rows.length === 0) {
					await pgQuery(c, "COMMIT");
					if (opts.once) break;
					// One timer per wait, cleared when a NOTIFY wakes the worker (no timers pile up under frequent inserts).
					const woken = new AbortController();
					wake = () => woken.abort();
					await sleep(
						opts.pollMs ?? 5000,
						opts.signal
							? AbortSignal.any([opts.signal, woken.signal])
							: woken.signal,
					);
					continue;
				}
				const keys = claimed.rows.map((r) => keyParam(r.key));
				let wroteErrors = false;
				const rows = await pgQuery(
					c,
					`SELECT ctid AS ${CTID}, * FROM ${t} WHERE ${pgIdent(a.key)} = ANY($1::${keyType}[])`,
					[keys],
				);
				if (rows.rows.length > 0) {
					const lease = await followed.lease();
					model = lease.model;
					const r = await scoreSource(
						model,
						new ClaimedRows(`${a.table}`, rows.fields, rows.rows),
						new ColumnSink(c, a, keyType, columnType),
						{
							onError: "skip",
							keep: [a.key],
							chunkRows: Math.max(rows.rows.length, 1),
						},
					).finally(() => lease.release());
					if (r.rejected.length > 0) {
						await writeErrors(
							c,
							n.errors,
							r.rejected,
							`${a.table} errors`,
							!errorsCreated,
						);
						wroteErrors = true;
						// Keys as the database gave them (a bigint above 2^53 stays exact): rejected rows are
						// numbered 1… in the order of the rows scored.
						await pgQuery(
							c,
							`UPDATE ${t} SET ${pgIdent(a.column)} = NULL WHERE ${pgIdent(a.key)} = ANY($1::${keyType}[])`,
							[
								r.rejected.map((x) =>
									keyParam(rows.rows[(x.row as number) - 1]?.[a.key]),
								),
							],
						);
					}
					totals.scored += r.rowsScored;
					totals.rejected += r.rejected.length;
				}
				await pgQuery(c, `DELETE FROM ${q} WHERE key = ANY($1::${keyType}[])`, [
					keys,
				]);
				await pgQuery(c, "COMMIT");
				// Created in a committed transaction: later chunks skip the DDL and its lock.
				if (wroteErrors) errorsCreated = true;
				totals.chunks++;
				opts.onChunk?.(totals.scored, totals.rejected);
				opts.metrics?.totals(totals.scored, totals.rejected);
			} catch (err) {
				await c.query("ROLLBACK").catch(() => {});
				throw err;
			}
		}
		return {
			rows_scored: totals.scored,
			rows_rejected: totals.rejected,
			chunks: totals.chunks,
			model: model.name,
			model_version: model.version ?? null,
		};
	} finally {
		await followed?.close();
		await c.end().catch(() => {});
		await listener?.end().catch(() => {});
	}
}
