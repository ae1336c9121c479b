// The payload log's PostgreSQL destination: one table (created if missing), one multi-row INSERT per batch.
import type pg from "pg";
import { connectPg, pgQuery } from "../batch/pg.ts";
import { MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import { pgIdent, pgTable } from "../protocol/sql.ts";
import type { PayloadSink } from "./log.ts";
import type { PayloadRecord } from "./record.ts";

/** The table when the URL names none. */
export const DEFAULT_TABLE = "mlship_payload_log";

/** `name` or `schema.name`, each part a plain identifier of at most 63 characters (PostgreSQL's limit). */
export function checkTableName(table: string): string {
	if (
		!/^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/.test(
			table,
		)
	)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`payload log table '${table.slice(0, 100)}': expected NAME or SCHEMA.NAME (letters, digits, _ and $, not starting with a digit, at most 63 characters each), e.g. ?table=mlship_payload_log`,
		);
	return table;
}

/** The table's DDL (also what `logs query` expects). */
export function createTableSql(table: string): string {
	const t = pgTable(table);
	const index = pgIdent(`${table.split(".").at(-1)}_model_time`, "index");
	return `CREATE TABLE IF NOT EXISTS ${t} (id text NOT NULL, time timestamptz NOT NULL, model text NOT NULL, version integer, entity text, caller text, latency_ms double precision NOT NULL, rows integer NOT NULL, inputs jsonb NOT NULL, outputs jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS ${index} ON ${t} (model, time)`;
}

/**
 * Writes records into `table` at `url`, creating it (and its (model, time) index) when missing. A lost connection
 * is reopened on the next attempt.
 * @example const sink = postgresSink("postgres://mlship@db/ops", "mlship_payload_log");
 */
export function postgresSink(url: string, table: string): PayloadSink {
	checkTableName(table);
	const t = pgTable(table);
	let client: pg.Client | undefined;
	const where = `${redactUrl(url)} table ${table}`;
	const connect = async () => {
		if (client) return client;
		const c = await connectPg(url);
		try {
			// Concurrent servers creating the same table would race on the catalog: serialize on its name.
			await pgQuery(c, "BEGIN");
			await pgQuery(c, "SELECT pg_advisory_xact_lock(hashtext($1))", [table]);
			await pgQuery(c, createTableSql(table), [], `payload log ${table}`);
			await pgQuery(c, "COMMIT");
		} catch (err) {
			await c.end().catch(() => undefined);
			throw err;
		}
		c.on("error", () => {
			client = undefined;
		});
		client = c;
		return c;
	};
	return {
		kind: "postgres",
		where,
		async open() {
			await connect();
		},
		async write(records: readonly PayloadRecord[]) {
			const c = await connect();
			const cols = {
				id: [] as string[],
				time: [] as number[],
				model: [] as string[],
				version: [] as (number | null)[],
				entity: [] as (string | null)[],
				caller: [] as (string | null)[],
				latency: [] as number[],
				rows: [] as number[],
				inputs: [] as string[],
				outputs: [] as string[],
			};
			for (const r of records) {
				cols.id.push(r.id);
				cols.time.push(r.time / 1000);
				cols.model.push(r.model);
				cols.version.push(r.version);
				cols.entity.push(r.entity);
				cols.caller.push(r.caller);
				cols.latency.push(r.latency_ms);
				cols.rows.push(r.rows);
				cols.inputs.push(r.inputs);
				cols.outputs.push(r.outputs);
			}
			try {
				await pgQuery(
					c,
					`INSERT INTO ${t} (id, time, model, version, entity, caller, latency_ms, rows, inputs, outputs)
SELECT id, to_timestamp(ts), model, version, entity, caller, latency_ms, rows, inputs::jsonb, outputs::jsonb
FROM unnest($1::text[], $2::float8[], $3::text[], $4::int[], $5::text[], $6::text[], $7::float8[], $8::int[], $9::text[], $10::text[])
AS x(id, ts, model, version, entity, caller, latency_ms, rows, inputs, outputs)`,
					Object.values(cols),
					`payload log ${table}`,
				);
			} catch (err) {
				// The connection may be what failed: start from a new one next time.
				client = undefined;
				await c.end().catch(() => undefined);
				throw err;
			}
		},
		async close() {
			const c = client;
			client = undefined;
			await c?.end().catch(() => undefined);
		},
	};
}
