// A chunk of row objects (what SQLite and PostgreSQL drivers return) as a SourceChunk.
import type { SourceChunk } from "../types.ts";

/**
 * `values(i)` that builds each column's values once: the scoring loop asks for them once per rejected row, and
 * building them every time made a chunk with many bad rows cost rows × bad rows.
 */
export function onceValues(
	read: (i: number) => unknown[],
): (i: number) => unknown[] {
	const cache: (unknown[] | undefined)[] = [];
	return (i) => {
		let v = cache[i];
		if (v === undefined) {
			v = read(i);
			cache[i] = v;
		}
		return v;
	};
}

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
		values: onceValues((i) => {
			const name = columns[i] as string;
			return rows.map((r) => r[name]);
		}),
	};
}
