// SQL names and literals: the one place a table, column or type name from a URI, a flag or stored metadata becomes SQL text.
import { MlshipError } from "./errors.ts";

/**
 * PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1) and drops the rest without an error, so two
 * long names can silently become one object: a longer name is refused instead.
 */
export const PG_MAX_IDENTIFIER_BYTES = 63;

function checked(name: string, what: string, maxBytes?: number): string {
	if (typeof name !== "string" || name.length === 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what}: an SQL name cannot be empty`,
		);
	if (name.includes("\0"))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what} ${JSON.stringify(name)}: an SQL name cannot contain a NUL character`,
		);
	// With the u flag a surrogate pair is one code point: only a lone surrogate matches.
	if (/[\uD800-\uDFFF]/u.test(name))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what} ${JSON.stringify(name)}: not valid Unicode (a lone surrogate)`,
		);
	if (maxBytes !== undefined) {
		const bytes = Buffer.byteLength(name, "utf8");
		if (bytes > maxBytes)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${what} ${JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name)} is ${bytes} bytes; PostgreSQL keeps only the first ${maxBytes} (it would silently use a shortened name): choose a shorter name`,
			);
	}
	return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A PostgreSQL identifier, always double-quoted (so case, spaces, quotes, `;` and `$$` stay part of the name).
 * Refuses an empty name, a NUL, and a name over 63 bytes (PostgreSQL would truncate it).
 * @example pgIdent('my "col"') // '"my ""col"""'
 */
export function pgIdent(name: string, what = "PostgreSQL name"): string {
	return checked(name, what, PG_MAX_IDENTIFIER_BYTES);
}

/**
 * A SQLite or DuckDB identifier, always double-quoted. Refuses an empty name and a NUL (which would end the name in C).
 * @example sqlIdent("petal width") // '"petal width"'
 */
export function sqlIdent(name: string, what = "SQL name"): string {
	return checked(name, what);
}

/**
 * A PostgreSQL table name, optionally schema-qualified (`analytics.scores`), each part quoted with pgIdent.
 * @example pgTable("analytics.scores") // '"analytics"."scores"'
 */
export function pgTable(name: string, what = "PostgreSQL table"): string {
	return name
		.split(".")
		.map((p) => pgIdent(p, what))
		.join(".");
}

/**
 * A SQLite or DuckDB table name, optionally qualified (`main.scores`), each part quoted with sqlIdent.
 * @example sqlTable("main.scores") // '"main"."scores"'
 */
export function sqlTable(name: string, what = "SQL table"): string {
	return name
		.split(".")
		.map((p) => sqlIdent(p, what))
		.join(".");
}

/** An SQL string literal (standard quoting: `'` doubled; PostgreSQL's standard_conforming_strings is on by default). */
export function sqlString(s: string): string {
	if (s.includes("\0"))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"an SQL string cannot contain a NUL character",
		);
	return `'${s.replaceAll("'", "''")}'`;
}

/**
 * A PostgreSQL dollar-quoted string whose tag occurs nowhere in `body`, so no name inside the body (a column
 * called `k$$; DROP …`) can end the quote early.
 * @example dollarQuote("BEGIN RETURN NULL; END") // "$mlship$BEGIN RETURN NULL; END$mlship$"
 */
export function dollarQuote(body: string): string {
	let tag = "mlship";
	// `${body}$`: a body that ends in `$mlship` would otherwise close early on the closing tag's first `$`.
	for (let i = 0; `${body}$`.includes(`$${tag}$`); i++) tag = `mlship${i}`;
	return `$${tag}$${body}$${tag}$`;
}
