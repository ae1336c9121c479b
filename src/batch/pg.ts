// PostgreSQL connections for batch jobs: one client, its errors mapped to mlship's codes, type names shared by sources and sinks.
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { MlshipError } from "../protocol/errors.ts";
import { pgConnectionUrl } from "../protocol/secrets.ts";

// bigint columns (ids) read as BigInt rather than text, so they stay numbers in every sink and error record.
const TYPES = {
	getTypeParser: ((oid: number, format?: "text" | "binary") =>
		oid === 20 && format !== "binary"
			? (v: string) => BigInt(v)
			: pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Opens one client; "cannot connect" is MLSHIP_UNAVAILABLE (exit 6), so a scheduler can retry. */
export async function connectPg(url: string): Promise<pg.Client> {
	const client = new pg.Client({
		connectionString: pgConnectionUrl(url),
		types: TYPES,
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

/**
 * How a column comes out of a binary COPY: PostgreSQL's own binary form for the types read here (no text formatting
 * on the server, no string per value in Node), every other type cast to text in the query (`::text`).
 * `number-text` (real, numeric) is cast to text and read as a number, exactly as node-postgres's text parsers did.
 */
export type CopyKind =
	| "float8"
	| "int2"
	| "int4"
	| "int8"
	| "bool"
	| "text"
	| "number-text";

/** The CopyKind of a column of PostgreSQL type `oid` (the base type of a domain). */
export function copyKind(oid: number): CopyKind {
	switch (oid) {
		case 701:
			return "float8";
		case 21:
			return "int2";
		case 23:
			return "int4";
		case 20:
			return "int8";
		case 16:
			return "bool";
		case 700:
		case 1700:
			return "number-text";
		default:
			return "text";
	}
}

/** Whether a column of `oid` must be cast to text in the COPY query (its binary form is not read here). */
export function copyCastsToText(oid: number): boolean {
	return (
		copyKind(oid) === "number-text" ||
		(copyKind(oid) === "text" && !TEXT_OIDS.has(oid))
	);
}

/** text, varchar, bpchar: their binary form is their text. */
const TEXT_OIDS = new Set([25, 1042, 1043]);

/** One decoded column: numbers (float, int2, int4, real, numeric) in a typed array, others as values. */
export type CopyColumn =
	| {
			kind: "numbers";
			numbers: Float64Array;
			nulls: Uint8Array;
			hasNulls: boolean;
	  }
	| { kind: "values"; values: unknown[] };

/** The largest binary COPY result read into memory at once (one claimed chunk). */
export const COPY_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Runs `COPY (…) TO STDOUT (FORMAT binary)` and returns its whole output; more than `maxBytes` is an error that says
 * what to lower (the rest is read and dropped, so the connection stays usable). The client must not be in pipeline
 * mode (a COPY keeps the connection to itself).
 */
export async function pgCopyOut(
	client: pg.Client,
	sql: string,
	context: string,
	hint: string,
	maxBytes = COPY_MAX_BYTES,
): Promise<Buffer> {
	let parts: Buffer[] = [];
	let size = 0;
	try {
		for await (const part of client.query(
			copyTo(sql),
		) as AsyncIterable<Buffer>) {
			size += part.length;
			if (size <= maxBytes) parts.push(part);
			else parts = [];
		}
	} catch (err) {
		throw pgError(err, context);
	}
	if (size > maxBytes)
		throw new MlshipError(
			"MLSHIP_INVALID_INPUT",
			`${context}: the rows read at once are over ${maxBytes} bytes; ${hint}`,
		);
	return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
}

const COPY_SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

/**
 * Decodes PostgreSQL's binary COPY format (signature, flags, header extension; per row a field count and per field
 * a length, -1 for NULL, and the value; a -1 field count ends it) into one column per entry of `kinds`. Malformed
 * data (a truncated buffer, another field count, a value of the wrong width) is an error naming `context`.
 */
export function decodeBinaryCopy(
	buf: Buffer,
	kinds: readonly CopyKind[],
	context: string,
): { rows: number; columns: CopyColumn[] } {
	const bad = (what: string) =>
		new MlshipError(
			"MLSHIP_INVALID_INPUT",
			`${context}: malformed binary COPY data (${what})`,
		);
	if (buf.length < 19 || !buf.subarray(0, 11).equals(COPY_SIGNATURE))
		throw bad("no PGCOPY header");
	// A DataView reads big-endian numbers inline (Buffer's readDoubleBE copies byte by byte).
	const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
	const end = buf.byteLength;
	// Flags: bit 16 is "OIDs included", which this reader does not lay out; the other high bits must be 0.
	if ((dv.getUint32(11) & 0xffff0000) !== 0) throw bad("header flags");
	let at = 15 + 4 + dv.getUint32(15);
	// Rows counted first so numbers go straight into typed arrays of the right size.
	let rows = 0;
	for (let p = at; ; rows++) {
		if (p + 2 > end) throw bad("truncated row");
		const n = dv.getInt16(p);
		p += 2;
		if (n === -1) break;
		if (n !== kinds.length)
			throw bad(`a row of ${n} fields, expected ${kinds.length}`);
		for (let f = 0; f < n; f++) {
			if (p + 4 > end) throw bad("truncated field");
			const len = dv.getInt32(p);
			// -1 is NULL; any other negative length is not PostgreSQL's (the second pass would walk backwards).
			if (len < -1) throw bad(`a field length of ${len}`);
			p += 4 + Math.max(len, 0);
			if (p > end) throw bad("truncated value");
		}
	}
	const columns: CopyColumn[] = kinds.map((k) =>
		k === "float8" || k === "int2" || k === "int4" || k === "number-text"
			? {
					kind: "numbers",
					numbers: new Float64Array(rows),
					nulls: new Uint8Array(rows),
					hasNulls: false,
				}
			: { kind: "values", values: new Array<unknown>(rows) },
	);
	const width: Partial<Record<CopyKind, number>> = {
		float8: 8,
		int2: 2,
		int4: 4,
		int8: 8,
		bool: 1,
	};
	for (let r = 0; r < rows; r++) {
		at += 2;
		for (let f = 0; f < kinds.length; f++) {
			const len = dv.getInt32(at);
			at += 4;
			const kind = kinds[f] as CopyKind;
			const col = columns[f] as CopyColumn;
			if (len === -1) {
				if (col.kind === "numbers") {
					col.nulls[r] = 1;
					col.hasNulls = true;
					col.numbers[r] = Number.NaN;
				} else col.values[r] = null;
				continue;
			}
			const w = width[kind];
			if (w !== undefined && len !== w)
				throw bad(`a ${kind} value of ${len} bytes`);
			if (col.kind === "numbers")
				col.numbers[r] =
					kind === "float8"
						? dv.getFloat64(at)
						: kind === "int4"
							? dv.getInt32(at)
							: kind === "int2"
								? dv.getInt16(at)
								: Number(buf.toString("utf8", at, at + len));
			else
				col.values[r] =
					kind === "int8"
						? dv.getBigInt64(at)
						: kind === "bool"
							? buf[at] !== 0
							: buf.toString("utf8", at, at + len);
			at += len;
		}
	}
	return { rows, columns };
}

/** Element type OIDs of the arrays pgArrayParam writes in binary. */
const ARRAY_ELEMENT_OID: Record<string, number> = {
	bigint: 20,
	"double precision": 701,
	boolean: 16,
	text: 25,
};

/**
 * A column's values as one array parameter for `$n::<pgType>[]`: PostgreSQL's binary array format (a Buffer, which
 * node-postgres sends as binary: no number formatting in Node, no parsing on the server), or, when a value does not
 * fit the type exactly (a non-integer for bigint, a string for double precision), the values as node-postgres sends
 * them in text (pgValue), which the server converts as before.
 * @example pgArrayParam("double precision", [0.25, null]) // Buffer: ndim 1, has nulls, float8, [1 of 2 elements]
 */
export function pgArrayParam(
	pgType: string,
	values: readonly unknown[],
): unknown {
	const oid = ARRAY_ELEMENT_OID[pgType];
	const text = (): unknown[] => values.map((v) => pgValue(pgType, v));
	if (oid === undefined) return text();
	const n = values.length;
	const strings =
		oid === 25 ? values.map((v) => pgValue("text", v)) : undefined;
	let size = 20;
	let nulls = 0;
	for (let i = 0; i < n; i++) {
		const v = values[i];
		if (v === null || v === undefined) {
			nulls = 1;
			size += 4;
			continue;
		}
		if (oid === 20) {
			if (
				!(
					typeof v === "bigint" ||
					(typeof v === "number" && Number.isSafeInteger(v))
				)
			)
				return text();
			if (typeof v === "bigint" && BigInt.asIntN(64, v) !== v) return text();
			size += 12;
		} else if (oid === 701) {
			if (typeof v !== "number") return text();
			size += 12;
		} else if (oid === 16) {
			if (typeof v !== "boolean") return text();
			size += 5;
		} else size += 4 + Buffer.byteLength((strings as unknown[])[i] as string);
	}
	if (n === 0) {
		const empty = Buffer.alloc(12);
		empty.writeInt32BE(oid, 8);
		return empty;
	}
	const buf = Buffer.allocUnsafe(size);
	const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
	dv.setInt32(0, 1); // one dimension
	dv.setInt32(4, nulls);
	dv.setInt32(8, oid);
	dv.setInt32(12, n);
	dv.setInt32(16, 1); // lower bound
	let at = 20;
	for (let i = 0; i < n; i++) {
		const v = values[i];
		if (v === null || v === undefined) {
			dv.setInt32(at, -1);
			at += 4;
		} else if (oid === 701) {
			dv.setInt32(at, 8);
			dv.setFloat64(at + 4, v as number);
			at += 12;
		} else if (oid === 20) {
			dv.setInt32(at, 8);
			dv.setBigInt64(at + 4, BigInt(v as bigint | number));
			at += 12;
		} else if (oid === 16) {
			dv.setInt32(at, 1);
			buf[at + 4] = v ? 1 : 0;
			at += 5;
		} else {
			const len = buf.write(
				(strings as unknown[])[i] as string,
				at + 4,
				"utf8",
			);
			dv.setInt32(at, len);
			at += 4 + len;
		}
	}
	return buf;
}
