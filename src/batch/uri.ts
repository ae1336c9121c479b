// Batch source and sink URIs: files and globs, `duckdb:QUERY`, `sqlite:PATH?table=T|query=Q`, `postgres://…?table=T|query=Q`.
import { MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";

export type Location =
	| { kind: "file"; path: string }
	| { kind: "duckdb"; query: string }
	| { kind: "sqlite"; path: string; table?: string; query?: string }
	| { kind: "postgres"; url: string; table?: string; query?: string };

/**
 * Parses a source or sink location. After `?`, `table=NAME` names a table and `query=SQL` a query; `query=`
 * takes the rest of the string verbatim (no URL encoding needed), so it comes last.
 * @example parseLocation("sqlite:features.db?table=customers")
 * @example parseLocation("postgres://app@db/prod?query=SELECT * FROM f WHERE day = current_date")
 */
export function parseLocation(uri: string, role: "source" | "sink"): Location {
	if (/^duckdb:/i.test(uri)) {
		if (role === "sink")
			throw bad(
				uri,
				role,
				"a DuckDB query cannot be a sink; write to a file or a table",
			);
		return { kind: "duckdb", query: uri.slice("duckdb:".length).trim() };
	}
	const pg = /^postgres(ql)?:\/\//i.test(uri);
	const sqlite = /^sqlite:/i.test(uri);
	if (!pg && !sqlite) {
		// A scheme we do not read (mysql://, s3://) must not become a file path such as ./mysql:/u@h/db.
		const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(uri)?.[1];
		if (scheme !== undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${role} '${redactUrl(uri)}': unknown scheme '${scheme}:'; a ${role} is a file path${role === "source" ? " or glob" : ""} (.parquet .csv .jsonl), sqlite:PATH?table=T, postgres://USER@HOST/DB?table=T${role === "source" ? " or duckdb:SELECT …" : ""}`,
			);
		return { kind: "file", path: uri };
	}
	const q = uri.indexOf("?");
	const base = q < 0 ? uri : uri.slice(0, q);
	const params = parseParams(q < 0 ? "" : uri.slice(q + 1));
	const table = params.get("table");
	const query = params.get("query");
	if (role === "sink" && (query !== undefined || table === undefined))
		throw bad(uri, role, "a table sink needs ?table=NAME");
	if (role === "source" && (table === undefined) === (query === undefined))
		throw bad(uri, role, "give exactly one of ?table=NAME or ?query=SELECT …");
	const what = {
		...(table !== undefined ? { table } : {}),
		...(query !== undefined ? { query } : {}),
	};
	if (pg) {
		// Other parameters (sslmode, …) stay on the connection URL.
		const rest = [...params].filter(([k]) => k !== "table" && k !== "query");
		const url = rest.length
			? `${base}?${rest.map(([k, v]) => `${k}=${v}`).join("&")}`
			: base;
		return { kind: "postgres", url, ...what };
	}
	const path = base.replace(/^sqlite:(\/\/)?/i, "");
	if (!path) throw bad(uri, role, "expected sqlite:PATH?table=NAME");
	return { kind: "sqlite", path, ...what };
}

function parseParams(s: string): Map<string, string> {
	const out = new Map<string, string>();
	let rest = s;
	while (rest.length > 0) {
		if (rest.startsWith("query=")) {
			out.set("query", rest.slice("query=".length));
			break;
		}
		const amp = rest.indexOf("&");
		const part = amp < 0 ? rest : rest.slice(0, amp);
		const eq = part.indexOf("=");
		if (eq > 0)
			out.set(part.slice(0, eq), decodeURIComponent(part.slice(eq + 1)));
		rest = amp < 0 ? "" : rest.slice(amp + 1);
	}
	return out;
}

function bad(uri: string, role: string, why: string): MlshipError {
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`${role} '${redactUrl(uri)}': ${why} (e.g. sqlite:features.db?table=customers, postgres://user@host/db?query=SELECT …, duckdb:SELECT … FROM 'x.parquet', or a file/glob)`,
	);
}
