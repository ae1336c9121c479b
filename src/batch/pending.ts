// The pending-records pattern on PostgreSQL: claim pending rows in chunks (FOR UPDATE SKIP LOCKED), score them, and write
// the predictions in the transaction that marks (or deletes) them. Killed at any moment, re-run, or run by several
// workers at once, a job produces every prediction exactly once.
import { createHash } from "node:crypto";
import type pg from "pg";
import type { ColumnSource } from "../codec/table.ts";
import type { ModelInstance, ModelProvider } from "../dataplane/instance.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import { pgIdent, pgTable } from "../protocol/sql.ts";
import type { RejectedLine } from "./files.ts";
import {
	type CopyColumn,
	connectPg,
	copyCastsToText,
	copyKind,
	decodeBinaryCopy,
	pgArrayParam,
	pgColumnType,
	pgCopyOut,
	pgQuery,
	pgTypeName,
} from "./pg.ts";
import { sleep } from "./schedule.ts";
import { scoreSource } from "./score.ts";
import {
	createTable,
	errorsStatement,
	insertStatement,
	type PgStatement,
} from "./sinks/postgres.ts";
import { tableColumns } from "./sinks/tables.ts";
import { onceValues, rowsChunk } from "./sources/rows.ts";
import type {
	BatchSink,
	BatchSource,
	KeptColumn,
	PredictionColumn,
	SourceChunk,
} from "./types.ts";
import { parseLocation } from "./uri.ts";

export interface PendingOptions {
	/** `postgres://…?table=FEATURES`: the table holding pending rows. */
	table: string;
	/** `postgres://…?table=SCORES` in the same database (created if absent). */
	sink: string;
	/** The features table's key, written beside each prediction (default `id`). */
	key?: string;
	/** `mark` sets `markColumn` to now() on scored rows (pending = NULL); `delete` removes them (a queue table). */
	done?: "mark" | "delete";
	/** Default `scored_at` (a timestamptz column, NULL while pending). */
	markColumn?: string;
	/** More columns written beside each prediction. */
	keep?: string[];
	/** `skip`: bad rows go to `errors` (default table `<sink>_errors`) and are marked done too. `fail`: the chunk is rolled back and the job stops. */
	onError?: "fail" | "skip";
	errors?: string;
	/** Rows claimed per transaction (default 5000: 10–16 points nearer the COPY job than 1000 in three quiet bench runs). */
	chunkRows?: number;
	/** Keep polling for new pending rows (every `pollMs`, default 1000) until `signal` aborts. */
	follow?: boolean;
	pollMs?: number;
	signal?: AbortSignal;
	/** Called after every committed chunk with the totals so far. */
	onChunk?: (scored: number, rejected: number) => void;
	/**
	 * With `done: "mark"`: create the partial index that keeps the claim cost flat (pendingIndexSql) when the table
	 * has none. Without it, a missing index is reported through `onWarning` with the statement to run.
	 */
	createIndex?: boolean;
	/** Advice that does not stop the job (e.g. the missing partial index). */
	onWarning?: (message: string) => void;
}

export interface PendingSummary {
	model: string;
	model_version: number | null;
	table: string;
	sink: string;
	rows_in: number;
	rows_scored: number;
	rows_rejected: number;
	chunks: number;
	duration_ms: number;
	rows_per_second: number;
}

/** The rows one transaction claimed, as a source for the scoring loop (the `mlship_ctid` column is left out). */
export class ClaimedRows implements BatchSource {
	readonly label: string;
	readonly csv = false;
	readonly #columns: Map<string, string>;
	readonly #rows: Record<string, unknown>[];

	constructor(
		label: string,
		fields: pg.FieldDef[],
		rows: Record<string, unknown>[],
	) {
		this.label = label;
		this.#columns = new Map(
			fields
				.filter((f) => f.name !== CTID && f.name !== TABLEOID)
				.map((f) => [f.name, pgTypeName(f.dataTypeID)]),
		);
		this.#rows = rows;
	}

	async columns(): Promise<Map<string, string>> {
		return this.#columns;
	}

	async total(): Promise<number> {
		return this.#rows.length;
	}

	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		yield rowsChunk(this.#rows, columns);
	}

	async rejected(): Promise<RejectedLine[]> {
		return [];
	}

	async close(): Promise<void> {}
}

