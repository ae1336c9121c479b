// The change feed's shared half: appending changes in a write, pruning old ones, and handing rows to watchers.
import type { ChangeEvent } from "../types.ts";
import { insertRows } from "./rows.ts";
import type { ChangeRow, Dialect, PendingChange, Session } from "./session.ts";

/**
 * How long the `changes` table keeps a change. A watcher reads every change after its cursor (the newest seq when
 * it started watching), so only a watcher that stopped reading for longer than this could miss one. A change is
 * deleted once it is older than `maxAgeMs` AND not among the newest `minRows`.
 */
export interface ChangeRetention {
	/** Keep at least this many newest changes, whatever their age (default 10,000). */
	minRows: number;
	/** Keep every change younger than this (default 7 days). */
	maxAgeMs: number;
}

export const DEFAULT_RETENTION: ChangeRetention = {
	minRows: 10_000,
	maxAgeMs: 7 * 24 * 3600_000,
};

/**
 * Appends `pending` in order inside the caller's transaction, many rows per statement; returns the newest seq. A
 * multi-row VALUES list is inserted in its order, so the sequence numbers follow the changes' order (and the
 * driver's append lock, taken before, makes seq order commit order).
 */
export async function appendChanges(
	tx: Session,
	dialect: Dialect,
	pending: readonly PendingChange[],
): Promise<number> {
	const rows = await insertRows<{ seq: number | string }>(
		tx,
		"INSERT INTO changes (type, name, version, alias, entity, at)",
		pending.map((e) => [
			e.type,
			e.name,
			e.version ?? null,
			e.alias ?? null,
			e.entity ?? null,
		]),
		(k) =>
			`($${k}, $${k + 1}, $${k + 2}, $${k + 3}, coalesce($${k + 4}, (SELECT entity FROM versions WHERE name = $${k + 1} AND version = $${k + 2})), ${dialect.now})`,
		" RETURNING seq",
	);
	let newest = 0;
	for (const r of rows) newest = Math.max(newest, Number(r.seq));
	return newest;
}

/**
 * Deletes changes past their retention, about once every tenth of `minRows` changes (when the newest seq crosses
 * a multiple of that step), so a write seldom pays for it. Deletes walk `seq` from the oldest and stop at the first
 * young row. Returns how many rows went.
 */
export async function pruneChanges(
	tx: Session,
	newest: number,
	appended: number,
	retention: ChangeRetention,
): Promise<number> {
	const step = Math.max(1, Math.floor(retention.minRows / 10));
	if (Math.floor(newest / step) === Math.floor((newest - appended) / step))
		return 0;
	const keepFrom = newest - retention.minRows;
	if (keepFrom < 1) return 0;
	const cutoff = new Date(Date.now() - retention.maxAgeMs).toISOString();
	const gone = await tx.all(
		`DELETE FROM changes WHERE seq <= $1
		   AND seq < coalesce((SELECT seq FROM changes WHERE at >= $2 ORDER BY seq LIMIT 1), $1 + 1)
		 RETURNING seq`,
		[keepFrom, cutoff],
	);
	return gone.length;
}

/** The event of a stored change row. */
export function toChangeEvent(row: ChangeRow): ChangeEvent {
	const e: ChangeEvent = {
		seq: Number(row.seq),
		type: row.type,
		name: row.name,
		at: row.at instanceof Date ? row.at.toISOString() : row.at,
	};
	if (row.version !== null) e.version = row.version;
	if (row.alias !== null) e.alias = row.alias;
	if (row.entity !== null) e.entity = row.entity;
	return e;
}

/** The watchers of one store: delivery in order, a watcher that throws never stops the others. */
export class Watchers {
	readonly #set = new Set<{ fn: (e: ChangeEvent) => void }>();

	get size(): number {
		return this.#set.size;
	}

	/** Adds a watcher; returns a function that removes it and says whether any are left. */
	add(fn: (e: ChangeEvent) => void): () => boolean {
		const w = { fn };
		this.#set.add(w);
		return () => {
			this.#set.delete(w);
			return this.#set.size > 0;
		};
	}

	/** Hands one change to every watcher (each sees it once, even if one is added meanwhile). */
	deliver(e: ChangeEvent): void {
		for (const w of [...this.#set]) {
			try {
				w.fn(e);
			} catch (err) {
				process.emitWarning(
					`mlship registry watcher threw: ${(err as Error).message}`,
				);
			}
		}
	}

	clear(): void {
		this.#set.clear();
	}
}
