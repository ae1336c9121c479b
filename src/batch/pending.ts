// The pending-records pattern on PostgreSQL: claim pending rows in chunks (FOR UPDATE SKIP LOCKED), score them, and write
// the predictions in the transaction that marks (or deletes) them. Killed at any moment, re-run, or run by several
// workers at once, a job produces every prediction exactly once.
import type pg from "pg";
import type { ModelInstance, ModelProvider } from "../dataplane/instance.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import { pgIdent, pgTable } from "../protocol/sql.ts";
import type { RejectedLine } from "./files.ts";
import { connectPg, pgQuery, pgTypeName } from "./pg.ts";
import { sleep } from "./schedule.ts";
import { scoreSource } from "./score.ts";
import { PostgresSink } from "./sinks/postgres.ts";
import { rowsChunk } from "./sources/rows.ts";
import type { BatchSource, SourceChunk } from "./types.ts";
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
	/** Rows claimed per transaction (default 1000). */
	chunkRows?: number;
	/** Keep polling for new pending rows (every `pollMs`, default 1000) until `signal` aborts. */
	follow?: boolean;
	pollMs?: number;
	signal?: AbortSignal;
	/** Called after every committed chunk with the totals so far. */
	onChunk?: (scored: number, rejected: number) => void;
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
	const chunkRows = opts.chunkRows ?? 1000;
	const keep = [...new Set([key, ...(opts.keep ?? [])])];
	const t = pgTable(src.table);
	const label = `PostgreSQL table '${src.table}'`;
	const client = await connectPg(src.url);
	const totals = { in: 0, scored: 0, rejected: 0, chunks: 0 };
	try {
		await checkColumns(
			client,
			src.table,
			done === "mark" ? [key, mark] : [key],
			mark,
		);
		const claim = `SELECT tableoid AS ${TABLEOID}, ctid AS ${CTID}, * FROM ${t}${done === "mark" ? ` WHERE ${pgIdent(mark)} IS NULL` : ""} ORDER BY ${pgIdent(key)} LIMIT $1 FOR UPDATE SKIP LOCKED`;
		const finish =
			done === "mark"
				? `UPDATE ${t} SET ${pgIdent(mark)} = now() WHERE (tableoid, ctid) IN (SELECT * FROM unnest($1::oid[], $2::tid[]))`
				: `DELETE FROM ${t} WHERE (tableoid, ctid) IN (SELECT * FROM unnest($1::oid[], $2::tid[]))`;
		// One sink for the run: it creates its tables (DDL under an advisory lock) with the first chunk only.
		const sink = new PostgresSink(dst.url, dst.table, client);
		for (;;) {
			if (opts.signal?.aborted) break;
			await pgQuery(client, "BEGIN");
			try {
				const claimed = await pgQuery(client, claim, [chunkRows], label);
				if (claimed.rows.length === 0) {
					await pgQuery(client, "COMMIT");
					if (!opts.follow) break;
					await sleep(opts.pollMs ?? 1000, opts.signal);
					continue;
				}
				const lease = await provider.lease();
				model = lease.model;
				const r = await scoreSource(
					model,
					new ClaimedRows(label, claimed.fields, claimed.rows),
					sink,
					{
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
					},
				).finally(() => lease.release());
				if (r.rejected.length > 0)
					await sink.errorSink(errorsTable).write(r.rejected);
				await pgQuery(
					client,
					finish,
					[
						claimed.rows.map((row) => row[TABLEOID]),
						claimed.rows.map((row) => row[CTID]),
					],
					label,
				);
				await pgQuery(client, "COMMIT");
				totals.in += r.rowsIn;
				totals.scored += r.rowsScored;
				totals.rejected += r.rejected.length;
				totals.chunks++;
				opts.onChunk?.(totals.scored, totals.rejected);
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

async function checkColumns(
	client: pg.Client,
	table: string,
	needed: string[],
	mark: string,
): Promise<void> {
	const r = await pgQuery<{ name: string }>(
		client,
		"SELECT attname AS name FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
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
}
