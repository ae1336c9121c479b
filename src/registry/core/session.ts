// What a registry database must offer the registry core: one query API (all / one), transactions, and its dialect.
import type { ChangeEvent } from "../types.ts";

/** A value bound to a `$1`, `$2`… placeholder (drivers translate the placeholder style they need). */
export type Param = string | number | null | Uint8Array;

/** A connection or transaction to run SQL on; rows come back as plain objects. */
export interface Session {
	all<R>(sql: string, params?: readonly Param[]): Promise<R[]>;
	one<R>(sql: string, params?: readonly Param[]): Promise<R | undefined>;
}

/** The few SQL fragments that differ between the databases; everything else the core writes once. */
export interface Dialect {
	/** Appended to ORDER BY on text so the order is by bytes ('COLLATE "C"' in PostgreSQL; SQLite's default). */
	readonly binary: string;
	/** Appended to a SELECT whose rows must stay locked until commit (PostgreSQL); empty where a write is exclusive. */
	readonly forUpdate: string;
	/** The SQL expression of "now" as stored in `created_at` and `at`. */
	readonly now: string;
}

/** A change to record in the current transaction (`entity` defaults to the version's, read when it is appended). */
export interface PendingChange {
	type: ChangeEvent["type"];
	name: string;
	version?: number;
	alias?: string;
	entity?: string | null;
}

/** A changes row as stored (seq as a number or, from PostgreSQL's BIGSERIAL, a string; `at` as text or a Date). */
export interface ChangeRow {
	seq: number | string;
	type: ChangeEvent["type"];
	name: string;
	version: number | null;
	alias: string | null;
	entity: string | null;
	at: string | Date;
}

/**
 * One registry database: what differs between SQLite and PostgreSQL (connections, locking, the change feed's
 * transport, migrations). The registry core holds everything else.
 */
export interface Driver {
	/** Where the registry is, for messages (never with a password). */
	readonly location: string;
	readonly dialect: Dialect;
	/** Runs `fn` on a session outside any write transaction (it may see other writers' commits between queries). */
	read<T>(fn: (s: Session) => Promise<T>): Promise<T>;
	/** Runs `fn` in one write transaction: all or nothing, writers of one model queue. */
	transaction<T>(fn: (tx: Session) => Promise<T>): Promise<T>;
	/** Called in the transaction before its changes are appended, so `seq` order is commit order (a lock). */
	beforeAppend(tx: Session): Promise<void>;
	/** Called in the transaction after its changes are appended, with the newest seq (e.g. NOTIFY). */
	afterAppend(tx: Session, newest: number): Promise<void>;
	/** Called after a write committed (newest = its newest seq, 0 for none): hand pending changes to watchers. */
	committed(newest: number): Promise<void>;
	/** Calls `fn` for every later change, in seq order; returns unsubscribe. */
	watch(fn: (e: ChangeEvent) => void): () => void;
	health(): { available: boolean; reason?: string };
	close(): Promise<void>;
}
