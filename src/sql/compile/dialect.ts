// What differs between the databases a compiled model runs in: quoting, literals, types, arrays, structs, NaN.
import { MlshipError } from "../../protocol/errors.ts";

export const DIALECTS = ["postgres", "duckdb", "sqlite", "bigquery"] as const;
export type DialectName = (typeof DIALECTS)[number];

/** One SQL dialect as the compiler needs it. */
export interface Dialect {
	name: DialectName;
	/** A quoted identifier (one part). */
	ident(name: string): string;
	/** A double literal that the database reads back as exactly this double. */
	num(x: number): string;
	/** A string literal. */
	str(s: string): string;
	/** SQL types of a numeric (double) value, an integer, a string, a double array. */
	double: string;
	bigint: string;
	text: string;
	doubleArray: string;
	/** `x` with NaN turned into NULL (the runtime treats NaN as missing). */
	nanToNull(x: string): string;
	/** `x` rounded to float32 and back, or undefined when the database has no float32 type. */
	round32(x: string): string | undefined;
	/** The largest of two or more values. */
	greatest(xs: string[]): string;
	/** An array (or JSON array text, in SQLite) of doubles. */
	array(xs: string[]): string;
	/**
	 * Appended to a stage's subquery so the planner keeps it a subquery: PostgreSQL and SQLite otherwise flatten
	 * it and copy each raw score (every tree) into each place the next stage names it, evaluating it again there.
	 */
	fence: string;
}

/**
 * Double quotes around a name, inner quotes doubled: PostgreSQL, DuckDB and SQLite.
 * (Local until the shared quoting helper of src/protocol/sql.ts is on this branch: switch to it at merge.)
 */
function dquote(name: string): string {
	if (name.length === 0 || name.includes("\0"))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`SQL name ${JSON.stringify(name)}: a name cannot be empty or contain a NUL character`,
		);
	return `"${name.replaceAll('"', '""')}"`;
}

/** BigQuery quotes names in backticks; a backtick or backslash inside is escaped with a backslash. */
function backquote(name: string): string {
	if (name.length === 0 || /[\0\n\r]/.test(name))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`BigQuery name ${JSON.stringify(name)}: a name cannot be empty or contain NUL or line breaks`,
		);
	return `\`${name.replaceAll("\\", "\\\\").replaceAll("`", "\\`")}\``;
}

/**
 * The shortest decimal that reads back as `x` (ECMAScript's Number#toString is shortest round-trip), always with an
 * exponent so every database types it as a double (DuckDB reads `0.1` as DECIMAL, SQLite and BigQuery `3` as an
 * integer); negatives in parentheses so `a - -1` never becomes a comment.
 */
export function doubleText(x: number): string {
	if (!Number.isFinite(x))
		throw new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`the model holds the value ${x}, which SQL has no literal for`,
		);
	if (Object.is(x, -0)) return "0e0";
	const s = String(x);
	return s.includes("e") ? s : `${s}e0`;
}

function paren(x: number, lit: string): string {
	return x < 0 ? `(${lit})` : lit;
}

const quoteString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** PostgreSQL keeps the first 63 bytes of a name and drops the rest silently: two long names would become one. */
function pgQuote(name: string): string {
	const bytes = Buffer.byteLength(name, "utf8");
	if (bytes > 63)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`PostgreSQL name ${JSON.stringify(name)} is ${bytes} bytes; PostgreSQL keeps only the first 63: choose a shorter --name (or rename the feature in mlship.yaml)`,
		);
	return dquote(name);
}

const postgres: Dialect = {
	name: "postgres",
	ident: pgQuote,
	// A bare 1.5e0 is NUMERIC in PostgreSQL: CASE branches and sums of NUMERIC would run in decimal arithmetic.
	num: (x) => paren(x, `${doubleText(x)}::float8`),
	str: quoteString,
	double: "float8",
	bigint: "bigint",
	text: "text",
	doubleArray: "float8[]",
	nanToNull: (x) => `NULLIF(${x}, 'NaN'::float8)`,
	round32: (x) => `${x}::real::float8`,
	greatest: (xs) => `GREATEST(${xs.join(", ")})`,
	array: (xs) => `ARRAY[${xs.join(", ")}]::float8[]`,
	fence: " OFFSET 0",
};

const duckdb: Dialect = {
	name: "duckdb",
	ident: dquote,
	num: (x) => paren(x, doubleText(x)),
	str: quoteString,
	double: "DOUBLE",
	bigint: "BIGINT",
	text: "VARCHAR",
	doubleArray: "DOUBLE[]",
	nanToNull: (x) => `NULLIF(${x}, 'NaN'::DOUBLE)`,
	round32: (x) => `CAST(CAST(${x} AS FLOAT) AS DOUBLE)`,
	greatest: (xs) => `GREATEST(${xs.join(", ")})`,
	array: (xs) => `[${xs.join(", ")}]::DOUBLE[]`,
	// DuckDB eliminates the common subexpressions itself.
	fence: "",
};

const sqlite: Dialect = {
	name: "sqlite",
	ident: dquote,
	num: (x) => paren(x, doubleText(x)),
	str: quoteString,
	double: "REAL",
	bigint: "INTEGER",
	text: "TEXT",
	doubleArray: "TEXT",
	// SQLite stores NaN as NULL already.
	nanToNull: (x) => x,
	round32: () => undefined,
	// max() with one argument is the aggregate: callers pass two or more.
	greatest: (xs) => `max(${xs.join(", ")})`,
	array: (xs) => `json_array(${xs.join(", ")})`,
	// SQLite never flattens a subquery with an OFFSET.
	fence: " LIMIT -1 OFFSET 0",
};

const bigquery: Dialect = {
	name: "bigquery",
	ident: backquote,
	num: (x) => paren(x, doubleText(x)),
	// BigQuery strings take backslash escapes.
	str: (s) =>
		`'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'").replaceAll("\n", "\\n").replaceAll("\r", "\\r")}'`,
	double: "FLOAT64",
	bigint: "INT64",
	text: "STRING",
	doubleArray: "ARRAY<FLOAT64>",
	nanToNull: (x) => `IF(IS_NAN(${x}), NULL, ${x})`,
	round32: () => undefined,
	greatest: (xs) => `GREATEST(${xs.join(", ")})`,
	array: (xs) => `[${xs.join(", ")}]`,
	fence: "",
};

const BY_NAME: Record<DialectName, Dialect> = {
	postgres,
	duckdb,
	sqlite,
	bigquery,
};

/** The dialect called `name`; an unknown name fails with the list. */
export function dialect(name: string): Dialect {
	const d = BY_NAME[name as DialectName];
	if (!d)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`unknown SQL dialect '${name}': use one of ${DIALECTS.join(", ")}`,
		);
	return d;
}

/** A possibly qualified name (`schema.fn`, `project.dataset.view`): each dot-separated part quoted. */
export function qualified(d: Dialect, name: string): string {
	return name
		.split(".")
		.map((p) => d.ident(p))
		.join(".");
}