/** A column of the pending table as the claim reads it. */
export interface PendingColumn {
	name: string;
	/** PostgreSQL type (a domain's base type). */
	oid: number;
}

/**
 * The rows one claim returned as a binary COPY, decoded column by column (decodeBinaryCopy): numeric columns are
 * typed arrays the encoder reads directly, without a row object or a string per value.
 */
export class CopiedRows implements BatchSource {
	readonly label: string;
	readonly csv = false;
	readonly rows: number;
	readonly #types: Map<string, string>;
	readonly #columns: Map<string, CopyColumn>;

	constructor(
		label: string,
		columns: readonly PendingColumn[],
		decoded: { rows: number; columns: CopyColumn[] },
	) {
		this.label = label;
		this.rows = decoded.rows;
		this.#types = new Map(columns.map((c) => [c.name, pgTypeName(c.oid)]));
		this.#columns = new Map(
			columns.map((c, i) => [c.name, decoded.columns[i] as CopyColumn]),
		);
	}

	async columns(): Promise<Map<string, string>> {
		return this.#types;
	}

	async total(): Promise<number> {
		return this.rows;
	}

	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		const cols = columns.map((name) => this.#columns.get(name));
		yield {
			rows: this.rows,
			source: (i) => copiedSource(cols[i]),
			values: onceValues((i) => {
				const c = cols[i];
				if (c === undefined) return new Array(this.rows).fill(undefined);
				if (c.kind === "values") return c.values;
				return Array.from(c.numbers, (x, r) => (c.nulls[r] ? null : x));
			}),
		};
	}

	async rejected(): Promise<RejectedLine[]> {
		return [];
	}

	async close(): Promise<void> {}
}

/** A decoded column for the encoder: numbers as a typed array (its fast path), NULLs as null. */
function copiedSource(c: CopyColumn | undefined): ColumnSource {
	if (c === undefined) return { get: () => undefined };
	if (c.kind === "values") return { get: (r) => c.values[r] };
	const { numbers, nulls } = c;
	return c.hasNulls
		? {
				get: (r) => (nulls[r] ? null : numbers[r]),
				numbers,
				valid: (r) => nulls[r] === 0,
			}
		: { get: (r) => numbers[r], numbers };
}

export const CTID = "mlship_ctid";
/** With CTID, names a row of a partitioned or inherited table (a ctid alone repeats across partitions). */
const TABLEOID = "mlship_tableoid";

function pgLocation(uri: string, role: string): { url: string; table: string } {
	const loc = parseLocation(uri, "sink");
	if (loc.kind !== "postgres")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${role} '${redactUrl(uri)}': the pending-records pattern needs a PostgreSQL table (postgres://USER@HOST/DB?table=NAME)`,
		);
	return { url: loc.url, table: loc.table as string };
}

/**
 * Scores the pending rows of a PostgreSQL table until none is left (or, with `follow`, until `signal` aborts).
 * Each chunk is one transaction: claim (`FOR UPDATE SKIP LOCKED`), score, insert predictions and rejected rows,
 * mark or delete the claimed rows, commit. A worker that dies mid-chunk loses its transaction and its claim.
 * Each chunk leases the provider's current model: a followed model (followModel) hot-swaps between chunks.
 * @example await runPending(model, { table: "postgres://app@db/prod?table=features", sink: "postgres://app@db/prod?table=scores" })
 */
