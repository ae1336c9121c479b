// SqliteStore: the embedded ModelStore, one SQLite file (node:sqlite) shared safely by several processes.
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { type Bundle, bundleFromParts } from "../../../bundle/bundle.ts";
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
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** How often other processes' changes are looked for while someone watches. */
const POLL_MS = 200;
/** How long a writer waits for another process's write lock before failing. */
const BUSY_TIMEOUT_MS = 10_000;

interface VersionRow {
	name: string;
	version: number;
	manifest: string;
	sha256: string;
	created_at: string;
	status: "active" | "archived";
	metadata: string;
	entity: string | null;
}

interface ChangeRow {
	seq: number;
	type: ChangeEvent["type"];
	name: string;
	version: number | null;
	alias: string | null;
	entity: string | null;
	at: string;
}

interface Watcher {
	fn: (e: ChangeEvent) => void;
}

/**
 * A ModelStore in one SQLite database file (WAL mode, so readers never block the writer).
 * Every write is one `BEGIN IMMEDIATE` transaction: concurrent writers from several processes queue on the
 * file lock (busy timeout) and get distinct version numbers. Artifacts are stored as BLOBs per version; the
 * same bytes registered twice are stored twice (simple, and deleting one version never touches another).
 * @example const store = new SqliteStore(".mlship/registry.db"); const v = await store.register(bundle);
 */
export class SqliteStore implements ModelStore {
	/** `sqlite:PATH`, for messages. */
	readonly location: string;
	readonly #db: DatabaseSync;
	readonly #watchers = new Set<Watcher>();
	#cursor = 0;
	#timer: NodeJS.Timeout | undefined;
	#pumping = false;
	#pumpAgain = false;
	#closed = false;

