// Multi-row INSERT statements for the registry core: bulk writes in a few statements instead of one per row.
import type { Param, Session } from "./session.ts";

/** Rows per multi-row statement: well under both databases' bound-parameter limits (SQLite 32,766, PostgreSQL 65,535). */
const PARAMS_PER_STATEMENT = 6000;

/**
 * Runs `INSERT … VALUES (…), (…)` over `rows` in as few statements as the parameter bound allows: `head` is the
 * statement up to VALUES, `tuple(i)` the i-th row's placeholders starting at `$i`. Returns the rows RETURNING gave.
 */
export async function insertRows<R>(
	tx: Session,
	head: string,
	rows: readonly (readonly Param[])[],
	tuple: (first: number) => string,
	tail = "",
): Promise<R[]> {
	const out: R[] = [];
	const width = rows[0]?.length ?? 1;
	const per = Math.max(1, Math.floor(PARAMS_PER_STATEMENT / width));
	for (let i = 0; i < rows.length; i += per) {
		const chunk = rows.slice(i, i + per);
		const values = chunk.map((_, j) => tuple(j * width + 1)).join(", ");
		out.push(
			...(await tx.all<R>(`${head} VALUES ${values}${tail}`, chunk.flat())),
		);
	}
	return out;
}

/** `($k, $k+1, … $k+n-1)` */
export const placeholders = (n: number) => (first: number) =>
	`(${Array.from({ length: n }, (_, i) => `$${first + i}`).join(", ")})`;