export async function runPending(
	provider: ModelProvider,
	opts: PendingOptions,
): Promise<PendingSummary> {
	// The model of the last chunk (the summary names it); leased once up front so a summary always has one.
	let model: ModelInstance;
	{
		const first = await provider.lease();
		model = first.model;
		first.release();
	}
	const started = performance.now();
	const src = pgLocation(opts.table, "--table");
	const dst = pgLocation(opts.sink, "--sink");
	if (src.url !== dst.url)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"the sink must be in the same PostgreSQL database as the pending rows: predictions are written in the transaction that marks them",
		);
	const errors = opts.errors ? pgLocation(opts.errors, "--errors") : undefined;
	if (errors && errors.url !== src.url)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"--errors must be in the same PostgreSQL database as the pending rows: rejected rows are written in the transaction that marks them",
		);
	const errorsTable = errors?.table ?? `${dst.table}_errors`;
	const key = opts.key ?? "id";
	const done = opts.done ?? "mark";
	const mark = opts.markColumn ?? "scored_at";
	const chunkRows = opts.chunkRows ?? 5000;
	const keep = [...new Set([key, ...(opts.keep ?? [])])];
	const label = `PostgreSQL table '${src.table}'`;
	const client = await connectPg(src.url);
	const totals = { in: 0, scored: 0, rejected: 0, chunks: 0 };
	try {
		const columns = await pendingColumns(
			client,
			src.table,
			done === "mark" ? [key, mark] : [key],
			mark,
		);
		if (done === "mark") {
			const index = await pendingIndex(client, src.table, key, mark);
			if (index === undefined && opts.createIndex)
				await createPendingIndex(client, src.table, key, mark);
			else if (index === undefined)
				opts.onWarning?.(
					`PostgreSQL table '${src.table}' has no partial index on pending rows: each claim walks past every scored row, so claims slow down as the table grows. Create it once (or run with --create-index): ${pendingIndexSql(src.table, key, mark)}`,
				);
		}
		const claim = claimCopySql(
			src.table,
			key,
			columns,
			chunkRows,
			done === "mark" ? mark : undefined,
			await plainTable(client, src.table),
		);
		const kinds = columns.map((c) =>
			done === "mark" && c.name === mark ? "text" : copyKind(c.oid),
		);
		// Tables this run has created (or found) in a committed transaction: their DDL runs once, with the first chunk.
		const created = new Set<string>();
		// A chunk is three round trips: the claim (which also marks or deletes the rows and returns them as a binary
		// COPY), the write of its predictions and rejected rows, and its COMMIT sent with the next chunk's BEGIN.
		await pgQuery(client, "BEGIN", undefined, label);
		for (;;) {
			if (opts.signal?.aborted) {
				await pgQuery(client, "ROLLBACK");
				break;
			}
			try {
				const claimed = new CopiedRows(
					label,
					columns,
					decodeBinaryCopy(
						await pgCopyOut(client, claim, label, "lower --chunk-rows"),
						kinds,
						label,
					),
				);
				if (claimed.rows === 0) {
					await pgQuery(client, "COMMIT", undefined, label);
					if (!opts.follow) break;
					await sleep(opts.pollMs ?? 1000, opts.signal);
					if (opts.signal?.aborted) break;
					await pgQuery(client, "BEGIN", undefined, label);
					continue;
				}
				const lease = await provider.lease();
				model = lease.model;
				const held = new HeldRows(dst.table);
				const r = await scoreSource(model, claimed, held, {
					onError: opts.onError ?? "fail",
					keep,
					stamp: [
						{ name: "model", type: "VARCHAR", value: model.name },
						{
							name: "model_version",
							type: "BIGINT",
							value: model.version ?? null,
						},
					],
					chunkRows: Math.max(chunkRows, 1),
				}).finally(() => lease.release());
				// Parameters numbered across the parts of the one statement: predictions, then rejected rows.
				const parts: { table: string; st: PgStatement }[] = [];
				let next = 1;
				for (const w of held.writes) {
					const st = binaryInsert(dst.table, w.kept, w.predictions, next);
					next += st.params.length;
					parts.push({ table: dst.table, st });
				}
				if (r.rejected.length > 0) {
					const st = errorsStatement(errorsTable, r.rejected, next);
					next += st.params.length;
					parts.push({ table: errorsTable, st });
				}
				const newTables: string[] = [];
				for (const { table, st } of parts) {
					if (created.has(table) || newTables.includes(table)) continue;
					// DDL under an advisory lock, in this transaction, before the statement that writes the table.
					await createTable(
						client,
						table,
						st.ddl,
						`PostgreSQL table '${table}'`,
					);
					newTables.push(table);
				}
				const write = pendingWrite(parts.map((p) => p.st));
				if (write !== undefined)
					await pgQuery(client, write.sql, write.params, label);
				const more = !opts.signal?.aborted;
				const ended = await pgQuery(
					client,
					more ? "COMMIT; BEGIN" : "COMMIT",
					undefined,
					label,
				);
				// A multi-statement query answers with one result per statement; only a COMMIT tag means the chunk is in.
				const tag = (
					Array.isArray(ended) ? (ended[0] as pg.QueryResult) : ended
				).command;
				if (tag !== "COMMIT")
					throw new MlshipError(
						"MLSHIP_UNAVAILABLE",
						`${label}: the chunk's transaction ended with ${tag}, not COMMIT; its rows stay pending`,
					);
				for (const table of newTables) created.add(table);
				totals.in += r.rowsIn;
				totals.scored += r.rowsScored;
				totals.rejected += r.rejected.length;
				totals.chunks++;
				opts.onChunk?.(totals.scored, totals.rejected);
				if (!more) break;
			} catch (err) {
				await client.query("ROLLBACK").catch(() => {});
				throw err;
			}
		}
	} finally {
		await client.end().catch(() => {});
	}
	const ms = performance.now() - started;
	return {
		model: model.name,
		model_version: model.version ?? null,
		table: src.table,
		sink: dst.table,
		rows_in: totals.in,
		rows_scored: totals.scored,
		rows_rejected: totals.rejected,
		chunks: totals.chunks,
		duration_ms: Math.round(ms),
		rows_per_second: Math.round(totals.scored / (ms / 1000)),
	};
}

