// PostgreSQL connections for batch jobs: one client, its errors mapped to mlship's codes, type names shared by sources and sinks.
import pg from "pg";
import { MlshipError } from "../protocol/errors.ts";
import { pgConnectionUrl } from "../protocol/secrets.ts";

// bigint columns (ids) read as BigInt rather than text, so they stay numbers in every sink and error record.
const TYPES = {
	getTypeParser: ((oid: number, format?: "text" | "binary") =>
		oid === 20 && format !== "binary"
			? (v: string) => BigInt(v)
			: pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Opens one client; "cannot connect" is MLSHIP_UNAVAILABLE (exit 6), so a scheduler can retry. With `pipeline`,
 * queries issued without waiting go out together (pgPipeline), each with its own Sync.
 */
export async function connectPg(
	url: string,
	opts: { pipeline?: boolean } = {},
): Promise<pg.Client> {
	const client = new pg.Client({
		connectionString: pgConnectionUrl(url),
		types: TYPES,
		...(opts.pipeline ? { pipeline: true } : {}),
	});
	// A connection that dies between queries emits 'error'; unheard, that would crash the process.
	client.on("error", () => {});
	try {
		await client.connect();
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_UNAVAILABLE",
			`cannot connect to PostgreSQL: ${(err as Error).message}`,
			{ cause: err },
		);
	}
	return client;
}

/** Runs a statement; SQL errors (no such table, bad query) are the user's input. */
export async function pgQuery<
	R extends pg.QueryResultRow = Record<string, unknown>,
>(
	client: pg.Client,
	sql: string,
	params?: unknown[],
	context = "PostgreSQL",
): Promise<pg.QueryResult<R>> {
	try {
		return await client.query<R>(sql, params);
	} catch (err) {
		throw pgError(err, context);
	}
}

/** A driver error as mlship's: connection trouble is MLSHIP_UNAVAILABLE, a missing table MLSHIP_MODEL_NOT_FOUND. */
function pgError(err: unknown, context: string): MlshipError {
	const code = (err as { code?: string }).code ?? "";
	return new MlshipError(
		/^(08|53|57P)/.test(code)
			? "MLSHIP_UNAVAILABLE"
			: code === "42P01" // undefined_table: the source is not there
				? "MLSHIP_MODEL_NOT_FOUND"
				: "MLSHIP_INVALID_INPUT",
		`${context}: ${(err as Error).message}`,
		{ cause: err },
	);
}

/** One statement of a pipeline; `sql` without `params` may hold several statements (simple protocol). */
export interface PipelinedQuery {
	sql: string;
	params?: unknown[];
}

/**
 * Sends `queries` together on a pipeline client (connectPg with `pipeline`): one round trip for all of them. The
 * server runs them in order, and a failed one aborts the open transaction, so later statements fail (a COMMIT
 * after a failure rolls back). Returns every outcome, in order; `firstError` is the first failure, mapped.
 */
export async function pgPipeline(
	client: pg.Client,
	queries: readonly PipelinedQuery[],
	context = "PostgreSQL",
): Promise<{
	results: (pg.QueryResult | undefined)[];
	firstError: MlshipError | undefined;
}> {
	const settled = await Promise.allSettled(
		queries.map((q) =>
			q.params === undefined
				? client.query(q.sql)
				: client.query(q.sql, q.params),
		),
	);
	const failed = settled.find((s) => s.status === "rejected");
	return {
		results: settled.map((s) =>
			s.status === "fulfilled" ? s.value : undefined,
		),
		firstError: failed ? pgError(failed.reason, context) : undefined,
	};
}

/** PostgreSQL type OID → the type name sinks understand (DuckDB's). */
export function pgTypeName(oid: number): string {
	if (oid === 20 || oid === 21 || oid === 23) return "BIGINT";
	if (oid === 700 || oid === 701 || oid === 1700) return "DOUBLE";
	if (oid === 16) return "BOOLEAN";
	return "VARCHAR";
}

/** A DuckDB-style type name → a PostgreSQL column type. */
export function pgColumnType(type: string): string {
	if (
		/^(BIGINT|INTEGER|SMALLINT|TINYINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT|HUGEINT)$/.test(
			type,
		)
	)
		return "bigint";
	if (type === "DOUBLE" || type === "FLOAT") return "double precision";
	if (type === "BOOLEAN") return "boolean";
	return "text";
}

/** A value as node-postgres sends it for a column of PostgreSQL type `pgType`. */
export function pgValue(pgType: string, v: unknown): unknown {
	if (v === null || v === undefined) return null;
	if (typeof v === "bigint") return v.toString();
	if (pgType === "bigint" && typeof v === "number") return Math.trunc(v);
	if (typeof v === "object") return String(v);
	if (pgType === "text") return String(v);
	return v;
}
