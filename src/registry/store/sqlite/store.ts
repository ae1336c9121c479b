// SqliteStore: the embedded ModelStore, one SQLite file (node:sqlite) shared safely by several processes.
import { resolve } from "node:path";
import {
	DatabaseSync,
	type SQLInputValue,
	type StatementSync,
} from "node:sqlite";
import { MlshipError } from "../../../protocol/errors.ts";
import {
	type ChangeRetention,
	DEFAULT_RETENTION,
	toChangeEvent,
	Watchers,
} from "../../core/feed.ts";
import { RegistryCore } from "../../core/registry.ts";
import type {
	ChangeRow,
	Dialect,
	Driver,
	Param,
	Session,
} from "../../core/session.ts";
import type { ChangeEvent } from "../../types.ts";

/**
 * Schema migrations; `PRAGMA user_version` = how many have been applied. Append only, never edit one.
 * `models.last_version` is a per-name counter that survives deletes, so `name@3` never names two different artifacts.
 */
const MIGRATIONS: readonly string[] = [
	`CREATE TABLE models (
		name TEXT PRIMARY KEY,
		last_version INTEGER NOT NULL,
		created_at TEXT NOT NULL
	) STRICT;
	CREATE TABLE versions (
		name TEXT NOT NULL REFERENCES models (name),
		version INTEGER NOT NULL,
		manifest TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		created_at TEXT NOT NULL,
		status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
		metadata TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (name, version)
	) STRICT;
	CREATE TABLE files (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		path TEXT NOT NULL,
		bytes BLOB NOT NULL,
		sha256 TEXT NOT NULL,
		PRIMARY KEY (name, version, path),
		FOREIGN KEY (name, version) REFERENCES versions (name, version) ON DELETE CASCADE
	) STRICT;
	CREATE TABLE aliases (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		version INTEGER NOT NULL,
		PRIMARY KEY (name, alias),
		FOREIGN KEY (name, version) REFERENCES versions (name, version) ON DELETE CASCADE
	) STRICT;
	CREATE INDEX aliases_by_version ON aliases (name, version);
	CREATE TABLE changes (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		type TEXT NOT NULL,
		name TEXT NOT NULL,
		version INTEGER,
		alias TEXT,
		at TEXT NOT NULL
	) STRICT;`,
	// Per-entity families: a version may belong to one entity of its model (price#berlin).
	`ALTER TABLE versions ADD COLUMN entity TEXT;
	ALTER TABLE changes ADD COLUMN entity TEXT;
	CREATE INDEX versions_by_entity ON versions (name, entity, version);`,
	// Access control (issue 12): API tokens (a SHA-256 hash only, never the secret) and the audit log.
	`CREATE TABLE auth_tokens (
		id TEXT PRIMARY KEY,
		hash TEXT NOT NULL UNIQUE,
		scopes TEXT NOT NULL,
		models TEXT NOT NULL DEFAULT '[]',
		description TEXT NOT NULL DEFAULT '',
		created_at TEXT NOT NULL,
		created_by TEXT NOT NULL,
		expires_at TEXT,
		revoked_at TEXT,
		last_used_at TEXT
	) STRICT;
	CREATE TABLE audit_log (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		at TEXT NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		target TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '{}',
		source TEXT NOT NULL
	) STRICT;
	CREATE INDEX audit_log_by_at ON audit_log (at);`,
	// Traffic policies on aliases (experiments: split, sticky, shadow, bandit); they go with their alias.
	`CREATE TABLE traffic_policies (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		policy TEXT NOT NULL,
		salt TEXT NOT NULL,
		actor TEXT,
		updated_at TEXT NOT NULL,
		PRIMARY KEY (name, alias),
		FOREIGN KEY (name, alias) REFERENCES aliases (name, alias) ON DELETE CASCADE
	) STRICT;`,
	// Drift monitoring: live profiles per window and replica (merged when read). No foreign key: a bundle directory
	// served next to a registry has no version row, and windows outlive deleted versions until the monitor prunes them.
	`CREATE TABLE monitor_windows (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		window_start INTEGER NOT NULL,
		window_seconds INTEGER NOT NULL,
		replica TEXT NOT NULL,
		rows INTEGER NOT NULL,
		profile TEXT NOT NULL,
		PRIMARY KEY (name, version, window_start, replica)
	) STRICT;
	CREATE INDEX monitor_windows_by_start ON monitor_windows (name, window_start);`,
	// Bandit arms (experiments feedback): totals every replica adds its deltas to; kept when a policy is cleared.
	`CREATE TABLE bandit_arms (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		version INTEGER NOT NULL,
		pulls INTEGER NOT NULL,
		reward_sum REAL NOT NULL,
		PRIMARY KEY (name, alias, version)
	) STRICT;`,
	// Progressive rollouts (one row per alias; times in ms since the epoch), their events, and the per-version
	// request totals each replica publishes for the rollout checks.
	`CREATE TABLE rollouts (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		from_version INTEGER NOT NULL,
		to_version INTEGER NOT NULL,
		spec TEXT NOT NULL,
		state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'promoted', 'rolled_back', 'aborted')),
		step INTEGER NOT NULL,
		failed INTEGER NOT NULL,
		step_started_at INTEGER NOT NULL,
		next_check_at INTEGER NOT NULL,
		baseline TEXT NOT NULL,
		lease_owner TEXT,
		lease_until INTEGER,
		started_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (name, alias)
	) STRICT;
	CREATE TABLE rollout_events (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		at INTEGER NOT NULL,
		type TEXT NOT NULL,
		detail TEXT NOT NULL
	) STRICT;
	CREATE INDEX rollout_events_by_alias ON rollout_events (name, alias, seq);
	CREATE TABLE version_stats (
		replica TEXT NOT NULL,
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		requests INTEGER NOT NULL,
		errors INTEGER NOT NULL,
		buckets TEXT NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (replica, name, version)
	) STRICT;`,
	// What each alias was configured to serve after every change (version and policy, in the change's transaction):
	// the dashboard draws configured weights over time from it (ui3).
	`CREATE TABLE traffic_policy_history (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		at INTEGER NOT NULL,
		version INTEGER,
		policy TEXT,
		actor TEXT NOT NULL
	) STRICT;
	CREATE INDEX traffic_policy_history_by_at ON traffic_policy_history (at);`,
	// Monitoring per window besides drift (one row per model, version, window start and replica, rewritten as the
	// window fills; merged when read): requests, errors (error, timeout), the latency histogram of answers on the
	// buckets of version_stats, and feedback quality as mergeable sufficient statistics (JSON). Alert claims: the
	// first replica to insert an alert's row sends it. No foreign keys, as monitor_windows.
	`CREATE TABLE monitor_stats (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		window_start INTEGER NOT NULL,
		window_seconds REAL NOT NULL,
		replica TEXT NOT NULL,
		requests INTEGER NOT NULL,
		errors INTEGER NOT NULL,
		buckets TEXT NOT NULL,
		quality TEXT,
		PRIMARY KEY (name, version, window_start, replica)
	) STRICT;
	CREATE INDEX monitor_stats_by_start ON monitor_stats (name, window_start);
	CREATE TABLE monitor_alerts (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		subject TEXT NOT NULL,
		window_start INTEGER NOT NULL,
		change TEXT NOT NULL,
		replica TEXT NOT NULL,
		PRIMARY KEY (name, version, subject, window_start, change)
	) STRICT;`,
	// Each alias's last policy change before a range (the dashboard's weights over time) found by key, not by
	// scanning every alias's history (fixui).
	`CREATE INDEX traffic_policy_history_by_alias ON traffic_policy_history (name, alias, at);`,
	// Content-addressed files (life6): each distinct file once in `blobs` (by sha256), and how many versions' manifests
	// name it in `blob_refs` (apart, so a new reference never rewrites the bytes); the per-version `files` rows move
	// there. A version's files are the ones its manifest names; a file is deleted with the last version naming it.
	`CREATE TABLE blobs (
		sha256 TEXT PRIMARY KEY,
		bytes BLOB NOT NULL
	) STRICT;
	CREATE TABLE blob_refs (
		sha256 TEXT PRIMARY KEY,
		refs INTEGER NOT NULL
	) STRICT;
	INSERT OR IGNORE INTO blobs (sha256, bytes) SELECT sha256, bytes FROM files;
	INSERT INTO blob_refs (sha256, refs) SELECT sha256, count(*) FROM files GROUP BY sha256;
	DROP TABLE files;`,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The migrations, in order (tests build a registry as an older mlship left it). */
export const MIGRATION_SQL: readonly string[] = MIGRATIONS;

/** How often other processes' changes are looked for while someone watches. */
const POLL_MS = 200;
/** How long a writer waits for another process's write lock before failing. */
const BUSY_TIMEOUT_MS = 10_000;

const DIALECT: Dialect = {
	binary: "", // SQLite compares text by bytes unless told otherwise
	forUpdate: "", // a write transaction holds the whole database
	now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", // as Date#toISOString writes it
};

/**
 * The tail of every write transaction on each file in this process. node:sqlite is synchronous and its busy wait
 * blocks the thread, so a second in-process writer must wait here (not on the file lock held by a transaction that
 * is waiting for this very thread); other processes still queue on the file lock.
 */
const fileLocks = new Map<string, Promise<unknown>>();

/** Options for {@link SqliteStore}. */
export interface SqliteStoreOptions {
	/** How long the change feed keeps changes (default: 7 days, and at least the newest 10,000). */
	retention?: ChangeRetention;
}

/** The SQLite half of a registry: one connection, an in-process write queue, and a polled change feed. */
class SqliteDriver implements Driver {
	readonly location: string;
	readonly dialect = DIALECT;
	readonly #db: DatabaseSync;
	readonly #lockKey: string;
	readonly #statements = new Map<string, StatementSync>();
	readonly #watchers = new Watchers();
	#cursor = 0;
	#timer: NodeJS.Timeout | undefined;
	#pumping = false;
	#pumpAgain = false;
	#closed = false;

	constructor(path: string) {
		this.location = `sqlite:${path}`;
		this.#lockKey =
			path === ":memory:" ? `:memory:${Math.random()}` : resolve(path);
		try {
			this.#db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`cannot open registry ${this.location}: ${(err as Error).message}`,
				{ cause: err },
			);
		}
		try {
			this.#db.exec("PRAGMA journal_mode = WAL");
			this.#db.exec("PRAGMA foreign_keys = ON");
			this.#migrate();
		} catch (err) {
			this.#db.close();
			throw err;
		}
	}

	#migrate(): void {
		const have = this.#userVersion();
		if (have > SCHEMA_VERSION)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`registry ${this.location} has schema version ${have}, newer than this mlship understands (${SCHEMA_VERSION}); upgrade mlship`,
			);
		if (have === SCHEMA_VERSION) return;
		// Another process may migrate at the same moment: re-read the version under the write lock.
		this.#db.exec("BEGIN IMMEDIATE");
		try {
			for (let v = this.#userVersion(); v < SCHEMA_VERSION; v++) {
				this.#db.exec(MIGRATIONS[v] as string);
				this.#db.exec(`PRAGMA user_version = ${v + 1}`);
			}
			this.#db.exec("COMMIT");
		} catch (err) {
			if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
			throw err;
		}
	}

	#userVersion(): number {
		return (
			this.#db.prepare("PRAGMA user_version").get() as { user_version: number }
		).user_version;
	}

	/** The prepared statement of core SQL, with its `$N` placeholders as SQLite's `?N`. */
	#statement(sql: string): StatementSync {
		let st = this.#statements.get(sql);
		if (!st) {
			st = this.#db.prepare(sql.replace(/\$(\d+)/g, "?$1"));
			this.#statements.set(sql, st);
		}
		return st;
	}

	readonly #session: Session = {
		all: async <R>(sql: string, params: readonly Param[] = []) =>
			this.#statement(sql).all(...(params as SQLInputValue[])) as R[],
		one: async <R>(sql: string, params: readonly Param[] = []) =>
			this.#statement(sql).get(...(params as SQLInputValue[])) as R | undefined,
	};

	/** Runs `fn` after every earlier read or write of this file in this process has finished. */
	async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
		const before = fileLocks.get(this.#lockKey) ?? Promise.resolve();
		const run = before.then(fn, fn);
		const tail = run.catch(() => {});
		fileLocks.set(this.#lockKey, tail);
		try {
			return await run;
		} finally {
			if (fileLocks.get(this.#lockKey) === tail)
				fileLocks.delete(this.#lockKey);
		}
	}

	read<T>(fn: (s: Session) => Promise<T>): Promise<T> {
		// Queued too: a read on this connection must not see a write transaction in progress on it.
		return this.#exclusive(() => fn(this.#session));
	}

	transaction<T>(fn: (tx: Session) => Promise<T>): Promise<T> {
		return this.#exclusive(async () => {
			// Takes the file's write lock up front: writers from other processes queue on it (busy timeout).
			this.#db.exec("BEGIN IMMEDIATE");
			try {
				const result = await fn(this.#session);
				this.#db.exec("COMMIT");
				return result;
			} catch (err) {
				if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
				throw err;
			}
		});
	}

	async beforeAppend(): Promise<void> {} // the write transaction already holds the database

	async afterAppend(): Promise<void> {} // watchers poll

	async committed(): Promise<void> {
		this.#pump();
	}

	/** A local file: available while open. */
	health(): { available: boolean; reason?: string } {
		return this.#closed
			? { available: false, reason: "closed" }
			: { available: true };
	}

	watch(onChange: (e: ChangeEvent) => void): () => void {
		if (this.#watchers.size === 0) {
			this.#cursor =
				(
					this.#statement("SELECT max(seq) AS seq FROM changes").get() as {
						seq: number | null;
					}
				).seq ?? 0;
			this.#timer = setInterval(() => this.#pump(), POLL_MS);
			this.#timer.unref();
		} else {
			// Hand pending events to the existing watchers, so the new one only sees what happens from now on.
			this.#pump();
		}
		const remove = this.#watchers.add(onChange);
		return () => {
			if (!remove()) this.#stopPolling();
		};
	}

	/** Delivers every change after the cursor, in order; re-entrant calls (a watcher that writes) queue a re-run. */
	#pump(): void {
		// Mid-transaction on this connection (another async caller's write): its changes are not committed yet;
		// the write pumps once it commits.
		if (this.#closed || this.#watchers.size === 0 || this.#db.isTransaction)
			return;
		if (this.#pumping) {
			this.#pumpAgain = true;
			return;
		}
		this.#pumping = true;
		try {
			do {
				this.#pumpAgain = false;
				let rows: ChangeRow[];
				try {
					rows = this.#statement(
						"SELECT * FROM changes WHERE seq > $1 ORDER BY seq",
					).all(this.#cursor) as unknown as ChangeRow[];
				} catch (err) {
					process.emitWarning(
						`mlship registry ${this.location}: reading changes failed: ${(err as Error).message}`,
					);
					return;
				}
				for (const row of rows) {
					this.#cursor = Number(row.seq);
					this.#watchers.deliver(toChangeEvent(row));
				}
			} while (this.#pumpAgain && !this.#closed);
		} finally {
			this.#pumping = false;
		}
	}

	#stopPolling(): void {
		if (this.#timer) clearInterval(this.#timer);
		this.#timer = undefined;
	}

	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		this.#stopPolling();
		this.#watchers.clear();
		// After any transaction of this instance still in flight.
		await this.#exclusive(async () => this.#db.close());
	}
}

/**
 * A ModelStore in one SQLite database file (WAL mode, so readers never block the writer).
 * Every write is one `BEGIN IMMEDIATE` transaction: concurrent writers from several processes queue on the
 * file lock (busy timeout) and get distinct version numbers. Files are BLOBs stored once per distinct sha256 (versions
 * with byte-identical files share them; a file goes with the last version naming it), verified on every open.
 * Changes older than the retention are pruned as writes go (see {@link ChangeRetention}).
 * @example const store = new SqliteStore(".mlship/registry.db"); const v = await store.register(bundle);
 */
export class SqliteStore extends RegistryCore {
	/** Opens (creating if needed) the database at `path` (`:memory:` for a private in-memory one) and migrates it. */
	constructor(path: string, opts: SqliteStoreOptions = {}) {
		super(new SqliteDriver(path), opts.retention ?? DEFAULT_RETENTION);
	}
}
