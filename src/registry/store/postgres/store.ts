// PostgresStore: the shared ModelStore, one PostgreSQL database used by many servers, with a LISTEN/NOTIFY change feed.
import pg from "pg";
import { Backoff } from "../../../protocol/backoff.ts";
import { MlshipError } from "../../../protocol/errors.ts";
import { redactUrl } from "../../../protocol/redact.ts";
import { pgConnectionUrl } from "../../../protocol/secrets.ts";
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
 * Schema migrations, applied in order; `mlship_schema` has one row per applied migration. Append only, never edit one.
 * `models.last_version` is a per-name counter that survives deletes, so `name@3` never names two different artifacts.
 */
const MIGRATIONS: readonly string[] = [
	`CREATE TABLE models (
		name TEXT PRIMARY KEY,
		last_version INTEGER NOT NULL,
		created_at TIMESTAMPTZ NOT NULL DEFAULT now()
	);
	CREATE TABLE versions (
		name TEXT NOT NULL REFERENCES models (name),
		version INTEGER NOT NULL,
		manifest TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
		metadata JSONB NOT NULL DEFAULT '{}',
		PRIMARY KEY (name, version)
	);
	CREATE TABLE files (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		path TEXT NOT NULL,
		bytes BYTEA NOT NULL,
		sha256 TEXT NOT NULL,
		PRIMARY KEY (name, version, path),
		FOREIGN KEY (name, version) REFERENCES versions (name, version) ON DELETE CASCADE
	);
	CREATE TABLE aliases (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		version INTEGER NOT NULL,
		PRIMARY KEY (name, alias),
		FOREIGN KEY (name, version) REFERENCES versions (name, version) ON DELETE CASCADE
	);
	CREATE INDEX aliases_by_version ON aliases (name, version);
	CREATE TABLE changes (
		seq BIGSERIAL PRIMARY KEY,
		type TEXT NOT NULL,
		name TEXT NOT NULL,
		version INTEGER,
		alias TEXT,
		at TIMESTAMPTZ NOT NULL DEFAULT now()
	);`,
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
		created_at TIMESTAMPTZ NOT NULL,
		created_by TEXT NOT NULL,
		expires_at TIMESTAMPTZ,
		revoked_at TIMESTAMPTZ,
		last_used_at TIMESTAMPTZ
	);
	CREATE TABLE audit_log (
		seq BIGSERIAL PRIMARY KEY,
		at TIMESTAMPTZ NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		target TEXT NOT NULL,
		detail JSONB NOT NULL DEFAULT '{}',
		source TEXT NOT NULL
	);
	CREATE INDEX audit_log_by_at ON audit_log (at);`,
	// Traffic policies on aliases (experiments: split, sticky, shadow, bandit); they go with their alias.
	`CREATE TABLE traffic_policies (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		policy JSONB NOT NULL,
		salt TEXT NOT NULL,
		actor TEXT,
		updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		PRIMARY KEY (name, alias),
		FOREIGN KEY (name, alias) REFERENCES aliases (name, alias) ON DELETE CASCADE
	);`,
	// Drift monitoring: live profiles per window and replica (merged when read). No foreign key: a bundle directory
	// served next to a registry has no version row, and windows outlive deleted versions until the monitor prunes them.
	`CREATE TABLE monitor_windows (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		window_start BIGINT NOT NULL,
		window_seconds INTEGER NOT NULL,
		replica TEXT NOT NULL,
		rows INTEGER NOT NULL,
		profile TEXT NOT NULL,
		PRIMARY KEY (name, version, window_start, replica)
	);
	CREATE INDEX monitor_windows_by_start ON monitor_windows (name, window_start);`,
	// Bandit arms (experiments feedback): totals every replica adds its deltas to; kept when a policy is cleared.
	`CREATE TABLE bandit_arms (
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		version INTEGER NOT NULL,
		pulls BIGINT NOT NULL,
		reward_sum DOUBLE PRECISION NOT NULL,
		PRIMARY KEY (name, alias, version)
	);`,
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
		step_started_at BIGINT NOT NULL,
		next_check_at BIGINT NOT NULL,
		baseline TEXT NOT NULL,
		lease_owner TEXT,
		lease_until BIGINT,
		started_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (name, alias)
	);
	CREATE TABLE rollout_events (
		seq BIGSERIAL PRIMARY KEY,
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		at BIGINT NOT NULL,
		type TEXT NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE INDEX rollout_events_by_alias ON rollout_events (name, alias, seq);
	CREATE TABLE version_stats (
		replica TEXT NOT NULL,
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		requests BIGINT NOT NULL,
		errors BIGINT NOT NULL,
		buckets TEXT NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (replica, name, version)
	);`,
	// What each alias was configured to serve after every change (version and policy, in the change's transaction):
	// the dashboard draws configured weights over time from it (ui3).
	`CREATE TABLE traffic_policy_history (
		seq BIGSERIAL PRIMARY KEY,
		name TEXT NOT NULL,
		alias TEXT NOT NULL,
		at BIGINT NOT NULL,
		version INTEGER,
		policy TEXT,
		actor TEXT NOT NULL
	);
	CREATE INDEX traffic_policy_history_by_at ON traffic_policy_history (at);`,
	// Monitoring per window besides drift (one row per model, version, window start and replica, rewritten as the
	// window fills; merged when read): requests, errors (error, timeout), the latency histogram of answers on the
	// buckets of version_stats, and feedback quality as mergeable sufficient statistics (JSON). Alert claims: the
	// first replica to insert an alert's row sends it. No foreign keys, as monitor_windows.
	`CREATE TABLE monitor_stats (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		window_start BIGINT NOT NULL,
		window_seconds DOUBLE PRECISION NOT NULL,
		replica TEXT NOT NULL,
		requests BIGINT NOT NULL,
		errors BIGINT NOT NULL,
		buckets TEXT NOT NULL,
		quality TEXT,
		PRIMARY KEY (name, version, window_start, replica)
	);
	CREATE INDEX monitor_stats_by_start ON monitor_stats (name, window_start);
	CREATE TABLE monitor_alerts (
		name TEXT NOT NULL,
		version INTEGER NOT NULL,
		subject TEXT NOT NULL,
		window_start BIGINT NOT NULL,
		change TEXT NOT NULL,
		replica TEXT NOT NULL,
		PRIMARY KEY (name, version, subject, window_start, change)
	);`,
	// Each alias's last policy change before a range (the dashboard's weights over time) found by key, not by
	// scanning every alias's history (fixui).
	`CREATE INDEX traffic_policy_history_by_alias ON traffic_policy_history (name, alias, at);`,
	// Content-addressed files (life6): each distinct file once in `blobs` (by sha256), and how many versions' manifests
	// name it in `blob_refs` (apart, so a new reference never rewrites the bytes); the per-version `files` rows move
	// there. A version's files are the ones its manifest names; a file is deleted with the last version naming it.
	// The lock first: an older mlship still running could otherwise commit `files` rows between the copies below
	// and the DROP (its version then has no bytes); it now waits, and its write fails once `files` is gone.
	`LOCK TABLE files IN ACCESS EXCLUSIVE MODE;
	CREATE TABLE blobs (
		sha256 TEXT PRIMARY KEY,
		bytes BYTEA NOT NULL
	);
	CREATE TABLE blob_refs (
		sha256 TEXT PRIMARY KEY,
		refs BIGINT NOT NULL
	);
	INSERT INTO blobs (sha256, bytes) SELECT DISTINCT ON (sha256) sha256, bytes FROM files ORDER BY sha256;
	INSERT INTO blob_refs (sha256, refs) SELECT sha256, count(*) FROM files GROUP BY sha256;
	DROP TABLE files;`,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The migrations, in order (tests build a registry as an older mlship left it). */