/**
 * insertStatement with its array parameters in PostgreSQL's binary format where the values allow (pgArrayParam):
 * the predictions' doubles and the kept ids go as 8 bytes each, not as text the server parses again.
 */
function binaryInsert(
	table: string,
	kept: readonly KeptColumn[],
	predictions: readonly PredictionColumn[],
	first: number,
): PgStatement {
	const st = insertStatement(table, kept, predictions, first);
	const types = tableColumns(kept, predictions).map((c) =>
		pgColumnType(c.type),
	);
	const values = [
		...kept.map((k) => k.values),
		...predictions.map((p) => p.values),
	];
	return {
		...st,
		params: values.map((vs, i) => pgArrayParam(types[i] as string, vs)),
	};
}

/**
 * The sink of one claimed chunk: holds the predictions for pendingWrite, which writes them in the statement that
 * marks (or deletes) the chunk's rows.
 */
class HeldRows implements BatchSink {
	readonly label: string;
	readonly writes: {
		kept: readonly KeptColumn[];
		predictions: readonly PredictionColumn[];
	}[] = [];

	constructor(table: string) {
		this.label = `PostgreSQL table '${table}'`;
	}

	async write(
		kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
	): Promise<void> {
		this.writes.push({ kept, predictions });
	}

	async finish(): Promise<void> {}
	async abort(): Promise<void> {}
}

/**
 * One statement writing a chunk's predictions and rejected rows: the first inserts as data-modifying CTEs (PostgreSQL
 * runs each exactly once, to completion) in front of the last. Parameters are numbered by the caller across all
 * parts, in this order. Undefined when there is nothing to write.
 * @example pendingWrite([insertStatement("scores", kept, preds), errorsStatement("scores_errors", bad, 7)])
 */
export function pendingWrite(
	writes: readonly PgStatement[],
): { sql: string; params: unknown[] } | undefined {
	const last = writes.at(-1);
	if (last === undefined) return undefined;
	const ctes = writes.slice(0, -1).map((w, i) => `w${i} AS (${w.sql})`);
	return {
		sql: ctes.length > 0 ? `WITH ${ctes.join(", ")} ${last.sql}` : last.sql,
		params: writes.flatMap((w) => w.params),
	};
}

