// Reads a payload log back: a Parquet directory through DuckDB, a PostgreSQL table through pg (DuckDB's postgres
// scanner is an extension downloaded at run time, which mlship does not rely on).
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { MlshipError } from "../protocol/errors.ts";
import { pgTable, sqlString } from "../protocol/sql.ts";
import { parseDestination } from "./open.ts";
import { FILE_PATTERN } from "./parquet.ts";
import type { PayloadRecord } from "./record.ts";

export interface PayloadQuery {
	/** Only this model's records. */
	model?: string | undefined;
	/** Only records at or after this time (ms since the epoch). */
	since?: number | undefined;
	/** Only the record(s) of this request id. */
	id?: string | undefined;
	/** Most records returned, newest first. Default 100. */
	limit?: number | undefined;
}

/** A record as read back: `time` as ISO 8601 UTC, inputs and outputs parsed. */
export type LoggedPayload = Omit<
	PayloadRecord,
	"time" | "inputs" | "outputs"
> & {
	time: string;
	inputs: Record<string, unknown>[];
	outputs: Record<string, unknown>[];
};

/**
 * The records of a payload log matching `q`, newest first.
 * @example const last = await queryPayloadLog("./payloads", { model: "iris", since: Date.now() - 3_600_000, limit: 10 });
 */
export async function queryPayloadLog(
	destination: string,
	q: PayloadQuery = {},
): Promise<LoggedPayload[]> {
	const limit = q.limit ?? 100;
	if (!Number.isInteger(limit) || limit < 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--limit must be a whole number ≥ 1, got ${limit}`,
		);
	const d = parseDestination(destination);
	if (d.kind === "kafka")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"a Kafka payload log is read with a consumer of its topic (one JSON record per message, key = request id); `logs query` reads Parquet directories and PostgreSQL tables",
		);
	if (d.kind === "postgres") return queryPostgres(d.url, d.table, q, limit);
	return queryParquet(d.dir, q, limit);
}

function where(q: PayloadQuery, param: (v: unknown) => string): string {
	const c: string[] = [];
	if (q.model !== undefined) c.push(`model = ${param(q.model)}`);
	if (q.id !== undefined) c.push(`id = ${param(q.id)}`);
	if (q.since !== undefined) c.push(`time >= ${param(q.since)}`);
	return c.length > 0 ? `WHERE ${c.join(" AND ")}` : "";
}

async function queryParquet(
	dir: string,
	q: PayloadQuery,
	limit: number,
): Promise<LoggedPayload[]> {
	const path = resolve(dir);
	if (!existsSync(path))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`no payload log at ${path}: give the directory that --log-payloads wrote to`,
		);
	const files = readdirSync(path).filter((f) => FILE_PATTERN.test(f));
	if (files.length === 0) return [];
	const { DuckDBInstance } = await import("@duckdb/node-api");
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		const params: (string | number)[] = [];
		const param = (v: unknown) => {
			if (typeof v === "number") return `epoch_ms(${Math.round(v)}::BIGINT)`;
			params.push(String(v));
			return `$${params.length}`;
		};
		const list = `[${files.map((f) => sqlString(join(path, f))).join(", ")}]`;
		const sql = `SELECT id, strftime(time, '%Y-%m-%dT%H:%M:%S.%gZ') AS time_text, model, version, entity, caller, latency_ms, rows, inputs::VARCHAR AS inputs, outputs::VARCHAR AS outputs
FROM read_parquet(${list}, union_by_name = true) ${where(q, param)} ORDER BY time DESC LIMIT ${limit}`;
		const r = await conn.runAndReadAll(sql, params);
		return r.getRowObjectsJS().map((row) => toPayload(row));
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

async function queryPostgres(
	url: string,
	table: string,
	q: PayloadQuery,
	limit: number,
): Promise<LoggedPayload[]> {
	const { checkTableName } = await import("./postgres.ts");
	const { connectPg, pgQuery } = await import("../batch/pg.ts");
	checkTableName(table);
	const client = await connectPg(url);
	try {
		const params: unknown[] = [];
		const param = (v: unknown) => {
			params.push(typeof v === "number" ? new Date(v) : v);
			return `$${params.length}`;
		};
		const r = await pgQuery(
			client,
			`SELECT id, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time_text, model, version, entity, caller, latency_ms, rows, inputs::text AS inputs, outputs::text AS outputs
FROM ${pgTable(table)} ${where(q, param)} ORDER BY time DESC LIMIT ${limit}`,
			params,
			`payload log ${table}`,
		);
		return r.rows.map((row) => toPayload(row));
	} finally {
		await client.end().catch(() => undefined);
	}
}

function toPayload(row: Record<string, unknown>): LoggedPayload {
	const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
	const s = (v: unknown) => (v === null || v === undefined ? null : String(v));
	return {
		id: String(row.id),
		time: String(row.time_text),
		model: String(row.model),
		version: n(row.version),
		entity: s(row.entity),
		caller: s(row.caller),
		latency_ms: Number(row.latency_ms),
		rows: Number(row.rows),
		inputs: JSON.parse(String(row.inputs)) as Record<string, unknown>[],
		outputs: JSON.parse(String(row.outputs)) as Record<string, unknown>[],
	};
}