export const MIGRATION_SQL: readonly string[] = MIGRATIONS;

/** The NOTIFY channel; the payload is the newest `changes.seq` of the committing transaction. */
export const CHANNEL = "mlship_changes";

/** Advisory lock keys (two-int form, first int 'mlsh'): migrations, and the change-feed append lock. */
const LOCK_SPACE = 0x6d6c7368;
const LOCK_MIGRATE = 1;
const LOCK_CHANGES = 2;

/** Reconnect backoff of the change-feed listener. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2_000;

/** SQLSTATE classes and socket errors that mean "the database is not reachable right now". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P)/;
const UNAVAILABLE_ERRNO = new Set([
	"ECONNREFUSED",
	"ECONNRESET",
	"EPIPE",
	"ETIMEDOUT",
	"EHOSTUNREACH",
	"ENOTFOUND",
]);

/** Options for {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
	/** Most pooled connections for queries (default 10); the change feed uses one more while someone watches. */
	poolSize?: number;
	/** How long the change feed keeps changes (default: 7 days, and at least the newest 10,000). */
	retention?: ChangeRetention;
}

const DIALECT: Dialect = {
	binary: ' COLLATE "C"',
	forUpdate: " FOR UPDATE",
	now: "now()",
};

/** A Buffer view of bytes (no copy), which pg sends as BYTEA. */
function toParam(p: Param): unknown {
	return p instanceof Uint8Array && !Buffer.isBuffer(p)
		? Buffer.from(p.buffer, p.byteOffset, p.byteLength)
		: p;
}

