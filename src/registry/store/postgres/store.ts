// PostgresStore: the shared ModelStore, one PostgreSQL database used by many servers, with a LISTEN/NOTIFY change feed.
import pg from "pg";
import { type Bundle, bundleFromParts } from "../../../bundle/bundle.ts";
import { Backoff } from "../../../protocol/backoff.ts";
import { MlshipError } from "../../../protocol/errors.ts";
import {
	assertAlias,
	assertName,
	assertVersion,
	type ChangeEvent,
	checkMetadata,
	type EntityVersion,
	type ListFilter,
	type ModelRef,
	type ModelStore,
	type ModelVersion,
	parseRef,
	type RegisterOptions,
} from "../../types.ts";
import {
	type PreparedRegistration,
	prepareRegistration,
	toModelVersion,
} from "../common.ts";
import * as errors from "../errors.ts";

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
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

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
}

interface VersionRow {
	name: string;
	version: number;
	manifest: string;
	sha256: string;
	created_at: Date;
	status: "active" | "archived";
	metadata: Record<string, unknown>;
	entity: string | null;
}

interface ChangeRow {
	seq: string;
	type: ChangeEvent["type"];
	name: string;
	version: number | null;
	alias: string | null;
	entity: string | null;
	at: Date;
}

/** A change to record in the current transaction (`entity` defaults to the version's, read at commit). */
interface PendingChange {
	type: ChangeEvent["type"];
	name: string;
	version?: number;
	alias?: string;
	entity?: string | null;
}

interface Watcher {
	fn: (e: ChangeEvent) => void;
}

type Queryable = pg.Pool | pg.PoolClient;

/**
 * A ModelStore in one PostgreSQL database, shared by any number of processes.
 * Writes are transactions; registration locks the model's row (`INSERT … ON CONFLICT DO UPDATE`), so concurrent
 * registrations of one name get distinct, contiguous versions. Artifacts are BYTEA rows, verified by sha256 on every
 * open. Every write appends to `changes` under a transaction-scoped advisory lock — so `seq` order is commit order and
 * a reader that has seen seq N has seen everything before it — and sends `NOTIFY mlship_changes` in the same
 * transaction. Watchers LISTEN on a dedicated connection and read `changes` after their cursor, so coalesced or
 * missed notifications (a dropped connection) lose nothing: on reconnect the feed catches up from the last seq.
 * @example const store = await PostgresStore.open("postgres://mlship@db/registry"); const v = await store.register(bundle);
 */
export class PostgresStore implements ModelStore {
	/** The URL with any password hidden, for messages. */
	readonly location: string;
	readonly #url: string;
	readonly #pool: pg.Pool;
	readonly #watchers = new Set<Watcher>();
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