	/** Opens (creating if needed) the database at `path` (`:memory:` for a private in-memory one) and migrates it. */
	constructor(path: string) {
		this.location = `sqlite:${path}`;
		try {
			this.#db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`cannot open registry ${this.location}: ${(err as Error).message}`,
				{
					cause: err,
				},
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
		this.#tx(() => {
			for (let v = this.#userVersion(); v < SCHEMA_VERSION; v++) {
				this.#db.exec(MIGRATIONS[v] as string);
				this.#db.exec(`PRAGMA user_version = ${v + 1}`);
			}
		});
	}

	#userVersion(): number {
		return (
			this.#db.prepare("PRAGMA user_version").get() as { user_version: number }
		).user_version;
	}

	/** Runs `fn` in one write transaction (taking the write lock up front) and delivers its events after commit. */
	#tx<T>(fn: () => T): T {
		this.#db.exec("BEGIN IMMEDIATE");
		let result: T;
		try {
			result = fn();
			this.#db.exec("COMMIT");
		} catch (err) {
			if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
			throw err;
		}
		this.#pump();
		return result;
	}

	#all<R>(sql: string, ...params: SQLInputValue[]): R[] {
		return this.#db.prepare(sql).all(...params) as R[];
	}

	#one<R>(sql: string, ...params: SQLInputValue[]): R | undefined {
		return this.#db.prepare(sql).get(...params) as R | undefined;
	}

	#run(sql: string, ...params: SQLInputValue[]): number {
		return Number(this.#db.prepare(sql).run(...params).changes);
	}

	#change(
		type: ChangeEvent["type"],
		name: string,
		at: string,
		version?: number,
		alias?: string,
		known?: string | null,
	): void {
		// The entity rides along, so watchers of a family never have to look a version up.
		const entity =
			known !== undefined || version === undefined
				? (known ?? null)
				: (this.#one<{ entity: string | null }>(
						"SELECT entity FROM versions WHERE name = ? AND version = ?",
						name,
						version,
					)?.entity ?? null);
		this.#run(
			"INSERT INTO changes (type, name, version, alias, entity, at) VALUES (?, ?, ?, ?, ?, ?)",
			type,
			name,
			version ?? null,
			alias ?? null,
			entity,
			at,
		);
	}

	#checkOpen(): void {
		if (this.#closed)
			throw new MlshipError(
				"MLSHIP_CLOSED",
				`registry ${this.location} is closed`,
			);
	}

	/** Not registered, with the nearest registered name when one is near (a typo). */
	#notRegistered(name: string): MlshipError {
		const known = this.#db
			.prepare("SELECT name FROM models ORDER BY name LIMIT 10000")
			.all() as { name: string }[];
		return errors.notRegistered(
			name,
			this.location,
			known.map((r) => r.name),
		);
	}

	/** A local file: available while open. */
	health(): { available: boolean; reason?: string } {
		return this.#closed
			? { available: false, reason: "closed" }
			: { available: true };
	}

	/** The version row, or MLSHIP_MODEL_NOT_FOUND naming the versions that do exist. */
	#versionRow(name: string, version: number): VersionRow {
		const row = this.#one<VersionRow>(
			"SELECT * FROM versions WHERE name = ? AND version = ?",
			name,
			version,
		);
		if (row) return row;
		const have = this.#all<{ version: number }>(
			"SELECT version FROM versions WHERE name = ? ORDER BY version",
			name,
		);
		if (have.length === 0) throw this.#notRegistered(name);
		throw errors.noVersion(
			name,
			version,
			have.map((r) => r.version),
		);
	}

	#aliasesOf(name: string, version: number): string[] {
		return this.#all<{ alias: string }>(
			"SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias",
			name,
			version,
		).map((r) => r.alias);
	}

	#toVersion(row: VersionRow, aliases: string[]): ModelVersion {
		return toModelVersion(
			{ ...row, metadata: JSON.parse(row.metadata) as Record<string, unknown> },
			aliases,
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
		const at = new Date().toISOString();
		const keys = this.#tx(() => prepared.map((p) => this.#insert(p, at)));
		return keys.map(([name, version]) =>
			this.#toVersion(
				this.#versionRow(name, version),
				this.#aliasesOf(name, version),
			),
		);
	}

	/** Writes one prepared registration inside the caller's transaction; returns its name and version. */
	#insert(p: PreparedRegistration, at: string): [string, number] {
		const { name, aliases, metadata, manifest, files, entity } = p;
		const last = this.#one<{ last_version: number }>(
			"SELECT last_version FROM models WHERE name = ?",
			name,
		);
		const version = (last?.last_version ?? 0) + 1;
		if (last)
			this.#run(
				"UPDATE models SET last_version = ? WHERE name = ?",
				version,
				name,
			);
		else
			this.#run(
				"INSERT INTO models (name, last_version, created_at) VALUES (?, ?, ?)",
				name,
				version,
				at,
			);
		this.#run(
			"INSERT INTO versions (name, version, manifest, sha256, created_at, status, metadata, entity) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
			name,
			version,
			JSON.stringify(manifest),
			manifest.artifact.sha256,
			at,
			JSON.stringify(metadata),
			entity,
		);
		for (const f of files)
			this.#run(
				"INSERT INTO files (name, version, path, bytes, sha256) VALUES (?, ?, ?, ?, ?)",
				name,
				version,
				f.path,
				f.bytes,
				f.sha256,
			);
		this.#change("registered", name, at, version, undefined, entity);
		for (const a of aliases) {
			this.#upsertAlias(name, a, version);
			this.#change("alias_set", name, at, version, a, entity);
		}
		return [name, version];
	}

	#upsertAlias(name: string, alias: string, version: number): void {
		this.#run(
			"INSERT INTO aliases (name, alias, version) VALUES (?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
			name,
			alias,
			version,
		);
	}

	async get(ref: string | ModelRef): Promise<ModelVersion> {
		this.#checkOpen();
		const r = parseRef(ref);
		let version = r.version;
		if (r.alias !== undefined) {
			const row = this.#one<{ version: number }>(
				"SELECT version FROM aliases WHERE name = ? AND alias = ?",
				r.name,
				r.alias,
			);
			if (!row) {
				const have = this.#all<{ alias: string }>(
					"SELECT alias FROM aliases WHERE name = ? ORDER BY alias",
					r.name,
				);
				if (
					have.length === 0 &&
					!this.#one("SELECT 1 FROM versions WHERE name = ?", r.name)
				)
					throw this.#notRegistered(r.name);
				throw errors.noAlias(
					r.name,
					r.alias,
					have.map((a) => a.alias),
				);
			}
			version = row.version;
		}
		if (version === undefined) {
			const row = this.#one<VersionRow>(
				"SELECT * FROM versions WHERE name = ? AND entity IS ? AND status = 'active' ORDER BY version DESC LIMIT 1",
				r.name,
				r.entity ?? null,
			);
			if (row)
				return this.#toVersion(row, this.#aliasesOf(row.name, row.version));
			if (!this.#one("SELECT 1 FROM versions WHERE name = ?", r.name))
				throw this.#notRegistered(r.name);
			if (r.entity !== undefined) throw errors.noEntity(r.name, r.entity);
			if (
				this.#one(
					"SELECT 1 FROM versions WHERE name = ? AND entity IS NULL",
					r.name,
				)
			)
				throw errors.allArchived(r.name);
			throw errors.onlyEntities(r.name);
		}
		return this.#toVersion(
			this.#versionRow(r.name, version),
			this.#aliasesOf(r.name, version),
		);
	}

	async list(filter: ListFilter = {}): Promise<ModelVersion[]> {
		this.#checkOpen();
		const name = filter.name ?? null;
		const archived = filter.includeArchived ? 1 : 0;
		const rows = this.#all<VersionRow>(
			"SELECT * FROM versions WHERE (?1 IS NULL OR name = ?1) AND (?2 = 1 OR status = 'active') AND (?3 IS NULL OR entity = ?3) ORDER BY name, version",
			name,
			archived,
			filter.entity ?? null,
		);
		const aliases = new Map<string, string[]>();
		for (const a of this.#all<{ name: string; version: number; alias: string }>(
			"SELECT name, version, alias FROM aliases WHERE (?1 IS NULL OR name = ?1) ORDER BY alias",
			name,
		)) {
			const key = `${a.name}@${a.version}`;
			aliases.set(key, [...(aliases.get(key) ?? []), a.alias]);
		}
		return rows.map((row) =>
			this.#toVersion(row, aliases.get(`${row.name}@${row.version}`) ?? []),
		);
	}

	async entities(name: string): Promise<EntityVersion[]> {
		this.#checkOpen();
		assertName(name);
		return this.#all<EntityVersion>(
			"SELECT entity, max(version) AS version FROM versions WHERE name = ? AND entity IS NOT NULL AND status = 'active' GROUP BY entity ORDER BY entity",
			name,
		).map((r) => ({ entity: r.entity, version: r.version }));
	}

	async setAlias(name: string, alias: string, version: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		assertVersion(version);
		this.#tx(() => {
			const row = this.#versionRow(name, version);
			if (row.status === "archived")
				throw errors.aliasToArchived(name, alias, version);
			const current = this.#one<{ version: number }>(
				"SELECT version FROM aliases WHERE name = ? AND alias = ?",
				name,
				alias,
			);
			if (current?.version === version) return;
			this.#upsertAlias(name, alias, version);
			this.#change("alias_set", name, new Date().toISOString(), version, alias);
		});
	}

	async deleteAlias(name: string, alias: string): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		this.#tx(() => {
			const current = this.#one<{ version: number }>(
				"SELECT version FROM aliases WHERE name = ? AND alias = ?",
				name,
				alias,
			);
			if (!current) {
				if (!this.#one("SELECT 1 FROM versions WHERE name = ?", name))
					throw this.#notRegistered(name);
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${name}' has no alias '${alias}'`,
				);
			}
			this.#run(
				"DELETE FROM aliases WHERE name = ? AND alias = ?",
				name,
				alias,
			);
			this.#change(
				"alias_deleted",
				name,
				new Date().toISOString(),
				current.version,
				alias,
			);
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
		this.#tx(() => {
			const row = this.#versionRow(name, version);
			const merged = JSON.parse(row.metadata) as Record<string, unknown>;
			for (const [k, v] of Object.entries(metadata)) {
				if (v === null) delete merged[k];
				else merged[k] = v;
			}
			this.#run(
				"UPDATE versions SET metadata = ? WHERE name = ? AND version = ?",
				JSON.stringify(merged),
				name,
				version,
			);
			this.#change("metadata", name, new Date().toISOString(), version);
		});
		return this.#toVersion(
			this.#versionRow(name, version),
			this.#aliasesOf(name, version),
		);
	}

	async archive(name: string, version: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertVersion(version);
		this.#tx(() => {
			const row = this.#versionRow(name, version);
			if (row.status === "archived") return;
			const aliases = this.#aliasesOf(name, version);
			if (aliases.length > 0)
				throw errors.archiveAliased(name, version, aliases);
			this.#run(
				"UPDATE versions SET status = 'archived' WHERE name = ? AND version = ?",
				name,
				version,
			);
			this.#change("archived", name, new Date().toISOString(), version);
		});
	}

	async delete(name: string, version?: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		if (version !== undefined) assertVersion(version);
		this.#tx(() => {
			const at = new Date().toISOString();
			if (version === undefined) {
				if (!this.#one("SELECT 1 FROM versions WHERE name = ?", name))
					throw this.#notRegistered(name);
				this.#run("DELETE FROM aliases WHERE name = ?", name);
				this.#run("DELETE FROM files WHERE name = ?", name);
				this.#run("DELETE FROM versions WHERE name = ?", name);
				this.#change("deleted", name, at);
				return;
			}
			this.#versionRow(name, version);
			const aliases = this.#aliasesOf(name, version);
			// Recorded before the rows go, so the events still carry the version's entity.
			for (const a of aliases)
				this.#change("alias_deleted", name, at, version, a);
			this.#change("deleted", name, at, version);
			this.#run(
				"DELETE FROM aliases WHERE name = ? AND version = ?",
				name,
				version,
			);
			this.#run(
				"DELETE FROM files WHERE name = ? AND version = ?",
				name,
				version,
			);
			this.#run(
				"DELETE FROM versions WHERE name = ? AND version = ?",
				name,
				version,
			);
		});
	}

	async openBundle(v: ModelVersion | string): Promise<Bundle> {
		this.#checkOpen();
		const { name, version } = typeof v === "string" ? await this.get(v) : v;
		const source = `registry:${name}@${version}`;
		// One read transaction, so a concurrent delete cannot leave us with the manifest but not the files.
		this.#db.exec("BEGIN");
		let row: VersionRow;
		let fileRows: { path: string; bytes: Uint8Array }[];
		try {
			row = this.#versionRow(name, version);
			fileRows = this.#all(
				"SELECT path, bytes FROM files WHERE name = ? AND version = ?",
				name,
				version,
			);
		} finally {
			this.#db.exec("COMMIT");
		}
		const files = new Map(fileRows.map((f) => [f.path, f.bytes]));
		const bundle = bundleFromParts(row.manifest, files, source);
		if (bundle.manifest.artifact.sha256 !== row.sha256)
			throw errors.storedDigestMismatch(
				source,
				bundle.manifest.artifact.sha256,
				row.sha256,
			);
		return bundle;
	}

	watch(onChange: (e: ChangeEvent) => void): () => void {
		this.#checkOpen();
		if (this.#watchers.size === 0) {
			this.#cursor =
				this.#one<{ seq: number | null }>("SELECT max(seq) AS seq FROM changes")
					?.seq ?? 0;
			this.#timer = setInterval(() => this.#pump(), POLL_MS);
			this.#timer.unref();
		} else {
			// Hand pending events to the existing watchers, so the new one only sees what happens from now on.
			this.#pump();
		}
		const w: Watcher = { fn: onChange };
		this.#watchers.add(w);
		return () => {
			this.#watchers.delete(w);
			if (this.#watchers.size === 0) this.#stopPolling();
		};
	}

	/** Delivers every change after the cursor, in order; re-entrant calls (a watcher that writes) queue a re-run. */
	#pump(): void {
		if (this.#closed || this.#watchers.size === 0) return;
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
					rows = this.#all<ChangeRow>(
						"SELECT * FROM changes WHERE seq > ? ORDER BY seq",
						this.#cursor,
					);
				} catch (err) {
					process.emitWarning(
						`mlship registry ${this.location}: reading changes failed: ${(err as Error).message}`,
					);
					return;
				}
				for (const row of rows) {
					this.#cursor = row.seq;
					const e: ChangeEvent = {
						seq: row.seq,
						type: row.type,
						name: row.name,
						at: row.at,
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
		this.#db.close();
	}
}