/** The PostgreSQL half of a registry: a pool, advisory locks around the feed, and a LISTEN connection. */
class PostgresDriver implements Driver {
	readonly location: string;
	readonly dialect = DIALECT;
	readonly #url: string;
	readonly #pool: pg.Pool;
	readonly #watchers = new Watchers();
	/** Newest seq this instance knows is committed: read at open, raised by its own writes and by the feed. */
	#cursor = 0;
	#listener: pg.Client | undefined;
	#listening = false;
	#reconnectTimer: NodeJS.Timeout | undefined;
	readonly #backoff = new Backoff({
		minMs: RECONNECT_MIN_MS,
		maxMs: RECONNECT_MAX_MS,
	});
	#pumping: Promise<void> | undefined;
	#pumpAgain = false;
	#feedWarned = false;
	#feedError: string | undefined;
	#closed = false;

	constructor(url: string, opts: PostgresStoreOptions) {
		this.#url = pgConnectionUrl(url);
		this.location = redact(url);
		this.#pool = new pg.Pool({
			connectionString: this.#url,
			max: opts.poolSize ?? 10,
			application_name: "mlship",
		});
		// An idle pooled connection that dies (server restart) is dropped by the pool; without a listener it would crash.
		this.#pool.on("error", () => {});
	}

	/** Applies pending migrations and reads the feed's starting point; ends the pool on failure. */
	async open(): Promise<void> {
		try {
			await this.#migrate();
			const row = await this.#session(this.#pool).one<{ seq: string | null }>(
				"SELECT max(seq) AS seq FROM changes",
			);
			this.#cursor = Number(row?.seq ?? 0);
		} catch (err) {
			await this.#pool.end().catch(() => {});
			const code = (err as { code?: unknown }).code;
			// no such database, or the server refused these credentials: the URI is wrong, not the server down
			if (code === "3D000" || code === "28000" || code === "28P01")
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`cannot open registry ${this.location}: ${(err as Error).message}${code === "3D000" ? " (create it first, e.g. createdb)" : ""}`,
					{ cause: err },
				);
			throw this.#wrap(err);
		}
	}

	async #migrate(): Promise<void> {
		const c = await this.#pool.connect();
		try {
			await c.query("BEGIN");
			try {
				// The lock comes first: concurrent CREATE TABLE IF NOT EXISTS can still collide without it.
				await c.query("SELECT pg_advisory_xact_lock($1, $2)", [
					LOCK_SPACE,
					LOCK_MIGRATE,
				]);
				await c.query(
					"CREATE TABLE IF NOT EXISTS mlship_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
				);
				const have = Number(
					(
						await c.query<{ v: number }>(
							"SELECT coalesce(max(version), 0) AS v FROM mlship_schema",
						)
					).rows[0]?.v ?? 0,
				);
				if (have > SCHEMA_VERSION)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`registry ${this.location} has schema version ${have}, newer than this mlship understands (${SCHEMA_VERSION}); upgrade mlship`,
					);
				for (let v = have; v < SCHEMA_VERSION; v++) {
					await c.query(MIGRATIONS[v] as string);
					await c.query("INSERT INTO mlship_schema (version) VALUES ($1)", [
						v + 1,
					]);
				}
				await c.query("COMMIT");
			} catch (err) {
				await c.query("ROLLBACK").catch(() => {});
				throw err;
			}
		} finally {
			c.release();
		}
	}

	/** Maps "cannot reach the database" to MLSHIP_UNAVAILABLE; MlshipErrors and other errors pass through. */
	#wrap(err: unknown): unknown {
		if (err instanceof MlshipError) return err;
		const code = (err as { code?: unknown }).code;
		const message = (err as Error).message ?? String(err);
		if (
			(typeof code === "string" &&
				(UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) ||
			/Connection terminated|not queryable|connection .*(closed|ended)/i.test(
				message,
			)
		)
			return new MlshipError(
				"MLSHIP_UNAVAILABLE",
				`registry ${this.location} is unavailable: ${message}`,
				{ cause: err },
			);
		return err;
	}

	#session(db: pg.Pool | pg.PoolClient): Session {
		const all = async <R>(sql: string, params: readonly Param[] = []) => {
			try {
				return (await db.query(sql, params.map(toParam))).rows as R[];
			} catch (err) {
				throw this.#wrap(err);
			}
		};
		return {
			all,
			one: async <R>(sql: string, params?: readonly Param[]) =>
				(await all<R>(sql, params))[0],
		};
	}

	read<T>(fn: (s: Session) => Promise<T>): Promise<T> {
		return fn(this.#session(this.#pool));
	}

	async transaction<T>(fn: (tx: Session) => Promise<T>): Promise<T> {
		let c: pg.PoolClient;
		try {
			c = await this.#pool.connect();
		} catch (err) {
			throw this.#wrap(err);
		}
		let broken: unknown;
		// A checked-out connection that dies between queries emits 'error'; unheard, that would crash the process.
		const onError = (err: Error) => {
			broken = err;
		};
		c.on("error", onError);
		const tx = this.#session(c);
		try {
			await tx.all("BEGIN");
			try {
				const result = await fn(tx);
				await tx.all("COMMIT");
				return result;
			} catch (err) {
				await c.query("ROLLBACK").catch((e: unknown) => {
					broken = e;
				});
				throw err;
			}
		} finally {
			// A connection that failed mid-transaction is not put back into the pool.
			c.off("error", onError);
			c.release(broken instanceof Error ? broken : undefined);
		}
	}

	async beforeAppend(tx: Session): Promise<void> {
		// Held until COMMIT: nobody else gets a seq before this transaction is visible, so seq order = commit order.
		await tx.all("SELECT pg_advisory_xact_lock($1, $2)", [
			LOCK_SPACE,
			LOCK_CHANGES,
		]);
	}

	async afterAppend(tx: Session, newest: number): Promise<void> {
		await tx.all("SELECT pg_notify($1, $2)", [CHANNEL, String(newest)]);
	}

	/** This instance's watchers have been handed the write's changes when this settles. */
	async committed(newest: number): Promise<void> {
		if (newest > this.#cursor && this.#watchers.size === 0)
			this.#cursor = newest;
		await this.#pump();
	}

	/** Available while the change feed is connected (or nothing watches); else the last connection error. */
	health(): { available: boolean; reason?: string } {
		if (this.#closed) return { available: false, reason: "closed" };
		if (this.#watchers.size === 0 || this.#listening)
			return { available: true };
		return {
			available: false,
			reason: this.#feedError ?? "change feed not connected",
		};
	}

	watch(onChange: (e: ChangeEvent) => void): () => void {
		const remove = this.#watchers.add(onChange);
		// The feed starts from the newest change this instance knows of (read at open, its own writes, or the feed
		// itself), so nothing committed after this call is missed.
		if (!this.#listener && !this.#reconnectTimer) void this.#listen();
		return () => {
			if (!remove()) this.#stopListening();
		};
	}

	/** Connects the dedicated LISTEN connection, then catches up; on loss, reconnects with backoff. */
	async #listen(): Promise<void> {
		this.#reconnectTimer = undefined;
		if (this.#closed || this.#watchers.size === 0) return;
		const client = new pg.Client({
			connectionString: this.#url,
			application_name: "mlship-feed",
		});
		this.#listener = client;
		const lost = (err?: Error) => {
			if (this.#listener !== client) return;
			this.#listener = undefined;
			this.#listening = false;
			client.removeAllListeners("notification");
			client.end().catch(() => {});
			this.#feedError = `connection lost: ${err?.message ?? "closed"}`;
			this.#warnFeed(
				`lost its connection (${err?.message ?? "closed"}); reconnecting`,
			);
			this.#scheduleReconnect();
		};
		client.on("error", lost);
		client.on("end", () => lost());
		client.on("notification", (n) => {
			if (n.channel === CHANNEL) void this.#pump();
		});
		try {
			await client.connect();
			await client.query(`LISTEN ${CHANNEL}`);
		} catch (err) {
			lost(err as Error);
			return;
		}
		if (this.#listener !== client) {
			// stopped (or lost) while connecting
			client.end().catch(() => {});
			return;
		}
		this.#listening = true;
		this.#feedError = undefined;
		if (this.#feedWarned) {
			this.#feedWarned = false;
			process.emitWarning(
				`mlship registry ${this.location}: change feed reconnected`,
			);
		}
		this.#backoff.reset();
		// Whatever was committed while we were not listening.
		await this.#pump();
	}

	#scheduleReconnect(): void {
		if (this.#closed || this.#watchers.size === 0 || this.#reconnectTimer)
			return;
		const delay = this.#backoff.next(); // jittered: replicas that lose the database together reconnect apart
		this.#reconnectTimer = setTimeout(() => void this.#listen(), delay);
	}

	#warnFeed(what: string): void {
		if (this.#feedWarned) return;
		this.#feedWarned = true;
		process.emitWarning(
			`mlship registry ${this.location}: change feed ${what}`,
		);
	}

	#stopListening(): void {
		if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
		this.#reconnectTimer = undefined;
		const client = this.#listener;
		this.#listener = undefined;
		this.#listening = false;
		if (client) {
			client.removeAllListeners("notification");
			client.end().catch(() => {});
		}
	}

	/**
	 * Delivers every change after the cursor, in seq order. One read at a time; a request while one runs (a
	 * notification, a write by a watcher) makes it read again, and the returned promise covers that re-read.
	 */
	#pump(): Promise<void> {
		if (this.#closed || this.#watchers.size === 0 || !this.#listening)
			return Promise.resolve();
		if (this.#pumping) {
			this.#pumpAgain = true;
			return this.#pumping;
		}
		this.#pumping = (async () => {
			try {
				do {
					this.#pumpAgain = false;
					await this.#deliverNew();
				} while (this.#pumpAgain && !this.#closed && this.#watchers.size > 0);
			} finally {
				this.#pumping = undefined;
			}
		})();
		return this.#pumping;
	}

	async #deliverNew(): Promise<void> {
		let rows: ChangeRow[];
		try {
			rows = (
				await this.#pool.query<ChangeRow & pg.QueryResultRow>(
					"SELECT * FROM changes WHERE seq > $1 ORDER BY seq",
					[this.#cursor],
				)
			).rows;
		} catch (err) {
			// The listener notices a lost server too, and catches up when it is back.
			this.#warnFeed(`could not read changes: ${(err as Error).message}`);
			return;
		}
		for (const row of rows) {
			const e = toChangeEvent(row);
			if (e.seq <= this.#cursor) continue;
			this.#cursor = e.seq;
			this.#watchers.deliver(e);
		}
	}

	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		this.#watchers.clear();
		this.#stopListening();
		await this.#pumping?.catch(() => {});
		await this.#pool.end();
	}
}

/**
 * A ModelStore in one PostgreSQL database, shared by any number of processes.
 * Writes are transactions; registration locks the model's row (`INSERT … ON CONFLICT DO UPDATE`), so concurrent
 * registrations of one name get distinct, contiguous versions. Files are BYTEA rows stored once per distinct sha256 (versions
 * with byte-identical files share them) and verified by sha256 on every open. Every write appends to `changes` under a transaction-scoped advisory lock — so `seq` order is commit order and
 * a reader that has seen seq N has seen everything before it — and sends `NOTIFY mlship_changes` in the same
 * transaction. Watchers LISTEN on a dedicated connection and read `changes` after their cursor, so coalesced or
 * missed notifications (a dropped connection) lose nothing: on reconnect the feed catches up from the last seq.
 * Changes older than the retention are pruned as writes go (see {@link ChangeRetention}).
 * @example const store = await PostgresStore.open("postgres://mlship@db/registry"); const v = await store.register(bundle);
 */
export class PostgresStore extends RegistryCore {
	/**
	 * Connects to the database at `url` (`postgres://` or `postgresql://`), applies pending migrations and returns the store.
	 * Two processes opening a fresh database at once is safe: migrations run under an advisory lock.
	 */
	static async open(
		url: string,
		opts: PostgresStoreOptions = {},
	): Promise<PostgresStore> {
		let driver: PostgresDriver;
		try {
			new URL(url); // pg would only notice a malformed URL on first connect
			driver = new PostgresDriver(url, opts);
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`cannot open registry ${redact(url)}: ${(err as Error).message}`,
				{ cause: err },
			);
		}
		await driver.open();
		return new PostgresStore(driver, opts.retention ?? DEFAULT_RETENTION);
	}
}

const redact = redactUrl;