	private constructor(url: string, opts: PostgresStoreOptions) {
		this.#url = url;
		this.location = redact(url);
		this.#pool = new pg.Pool({
			connectionString: url,
			max: opts.poolSize ?? 10,
			application_name: "mlship",
		});
		// An idle pooled connection that dies (server restart) is dropped by the pool; without a listener it would crash.
		this.#pool.on("error", () => {});
	}

	/**
	 * Connects to the database at `url` (`postgres://` or `postgresql://`), applies pending migrations and returns the store.
	 * Two processes opening a fresh database at once is safe: migrations run under an advisory lock.
	 */
	static async open(
		url: string,
		opts: PostgresStoreOptions = {},
	): Promise<PostgresStore> {
		let store: PostgresStore;
		try {
			new URL(url); // pg would only notice a malformed URL on first connect
			store = new PostgresStore(url, opts);
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`cannot open registry ${redact(url)}: ${(err as Error).message}`,
				{ cause: err },
			);
		}
		try {
			await store.#migrate();
			const row = await store.#one<{ seq: string | null }>(
				store.#pool,
				"SELECT max(seq) AS seq FROM changes",
			);
			store.#cursor = Number(row?.seq ?? 0);
		} catch (err) {
			await store.#pool.end().catch(() => {});
			const code = (err as { code?: unknown }).code;
			// no such database, or the server refused these credentials: the URI is wrong, not the server down
			if (code === "3D000" || code === "28000" || code === "28P01")
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`cannot open registry ${store.location}: ${(err as Error).message}${code === "3D000" ? " (create it first, e.g. createdb)" : ""}`,
					{ cause: err },
				);
			throw store.#wrap(err);
		}
		return store;
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

	async #all<R extends pg.QueryResultRow>(
		db: Queryable,
		sql: string,
		params: unknown[] = [],
	): Promise<R[]> {
		try {
			return (await db.query<R>(sql, params)).rows;
		} catch (err) {
			throw this.#wrap(err);
		}
	}

	async #one<R extends pg.QueryResultRow>(
		db: Queryable,
		sql: string,
		params: unknown[] = [],
	): Promise<R | undefined> {
		return (await this.#all<R>(db, sql, params))[0];
	}

	/**
	 * Runs `fn` in one transaction; the changes it records are appended to the feed (in commit order) and announced
	 * with NOTIFY before COMMIT. This instance's watchers have been handed them when the returned promise settles.
	 */
	async #tx<T>(
		fn: (c: pg.PoolClient, change: (e: PendingChange) => void) => Promise<T>,
	): Promise<T> {
		let c: pg.PoolClient;
		try {
			c = await this.#pool.connect();
		} catch (err) {
			throw this.#wrap(err);
		}
		let newest = 0;
		let result: T;
		let broken: unknown;
		// A checked-out connection that dies between queries emits 'error'; unheard, that would crash the process.
		const onError = (err: Error) => {
			broken = err;
		};
		c.on("error", onError);
		try {
			await this.#all(c, "BEGIN");
			try {
				const pending: PendingChange[] = [];
				result = await fn(c, (e) => pending.push(e));
				if (pending.length > 0) newest = await this.#appendChanges(c, pending);
				await this.#all(c, "COMMIT");
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
		if (newest > this.#cursor && this.#watchers.size === 0)
			this.#cursor = newest;
		await this.#pump();
		return result;
	}

	/** Appends `pending` to `changes` and NOTIFYs; returns the newest seq. Must be the last step of a write. */
	async #appendChanges(
		c: pg.PoolClient,
		pending: PendingChange[],
	): Promise<number> {
		// Held until COMMIT: nobody else gets a seq before this transaction is visible, so seq order = commit order.
		await this.#all(c, "SELECT pg_advisory_xact_lock($1, $2)", [
			LOCK_SPACE,
			LOCK_CHANGES,
		]);
		let newest = 0;
		// One row at a time: the seq order within a transaction is then exactly the order of the changes.
		for (const e of pending) {
			const row = await this.#one<{ seq: string }>(
				c,
				`INSERT INTO changes (type, name, version, alias, entity) VALUES ($1, $2, $3, $4,
				   coalesce($5, (SELECT entity FROM versions WHERE name = $2 AND version = $3))) RETURNING seq`,
				[e.type, e.name, e.version ?? null, e.alias ?? null, e.entity ?? null],
			);
			newest = Number(row?.seq);
		}
		await this.#all(c, "SELECT pg_notify($1, $2)", [CHANNEL, String(newest)]);
		return newest;
	}

	#checkOpen(): void {
		if (this.#closed)
			throw new MlshipError(
				"MLSHIP_CLOSED",
				`registry ${this.location} is closed`,
			);
	}

	/** Not registered, with the nearest registered name when one is near (a typo). */
	async #notRegistered(db: Queryable, name: string): Promise<MlshipError> {
		const known = await this.#all<{ name: string }>(
			db,
			"SELECT name FROM models ORDER BY name LIMIT 10000",
		);
		return errors.notRegistered(
			name,
			this.location,
			known.map((r) => r.name),
		);
	}

	async #exists(db: Queryable, name: string): Promise<boolean> {
		return (
			(await this.#one(db, "SELECT 1 FROM versions WHERE name = $1 LIMIT 1", [
				name,
			])) !== undefined
		);
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

	/** The version row (locked FOR UPDATE when `lock`), or MLSHIP_MODEL_NOT_FOUND naming the versions that do exist. */
	async #versionRow(
		db: Queryable,
		name: string,
		version: number,
		lock = false,
	): Promise<VersionRow> {
		const row = await this.#one<VersionRow>(
			db,
			`SELECT * FROM versions WHERE name = $1 AND version = $2${lock ? " FOR UPDATE" : ""}`,
			[name, version],
		);
		if (row) return row;
		const have = await this.#all<{ version: number }>(
			db,
			"SELECT version FROM versions WHERE name = $1 ORDER BY version",
			[name],
		);
		if (have.length === 0) throw await this.#notRegistered(db, name);
		throw errors.noVersion(
			name,
			version,
			have.map((r) => r.version),
		);
	}

	async #aliasesOf(
		db: Queryable,
		name: string,
		version: number,
	): Promise<string[]> {
		return (
			await this.#all<{ alias: string }>(
				db,
				'SELECT alias FROM aliases WHERE name = $1 AND version = $2 ORDER BY alias COLLATE "C"',
				[name, version],
			)
		).map((r) => r.alias);
	}

	async #fullVersion(
		db: Queryable,
		name: string,
		version: number,
	): Promise<ModelVersion> {
		return toVersion(
			await this.#versionRow(db, name, version),
			await this.#aliasesOf(db, name, version),
		);
	}

	async register(
		bundle: Bundle,
		opts: RegisterOptions = {},
	): Promise<ModelVersion> {
		return (await this.registerMany([{ bundle, opts }]))[0] as ModelVersion;
	}

	async registerMany(
		items: readonly { bundle: Bundle; opts?: RegisterOptions }[],
	): Promise<ModelVersion[]> {
		this.#checkOpen();
		const prepared = items.map((i) => prepareRegistration(i.bundle, i.opts));
		return this.#tx(async (c, change) => {
			const out: ModelVersion[] = [];
			for (const p of prepared) out.push(await this.#insert(c, change, p));
			return out;
		});
	}

	/** Writes one prepared registration inside the caller's transaction. */
	async #insert(
		c: pg.PoolClient,
		change: (e: PendingChange) => void,
		p: PreparedRegistration,
	): Promise<ModelVersion> {
		const { name, aliases, metadata, manifest, files, entity } = p;
		// Inserting or bumping the model row locks it until COMMIT: registrations of one name queue here.
		const counter = await this.#one<{ last_version: number }>(
			c,
			`INSERT INTO models (name, last_version) VALUES ($1, 1)
			 ON CONFLICT (name) DO UPDATE SET last_version = models.last_version + 1
			 RETURNING last_version`,
			[name],
		);
		const version = counter?.last_version as number;
		const row = await this.#one<VersionRow>(
			c,
			"INSERT INTO versions (name, version, manifest, sha256, metadata, entity) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
			[
				name,
				version,
				JSON.stringify(manifest),
				manifest.artifact.sha256,
				JSON.stringify(metadata),
				entity,
			],
		);
		for (const f of files)
			await this.#all(
				c,
				"INSERT INTO files (name, version, path, bytes, sha256) VALUES ($1, $2, $3, $4, $5)",
				[name, version, f.path, toBuffer(f.bytes), f.sha256],
			);
		change({ type: "registered", name, version, entity });
		for (const a of aliases) {
			await this.#upsertAlias(c, name, a, version);
			change({ type: "alias_set", name, version, alias: a, entity });
		}
		return toVersion(row as VersionRow, [...aliases].sort());
	}

	async #upsertAlias(
		c: pg.PoolClient,
		name: string,
		alias: string,
		version: number,
	): Promise<void> {
		await this.#all(
			c,
			"INSERT INTO aliases (name, alias, version) VALUES ($1, $2, $3) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
			[name, alias, version],
		);
	}

	async get(ref: string | ModelRef): Promise<ModelVersion> {
		this.#checkOpen();
		const r = parseRef(ref);
		const db = this.#pool;
		let version = r.version;
		if (r.alias !== undefined) {
			const row = await this.#one<{ version: number }>(
				db,
				"SELECT version FROM aliases WHERE name = $1 AND alias = $2",
				[r.name, r.alias],
			);
			if (!row) {
				const have = await this.#all<{ alias: string }>(
					db,
					'SELECT alias FROM aliases WHERE name = $1 ORDER BY alias COLLATE "C"',
					[r.name],
				);
				if (have.length === 0 && !(await this.#exists(db, r.name)))
					throw await this.#notRegistered(db, r.name);
				throw errors.noAlias(
					r.name,
					r.alias,
					have.map((a) => a.alias),
				);
			}
			version = row.version;
		}
		if (version === undefined) {
			const row = await this.#one<VersionRow>(
				db,
				"SELECT * FROM versions WHERE name = $1 AND entity IS NOT DISTINCT FROM $2 AND status = 'active' ORDER BY version DESC LIMIT 1",
				[r.name, r.entity ?? null],
			);
			if (row)
				return toVersion(row, await this.#aliasesOf(db, row.name, row.version));
			if (!(await this.#exists(db, r.name)))
				throw await this.#notRegistered(db, r.name);
			if (r.entity !== undefined) throw errors.noEntity(r.name, r.entity);
			if (
				await this.#one(
					db,
					"SELECT 1 FROM versions WHERE name = $1 AND entity IS NULL LIMIT 1",
					[r.name],
				)
			)
				throw errors.allArchived(r.name);
			throw errors.onlyEntities(r.name);
		}
		return this.#fullVersion(db, r.name, version);
	}

	async list(filter: ListFilter = {}): Promise<ModelVersion[]> {
		this.#checkOpen();
		const name = filter.name ?? null;
		const rows = await this.#all<VersionRow & { aliases: string[] }>(
			this.#pool,
			`SELECT v.*, coalesce(
			   (SELECT array_agg(a.alias ORDER BY a.alias COLLATE "C") FROM aliases a WHERE a.name = v.name AND a.version = v.version),
			   '{}') AS aliases
			 FROM versions v
			 WHERE ($1::text IS NULL OR v.name = $1) AND ($2 OR v.status = 'active')
			   AND ($3::text IS NULL OR v.entity = $3)
			 ORDER BY v.name COLLATE "C", v.version`,
			[name, filter.includeArchived === true, filter.entity ?? null],
		);
		return rows.map((row) => toVersion(row, row.aliases));
	}

	async entities(name: string): Promise<EntityVersion[]> {
		this.#checkOpen();
		assertName(name);
		return this.#all<EntityVersion>(
			this.#pool,
			`SELECT entity, max(version) AS version FROM versions
			 WHERE name = $1 AND entity IS NOT NULL AND status = 'active'
			 GROUP BY entity ORDER BY entity COLLATE "C"`,
			[name],
		);
	}

	async setAlias(name: string, alias: string, version: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		assertVersion(version);
		await this.#tx(async (c, change) => {
			// Locking the target row keeps a concurrent archive or delete from slipping in between check and write.
			const row = await this.#versionRow(c, name, version, true);
			if (row.status === "archived")
				throw errors.aliasToArchived(name, alias, version);
			const current = await this.#one<{ version: number }>(
				c,
				"SELECT version FROM aliases WHERE name = $1 AND alias = $2",
				[name, alias],
			);
			if (current?.version === version) return;
			await this.#upsertAlias(c, name, alias, version);
			change({ type: "alias_set", name, version, alias });
		});
	}

	async deleteAlias(name: string, alias: string): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		await this.#tx(async (c, change) => {
			const current = await this.#one<{ version: number }>(
				c,
				"DELETE FROM aliases WHERE name = $1 AND alias = $2 RETURNING version",
				[name, alias],
			);
			if (!current) {
				if (!(await this.#exists(c, name)))
					throw await this.#notRegistered(c, name);
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${name}' has no alias '${alias}'`,
				);
			}
			change({
				type: "alias_deleted",
				name,
				version: current.version,
				alias,
			});
		});
	}

	async setMetadata(
		name: string,
		version: number,
		metadata: Record<string, unknown>,
	): Promise<ModelVersion> {
		this.#checkOpen();
		assertName(name);
		assertVersion(version);
		checkMetadata(metadata);
		const set: Record<string, unknown> = {};
		const remove: string[] = [];
		for (const [k, v] of Object.entries(metadata)) {
			if (v === null) remove.push(k);
			else set[k] = v;
		}
		return this.#tx(async (c, change) => {
			await this.#versionRow(c, name, version, true);
			// Merged in SQL under the row lock, so concurrent updates of different keys all survive.
			await this.#all(
				c,
				"UPDATE versions SET metadata = (metadata || $3::jsonb) - $4::text[] WHERE name = $1 AND version = $2",
				[name, version, JSON.stringify(set), remove],
			);
			change({ type: "metadata", name, version });
			return this.#fullVersion(c, name, version);
		});
	}

	async archive(name: string, version: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertVersion(version);
		await this.#tx(async (c, change) => {
			const row = await this.#versionRow(c, name, version, true);
			if (row.status === "archived") return;
			const aliases = await this.#aliasesOf(c, name, version);
			if (aliases.length > 0)
				throw errors.archiveAliased(name, version, aliases);
			await this.#all(
				c,
				"UPDATE versions SET status = 'archived' WHERE name = $1 AND version = $2",
				[name, version],
			);
			change({ type: "archived", name, version });
		});
	}

	async delete(name: string, version?: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		if (version !== undefined) assertVersion(version);
		await this.#tx(async (c, change) => {
			if (version === undefined) {
				// Lock the name's counter row: a registration of this name waits for (and then follows) the delete.
				await this.#all(c, "SELECT 1 FROM models WHERE name = $1 FOR UPDATE", [
					name,
				]);
				if (!(await this.#exists(c, name)))
					throw await this.#notRegistered(c, name);
				// files and aliases go with their versions (ON DELETE CASCADE)
				await this.#all(c, "DELETE FROM versions WHERE name = $1", [name]);
				change({ type: "deleted", name });
				return;
			}
			const { entity } = await this.#versionRow(c, name, version, true);
			const aliases = await this.#all<{ alias: string }>(
				c,
				"DELETE FROM aliases WHERE name = $1 AND version = $2 RETURNING alias",
				[name, version],
			);
			await this.#all(
				c,
				"DELETE FROM versions WHERE name = $1 AND version = $2",
				[name, version],
			);
			for (const a of aliases
				.map((r) => r.alias)
				.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)))
				change({ type: "alias_deleted", name, version, alias: a, entity });
			change({ type: "deleted", name, version, entity });
		});
	}

	async openBundle(v: ModelVersion | string): Promise<Bundle> {
		this.#checkOpen();
		const { name, version } = typeof v === "string" ? await this.get(v) : v;
		const source = `registry:${name}@${version}`;
		// One statement is one snapshot: a concurrent delete cannot leave us with the manifest but not the files.
		const rows = await this.#all<{
			manifest: string;
			sha256: string;
			path: string | null;
			bytes: Buffer | null;
		}>(
			this.#pool,
			`SELECT v.manifest, v.sha256, f.path, f.bytes
			 FROM versions v LEFT JOIN files f ON f.name = v.name AND f.version = v.version
			 WHERE v.name = $1 AND v.version = $2`,
			[name, version],
		);
		const first = rows[0];
		if (!first) {
			await this.#versionRow(this.#pool, name, version); // throws the right not-found error
			throw await this.#notRegistered(this.#pool, name);
		}
		const files = new Map<string, Uint8Array>();
		for (const r of rows)
			if (r.path !== null && r.bytes !== null)
				files.set(
					r.path,
					new Uint8Array(r.bytes.buffer, r.bytes.byteOffset, r.bytes.length),
				);
		const bundle = bundleFromParts(first.manifest, files, source);
		if (bundle.manifest.artifact.sha256 !== first.sha256)
			throw errors.storedDigestMismatch(
				source,
				bundle.manifest.artifact.sha256,
				first.sha256,
			);
		return bundle;
	}

	watch(onChange: (e: ChangeEvent) => void): () => void {
		this.#checkOpen();
		const w: Watcher = { fn: onChange };
		this.#watchers.add(w);
		// The feed starts from the newest change this instance knows of (read at open, its own writes, or the feed
		// itself), so nothing committed after this call is missed.
		if (!this.#listener && !this.#reconnectTimer) void this.#listen();
		return () => {
			this.#watchers.delete(w);
			if (this.#watchers.size === 0) this.#stopListening();
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
				await this.#pool.query<ChangeRow>(
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
			const seq = Number(row.seq);
			if (seq <= this.#cursor) continue;
			this.#cursor = seq;
			const e: ChangeEvent = {
				seq,
				type: row.type,
				name: row.name,
				at: row.at.toISOString(),
			};
			if (row.version !== null) e.version = row.version;
			if (row.alias !== null) e.alias = row.alias;
			if (row.entity !== null) e.entity = row.entity;
			for (const w of [...this.#watchers]) {
				try {
					w.fn(e);
				} catch (err) {
					process.emitWarning(
						`mlship registry watcher threw: ${(err as Error).message}`,
					);
				}
			}
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

function toVersion(row: VersionRow, aliases: string[]): ModelVersion {
	return toModelVersion(
		{ ...row, created_at: row.created_at.toISOString() },
		aliases,
	);
}

/** A Buffer view of bytes (no copy), which pg sends as BYTEA. */
function toBuffer(bytes: Uint8Array): Buffer {
	return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The URL with its password replaced by `***`. */
function redact(url: string): string {
	try {
		const u = new URL(url);
		if (u.password) u.password = "***";
		return u.toString();
	} catch {
		return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
	}
}