/**
 * The locking part of a claim: the next `limit` pending rows by key, locked, skipping rows other workers hold. With a
 * mark column, pending rows are those where it IS NULL (the partial index of pendingIndexSql serves exactly this).
 * `limit` is `$1` for a prepared statement, or a number. A plain table (`only`: no partitions, no inheritance
 * children) is read with ONLY and names its rows by ctid; otherwise rows are named by (tableoid, ctid), as a ctid
 * alone repeats across partitions.
 * @example claimSql("features", "id", "scored_at")
 */
export function claimSql(
	table: string,
	key: string,
	mark?: string,
	limit: string | number = "$1",
	only = false,
): string {
	return `SELECT ${only ? "ctid" : "tableoid, ctid"} FROM ${only ? "ONLY " : ""}${pgTable(table)}${mark !== undefined ? ` WHERE ${pgIdent(mark)} IS NULL` : ""} ORDER BY ${pgIdent(key)} LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
}

/**
 * The claim as one statement: it locks the next `chunkRows` pending rows (claimSql), marks them (`mark = now()`) or
 * deletes them (no `mark`), and returns them as a binary COPY — every column in table order, types the decoder does
 * not read cast to text, the mark column as NULL (as the rows were while pending). The rows' predictions are written
 * in the same transaction: a rollback leaves them pending.
 * On a plain table (`only`) the rows are matched by `ctid = ANY(ARRAY(…))`, one TID scan; PostgreSQL's backend spends
 * about 8 µs per marked row so against 11.6 with the `(tableoid, ctid) IN (…)` semi-join partitioned tables need
 * (bench/RESULTS.md, `## batch work`).
 */
export function claimCopySql(
	table: string,
	key: string,
	columns: readonly PendingColumn[],
	chunkRows: number,
	mark?: string,
	only = false,
): string {
	if (!Number.isSafeInteger(chunkRows) || chunkRows < 1)
		throw invalidInput(
			`--chunk-rows: expected a positive integer, got ${chunkRows}`,
		);
	const t = `${only ? "ONLY " : ""}${pgTable(table)}`;
	const out = columns
		.map((c) =>
			c.name === mark
				? `NULL::text AS ${pgIdent(c.name)}`
				: copyCastsToText(c.oid)
					? `${pgIdent(c.name)}::text AS ${pgIdent(c.name)}`
					: pgIdent(c.name),
		)
		.join(", ");
	const locked = claimSql(table, key, mark, chunkRows, only);
	const rows = only
		? `ctid = ANY(ARRAY(${locked}))`
		: `(tableoid, ctid) IN (${locked})`;
	const dml =
		mark !== undefined
			? `UPDATE ${t} SET ${pgIdent(mark)} = now() WHERE ${rows}`
			: `DELETE FROM ${t} WHERE ${rows}`;
	return `COPY (${dml} RETURNING ${out}) TO STDOUT (FORMAT binary)`;
}

/** Whether `table` is a plain table without partitions or inheritance children (its rows are named by ctid alone). */
async function plainTable(client: pg.Client, table: string): Promise<boolean> {
	const r = await pgQuery<{ plain: boolean }>(
		client,
		`SELECT c.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = c.oid) AS plain
		 FROM pg_class c WHERE c.oid = to_regclass($1)`,
		[pgTable(table)],
	);
	return r.rows[0]?.plain === true;
}

/** PostgreSQL's limit on identifier length, in bytes. */
const PG_IDENT_BYTES = 63;

/**
 * The name of the partial index on pending rows: `<table>_<mark>_pending`, cut to PostgreSQL's 63 bytes (a cut name
 * keeps a short hash of the full one, so two long table names do not collide).
 * @example pendingIndexName("public.features", "scored_at") // "features_scored_at_pending"
 */
export function pendingIndexName(table: string, mark: string): string {
	const bare = table.split(".").at(-1) ?? table;
	const name = `${bare}_${mark}_pending`;
	if (Buffer.byteLength(name) <= PG_IDENT_BYTES) return name;
	const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
	let head = name;
	while (Buffer.byteLength(`${head}_${hash}`) > PG_IDENT_BYTES)
		head = head.slice(0, -1);
	return `${head}_${hash}`;
}

/**
 * The statement creating the partial index that keeps a claim's cost flat however many rows are already scored:
 * only pending rows are in it, ordered by key, so a claim reads the next `chunk` entries and nothing else.
 * `CONCURRENTLY` builds it without blocking writers (not possible on a partitioned table: `concurrently: false`).
 * @example pendingIndexSql("features", "id", "scored_at")
 */
export function pendingIndexSql(
	table: string,
	key: string,
	mark: string,
	concurrently = true,
): string {
	return `CREATE INDEX${concurrently ? " CONCURRENTLY" : ""} IF NOT EXISTS ${pgIdent(pendingIndexName(table, mark))} ON ${pgTable(table)} (${pgIdent(key)}) WHERE ${pgIdent(mark)} IS NULL`;
}

/**
 * The name of a valid index on `table` whose first column is `key` and whose predicate is exactly `mark IS NULL`
 * (whatever its name), or undefined.
 */
export async function pendingIndex(
	client: pg.Client,
	table: string,
	key: string,
	mark: string,
): Promise<string | undefined> {
	const r = await pgQuery<{ name: string }>(
		client,
		`SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		 WHERE i.indrelid = to_regclass($1) AND i.indisvalid AND a.attname = $2
		   AND pg_get_expr(i.indpred, i.indrelid) = '(' || quote_ident($3) || ' IS NULL)'
		 ORDER BY 1 LIMIT 1`,
		[pgTable(table), key, mark],
	);
	return r.rows[0]?.name;
}

/**
 * Creates the partial index of pendingIndexSql (concurrently, except on a partitioned table), under an advisory lock
 * so workers started together build it once. An index left invalid by an interrupted build is reported with the
 * statement that removes it.
 */
export async function createPendingIndex(
	client: pg.Client,
	table: string,
	key: string,
	mark: string,
): Promise<string> {
	const name = pendingIndexName(table, mark);
	const kind = await pgQuery<{ kind: string }>(
		client,
		"SELECT relkind::text AS kind FROM pg_class WHERE oid = to_regclass($1)",
		[pgTable(table)],
	);
	const partitioned = kind.rows[0]?.kind === "p";
	await pgQuery(client, "SELECT pg_advisory_lock(hashtext($1))", [name]);
	try {
		await pgQuery(
			client,
			pendingIndexSql(table, key, mark, !partitioned),
			[],
			`PostgreSQL table '${table}' (creating index '${name}')`,
		);
	} finally {
		await pgQuery(client, "SELECT pg_advisory_unlock(hashtext($1))", [name]);
	}
	if ((await pendingIndex(client, table, key, mark)) === undefined) {
		const schema = table.includes(".")
			? `${pgTable(table.split(".").slice(0, -1).join("."))}.`
			: "";
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`index '${name}' on PostgreSQL table '${table}' exists but is not a valid partial index on pending rows (an interrupted build leaves it invalid); drop it (DROP INDEX CONCURRENTLY ${schema}${pgIdent(name)}) and run again`,
		);
	}
	return name;
}

/** The table's columns in order with their types; a missing key or mark column is an error saying what to do. */
async function pendingColumns(
	client: pg.Client,
	table: string,
	needed: string[],
	mark: string,
): Promise<PendingColumn[]> {
	const r = await pgQuery<PendingColumn>(
		client,
		`SELECT a.attname AS name, COALESCE(NULLIF(t.typbasetype, 0), a.atttypid)::int AS oid
		 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
		[pgTable(table)],
	);
	if (r.rows.length === 0)
		throw invalidInput(`PostgreSQL table '${table}' does not exist`);
	const have = new Set(r.rows.map((x) => x.name));
	for (const c of needed)
		if (!have.has(c))
			throw invalidInput(
				c === mark
					? `PostgreSQL table '${table}' has no column '${mark}' to mark scored rows; add it (ALTER TABLE ${pgTable(table)} ADD COLUMN ${pgIdent(mark)} timestamptz) or use --done delete`
					: `PostgreSQL table '${table}' has no key column '${c}' (set --key)`,
			);
	return r.rows;
}
