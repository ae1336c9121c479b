// A chunk of row objects (what SQLite and PostgreSQL drivers return) as a SourceChunk.
import type { SourceChunk } from "../types.ts";

export function rowsChunk(
	rows: readonly Record<string, unknown>[],
	columns: readonly string[],
): SourceChunk {
	return {
		rows: rows.length,
		source: (i) => {
			const name = columns[i] as string;
			return { get: (r) => (rows[r] as Record<string, unknown>)[name] };
		},
		values: (i) => {
			const name = columns[i] as string;
			return rows.map((r) => r[name]);
		},
	};
}
