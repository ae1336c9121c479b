// The registry core: resolution, registration, aliases, archive/restore and delete, written once over a Driver.
import {
	type Bundle,
	bundleFromParts,
	manifestFiles,
} from "../../bundle/bundle.ts";
import type { Manifest } from "../../bundle/manifest.ts";
import type {
	StoredRoute,
	TrafficPolicyInput,
} from "../../experiments/policy.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { AuditEntry } from "../access.ts";
import { prepareRegistration } from "../store/common.ts";
import * as errors from "../store/errors.ts";
import {
	type AlertClaim,
	type AliasTarget,
	type ArmStats,
	assertAlias,
	assertName,
	assertVersion,
	type ChangeEvent,
	checkMetadata,
	checkRolloutSpec,
	type DeleteOptions,
	type EntityVersion,
	type ListFilter,
	type ModelRef,
	type ModelStore,
	type ModelVersion,
	type ProfileWindow,
	parseRef,
	type RegisterOptions,
	type Rollout,
	type RolloutEvent,
	type RolloutSpec,
	type RolloutState,
	type StatsWindow,
	type TrafficChange,
	type VersionTotals,
} from "../types.ts";
import { AuditLog } from "./audit.ts";
import { addArmStats, readArmStats } from "./bandits.ts";
import { digestsOf, readBlobs, releaseBlobs } from "./blobs.ts";
import {
	appendChanges,
	type ChangeRetention,
	DEFAULT_RETENTION,
	pruneChanges,
} from "./feed.ts";
import { MAX_HISTORY_ROWS, readHistory, recordHistory } from "./history.ts";
import {
	entityIs,
	insertVersions,
	type Latest,
	toVersion,
	upsertAlias,
	type VersionRow,
} from "./register.ts";
import {
	insertRollout,
	leaseRollouts,
	patchRollout,
	publishStats,
	readEvents,
	readRollout,
	readRollouts,
	sumStats,
} from "./rollouts.ts";
import {
	parseInput,
	readRoute,
	readRoutes,
	routesUsing,
	writeRoute,
} from "./routes.ts";
import type { Driver, PendingChange, Session } from "./session.ts";
import { TokenStore } from "./tokens.ts";

type Change = (e: PendingChange) => void;

/** A plain Uint8Array view of a BLOB/BYTEA value (PostgreSQL gives a Buffer), without a copy. */
function bytesOf(b: Uint8Array): Uint8Array {
	return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const AUDIT_ACTIONS: Record<PendingChange["type"], string> = {
	registered: "model.register",
	alias_set: "alias.set",
	alias_deleted: "alias.delete",
	archived: "model.archive",
	restored: "model.restore",
	deleted: "model.delete",
	metadata: "model.metadata",
	route: "alias.route",
};

/** The audit entry of a registry change: `churn@3` (or `churn@production` for an alias) as the target. */
function auditOf(e: PendingChange): AuditEntry {
	const detail: Record<string, unknown> = {};
	if (e.version !== undefined) detail.version = e.version;
	if (e.entity !== undefined && e.entity !== null) detail.entity = e.entity;
	const target =
		e.alias !== undefined
			? `${e.name}@${e.alias}`
			: e.version !== undefined
				? `${e.name}@${e.version}`
				: e.name;
	return { action: AUDIT_ACTIONS[e.type], target, detail };
}

/**
 * A ModelStore over any {@link Driver}: every rule about names, versions, aliases, archiving, deleting and the change
 * feed's content lives here once, so SQLite and PostgreSQL behave the same. Drivers supply sessions, locks and the
 * feed's transport.
 */
export class RegistryCore implements ModelStore {
	/** Where the registry is, for messages (no password). */
	readonly location: string;
	readonly #driver: Driver;
	readonly #retention: ChangeRetention;
	/** Who did what, when and from where (see {@link AuditLog}); registry changes are recorded by the core itself. */
	readonly audit: AuditLog;
	/** API tokens (hashes only) for servers' access control. */
	readonly tokens: TokenStore;
	#closed = false;

	constructor(driver: Driver, retention: ChangeRetention = DEFAULT_RETENTION) {
		this.#driver = driver;
		this.location = driver.location;
		this.#retention = retention;
		this.audit = new AuditLog(driver);
		this.tokens = new TokenStore(driver, this.audit);
	}

	#checkOpen(): void {
		if (this.#closed)
			throw new MlshipError(
				"MLSHIP_CLOSED",
				`registry ${this.location} is closed`,
			);
	}

	/** Not registered, with the nearest registered name when one is near (a typo). */
	async #notRegistered(s: Session, name: string): Promise<MlshipError> {
		const known = await s.all<{ name: string }>(
			"SELECT name FROM models ORDER BY name LIMIT 10000",
			[],
		);
		return errors.notRegistered(
			name,
			this.location,
			known.map((r) => r.name),
		);
	}

	/** Runs `fn` in a write transaction; the changes it records are appended (and pruned) before commit. */
	async #write<T>(fn: (tx: Session, change: Change) => Promise<T>): Promise<T> {
		const d = this.#driver;
		let newest = 0;
		const result = await d.transaction(async (tx) => {
			const pending: PendingChange[] = [];
			const r = await fn(tx, (e) => pending.push(e));
			if (pending.length > 0) {
				await this.audit.insertMany(tx, pending.map(auditOf));
				await recordHistory(tx, pending);
				await d.beforeAppend(tx);
				newest = await appendChanges(tx, d.dialect, pending);
				await pruneChanges(tx, newest, pending.length, this.#retention);
				await d.afterAppend(tx, newest);
			}
			return r;
		});
		await d.committed(newest);
		return result;
	}

	#read<T>(fn: (s: Session) => Promise<T>): Promise<T> {
		return this.#driver.read(fn);
	}

	async #exists(s: Session, name: string): Promise<boolean> {
		return (
			(await s.one("SELECT 1 FROM versions WHERE name = $1 LIMIT 1", [
				name,
			])) !== undefined
		);
	}

	/** The version row (locked until commit when `lock`), or MLSHIP_MODEL_NOT_FOUND naming the versions that exist. */
	async #versionRow(
		s: Session,
		name: string,
		version: number,
		lock = false,
	): Promise<VersionRow> {
		const row = await s.one<VersionRow>(
			`SELECT * FROM versions WHERE name = $1 AND version = $2${lock ? this.#driver.dialect.forUpdate : ""}`,
			[name, version],
		);
		if (row) return row;
		const have = await s.all<{ version: number }>(
			"SELECT version FROM versions WHERE name = $1 ORDER BY version",
			[name],
		);
		if (have.length === 0) throw await this.#notRegistered(s, name);
		throw errors.noVersion(
			name,
			version,
			have.map((r) => r.version),
		);
	}

	async #aliasesOf(
		s: Session,
		name: string,
		version: number,
	): Promise<string[]> {
		return (
			await s.all<{ alias: string }>(
				`SELECT alias FROM aliases WHERE name = $1 AND version = $2 ORDER BY alias${this.#driver.dialect.binary}`,
				[name, version],
			)
		).map((r) => r.alias);
	}

	async #fullVersion(
		s: Session,
		name: string,
		version: number,
	): Promise<ModelVersion> {
		return toVersion(
			await this.#versionRow(s, name, version),
			await this.#aliasesOf(s, name, version),
		);
	}

	health(): { available: boolean; reason?: string } {
		return this.#closed
			? { available: false, reason: "closed" }
			: this.#driver.health();
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
		const prepared = items.map((i) => ({
			p: prepareRegistration(i.bundle, i.opts),
			allowChange: i.opts?.allowSignatureChange === true,
		}));
		return this.#write(async (tx, change) => {
			// The newest version of each name (and entity) written in this transaction, read from the database once.
			const latest: Latest = new Map();
			return insertVersions(tx, this.#driver.dialect, change, prepared, latest);
		});
	}

	async get(ref: string | ModelRef): Promise<ModelVersion> {
		this.#checkOpen();
		const r = parseRef(ref);
		const { binary } = this.#driver.dialect;
		return this.#read(async (s) => {
			let version = r.version;
			if (r.alias !== undefined) {
				const row = await s.one<{ version: number }>(
					"SELECT version FROM aliases WHERE name = $1 AND alias = $2",
					[r.name, r.alias],
				);
				if (!row) {
					const have = await s.all<{ alias: string }>(
						`SELECT alias FROM aliases WHERE name = $1 ORDER BY alias${binary}`,
						[r.name],
					);
					if (have.length === 0 && !(await this.#exists(s, r.name)))
						throw await this.#notRegistered(s, r.name);
					throw errors.noAlias(
						r.name,
						r.alias,
						have.map((a) => a.alias),
					);
				}
				version = row.version;
			}
			if (version !== undefined) return this.#fullVersion(s, r.name, version);
			const row = await s.one<VersionRow>(
				`SELECT * FROM versions WHERE name = $1 AND ${entityIs(r.entity ?? null)} AND status = 'active' ORDER BY version DESC LIMIT 1`,
				r.entity === undefined ? [r.name] : [r.name, r.entity],
			);
			if (row)
				return toVersion(row, await this.#aliasesOf(s, row.name, row.version));
			if (!(await this.#exists(s, r.name)))
				throw await this.#notRegistered(s, r.name);
			if (r.entity !== undefined) throw errors.noEntity(r.name, r.entity);
			if (
				await s.one(
					"SELECT 1 FROM versions WHERE name = $1 AND entity IS NULL LIMIT 1",
					[r.name],
				)
			)
				throw errors.allArchived(r.name);
			throw errors.onlyEntities(r.name);
		});
	}

	async list(filter: ListFilter = {}): Promise<ModelVersion[]> {
		this.#checkOpen();
		const name = filter.name ?? null;
		const { binary } = this.#driver.dialect;
		return this.#read(async (s) => {
			const rows = await s.all<VersionRow>(
				`SELECT * FROM versions
				 WHERE (CAST($1 AS TEXT) IS NULL OR name = $1) AND ($2 = 1 OR status = 'active')
				   AND (CAST($3 AS TEXT) IS NULL OR entity = $3)
				 ORDER BY name${binary}, version`,
				[name, filter.includeArchived ? 1 : 0, filter.entity ?? null],
			);
			const aliases = new Map<string, string[]>();
			for (const a of await s.all<{
				name: string;
				version: number;
				alias: string;
			}>(
				`SELECT name, version, alias FROM aliases WHERE (CAST($1 AS TEXT) IS NULL OR name = $1) ORDER BY alias${binary}`,
				[name],
			)) {
				const key = `${a.name}@${a.version}`;
				const list = aliases.get(key);
				if (list) list.push(a.alias);
				else aliases.set(key, [a.alias]);
			}
			return rows.map((row) =>
				toVersion(row, aliases.get(`${row.name}@${row.version}`) ?? []),
			);
		});
	}

	async entities(name: string): Promise<EntityVersion[]> {
		this.#checkOpen();
		assertName(name);
		const { binary } = this.#driver.dialect;
		const rows = await this.#read((s) =>
			s.all<EntityVersion>(
				`SELECT entity, max(version) AS version FROM versions
				 WHERE name = $1 AND entity IS NOT NULL AND status = 'active'
				 GROUP BY entity ORDER BY entity${binary}`,
				[name],
			),
		);
		return rows.map((r) => ({ entity: r.entity, version: Number(r.version) }));
	}

	async aliasTargets(): Promise<AliasTarget[]> {
		this.#checkOpen();
		const { binary } = this.#driver.dialect;
		// Aliases of active, non-entity versions: a join on the versions' key, no manifest read.
		const own = `SELECT a.name, a.alias, a.version FROM aliases a
			JOIN versions v ON v.name = a.name AND v.version = a.version
			WHERE v.entity IS NULL AND v.status = 'active'`;
		return this.#read(async (s) => {
			const aliases = await s.all<{
				name: string;
				alias: string;
				version: number | string;
			}>(`${own} ORDER BY a.name${binary}, a.alias${binary}`, []);
			const active = new Map<string, number[]>();
			for (const r of await s.all<{ name: string; version: number | string }>(
				`SELECT name, version FROM versions
				 WHERE entity IS NULL AND status = 'active' AND name IN (SELECT name FROM (${own}) o)
				 ORDER BY name, version DESC`,
				[],
			)) {
				const list = active.get(r.name);
				if (list) list.push(Number(r.version));
				else active.set(r.name, [Number(r.version)]);
			}
			return aliases.map((a) => ({
				name: a.name,
				alias: a.alias,
				version: Number(a.version),
				active: active.get(a.name) ?? [],
			}));
		});
	}

	async setAlias(name: string, alias: string, version: number): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		assertVersion(version);
		await this.#write(async (tx, change) => {
			// Locking the target row keeps a concurrent archive or delete from slipping in between check and write.
			const row = await this.#versionRow(tx, name, version, true);
			if (row.status === "archived")
				throw errors.aliasToArchived(name, alias, version);
			const current = await tx.one<{ version: number }>(
				"SELECT version FROM aliases WHERE name = $1 AND alias = $2",
				[name, alias],
			);
			if (current?.version === version) return;
			// The alias's version is the primary of a shadow-only policy: it must not become its own shadow.
			const route = await readRoute(tx, name, alias);
			if (
				route &&
				!route.policy.split &&
				!route.policy.bandit &&
				route.policy.shadow?.some((x) => x.version === version)
			)
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`cannot point ${name}@${alias} at version ${version}: its traffic policy shadows that version (change the policy first: mlship models route ${name} ${alias} ...)`,
				);
			await upsertAlias(tx, name, alias, version);
			change({ type: "alias_set", name, version, alias });
		});
	}

	async deleteAlias(name: string, alias: string): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		await this.#write(async (tx, change) => {
			const current = await tx.one<{ version: number }>(
				"DELETE FROM aliases WHERE name = $1 AND alias = $2 RETURNING version",
				[name, alias],
			);
			if (!current) {
				if (!(await this.#exists(tx, name)))
					throw await this.#notRegistered(tx, name);
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${name}' has no alias '${alias}'`,
				);
			}
			change({ type: "alias_deleted", name, version: current.version, alias });
		});
	}

	async setRoute(
		name: string,
		alias: string,
		policy: TrafficPolicyInput,
		actor?: string,
	): Promise<StoredRoute> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		const parsed = parseInput(name, alias, policy);
		const { dialect } = this.#driver;
		return this.#write(async (tx, change) => {
			// The alias row is locked: a concurrent move or delete of the alias waits for this policy.
			const a = await tx.one<{ version: number }>(
				`SELECT version FROM aliases WHERE name = $1 AND alias = $2${dialect.forUpdate}`,
				[name, alias],
			);
			if (!a) {
				if (!(await this.#exists(tx, name)))
					throw await this.#notRegistered(tx, name);
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${name}' has no alias '${alias}': a traffic policy belongs to an alias (set it first: mlship models alias ${name} ${alias} <version>)`,
				);
			}
			// Version rows are locked too, so none is archived or deleted between the check and the commit.
			await tx.all(
				`SELECT version FROM versions WHERE name = $1${dialect.forUpdate}`,
				[name],
			);
			const stored = await writeRoute(tx, dialect, {
				name,
				alias,
				aliasVersion: Number(a.version),
				input: policy,
				parsed,
				actor,
			});
			change({ type: "route", name, alias });
			return stored;
		});
	}

	async trafficHistory(filter: {
		name?: string;
		alias?: string;
		since: number;
		limit?: number;
	}): Promise<TrafficChange[]> {
		this.#checkOpen();
		if (filter.name !== undefined) assertName(filter.name);
		if (filter.alias !== undefined) assertAlias(filter.alias);
		const limit = filter.limit ?? 10_000;
		if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_ROWS)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`limit must be a whole number from 1 to ${MAX_HISTORY_ROWS}, got ${limit}`,
			);
		// A whole number: PostgreSQL compares it with a BIGINT column and refuses a fraction (a server error, not a 400).
		if (!Number.isSafeInteger(filter.since))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`since must be a whole number of ms since the epoch, got ${filter.since}`,
			);
		return this.#read((s) => readHistory(s, { ...filter, limit }));
	}

	async route(name: string, alias: string): Promise<StoredRoute | undefined> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		return this.#read((s) => readRoute(s, name, alias));
	}

	async routes(name?: string): Promise<StoredRoute[]> {
		this.#checkOpen();
		if (name !== undefined) assertName(name);
		return this.#read((s) => readRoutes(s, this.#driver.dialect, name));
	}

	async addArmStats(deltas: readonly ArmStats[]): Promise<void> {
		this.#checkOpen();
		if (deltas.length === 0) return;
		for (const d of deltas) {
			assertName(d.name);
			assertAlias(d.alias);
		}
		await this.#driver.transaction((tx) => addArmStats(tx, deltas));
	}

	async armStats(name?: string, alias?: string): Promise<ArmStats[]> {
		this.#checkOpen();
		return this.#read((s) => readArmStats(s, name, alias));
	}

	async startRollout(spec: RolloutSpec, now = Date.now()): Promise<Rollout> {
		this.#checkOpen();
		assertName(spec.name);
		assertAlias(spec.alias);
		checkRolloutSpec(spec);
		const { dialect } = this.#driver;
		const first = spec.steps[0] as number;
		const rollout = await this.#driver.transaction(async (tx) => {
			const a = await tx.one<{ version: number }>(
				`SELECT version FROM aliases WHERE name = $1 AND alias = $2${dialect.forUpdate}`,
				[spec.name, spec.alias],
			);
			if (!a) {
				if (!(await this.#exists(tx, spec.name)))
					throw await this.#notRegistered(tx, spec.name);
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${spec.name}' has no alias '${spec.alias}': a rollout moves an alias (set it first: mlship models alias ${spec.name} ${spec.alias} <version>)`,
				);
			}
			const to = await tx.one<{ status: string }>(
				"SELECT status FROM versions WHERE name = $1 AND version = $2",
				[spec.name, spec.to],
			);
			if (to?.status !== "active")
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${spec.name}' has no ${to ? "active " : ""}version ${spec.to} to roll out${to ? " (it is archived: mlship models restore first)" : ""}`,
				);
			const from = Number(a.version);
			if (from === spec.to)
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`${spec.name}@${spec.alias} already points at version ${spec.to}: nothing to roll out`,
				);
			const r = await insertRollout(
				tx,
				spec,
				from,
				await sumStats(tx, spec.name, spec.to),
				now,
				dialect.forUpdate,
			);
			// In the same transaction: a rollout that did not start is not in the audit log.
			await this.audit.insert(tx, {
				action: "rollout.started",
				target: `${spec.name}@${spec.alias}`,
				detail: { from, to: spec.to, steps: spec.steps },
			});
			return r;
		});
		try {
			// The first step's split (checked like any policy: the new version must exist and be active).
			if (first >= 100) await this.setAlias(spec.name, spec.alias, spec.to);
			else
				await this.setRoute(
					spec.name,
					spec.alias,
					{
						split: [
							{ version: rollout.from, weight: 100 - first },
							{ version: spec.to, weight: first },
						],
					},
					"rollout",
				);
		} catch (err) {
			await this.#driver.transaction((tx) =>
				tx.all("DELETE FROM rollouts WHERE name = $1 AND alias = $2", [
					spec.name,
					spec.alias,
				]),
			);
			throw err;
		}
		return rollout;
	}

	async rollout(name: string, alias: string): Promise<Rollout | undefined> {
		this.#checkOpen();
		return this.#read((s) => readRollout(s, name, alias));
	}

	async rollouts(): Promise<Rollout[]> {
		this.#checkOpen();
		return this.#read((s) => readRollouts(s));
	}

	async updateRollout(
		name: string,
		alias: string,
		states: readonly RolloutState[],
		patch: Partial<
			Pick<
				Rollout,
				| "state"
				| "step"
				| "failed"
				| "stepStartedAt"
				| "nextCheckAt"
				| "baseline"
			>
		>,
		event: { type: string; detail?: Record<string, unknown> },
		opts: { owner?: string; now?: number } = {},
	): Promise<Rollout | undefined> {
		this.#checkOpen();
		const now = opts.now ?? Date.now();
		return this.#driver.transaction(async (tx) => {
			const r = await patchRollout(
				tx,
				name,
				alias,
				states,
				patch,
				event,
				now,
				opts.owner,
				this.#driver.dialect.forUpdate,
			);
			// Each step, check, pause, resume, abort, promotion and rollback is an audited action too.
			if (r)
				await this.audit.insert(tx, {
					action: `rollout.${event.type}`,
					target: `${name}@${alias}`,
					detail: event.detail ?? {},
				});
			return r;
		});
	}

	async leaseRollouts(
		owner: string,
		leaseMs: number,
		now = Date.now(),
	): Promise<Rollout[]> {
		this.#checkOpen();
		return this.#driver.transaction((tx) =>
			leaseRollouts(tx, owner, leaseMs, now),
		);
	}

	async rolloutEvents(
		name: string,
		alias: string,
		limit = 100,
	): Promise<RolloutEvent[]> {
		this.#checkOpen();
		return this.#read((s) => readEvents(s, name, alias, limit));
	}

	async publishVersionStats(
		replica: string,
		rows: readonly { name: string; version: number; totals: VersionTotals }[],
	): Promise<void> {
		this.#checkOpen();
		if (rows.length === 0) return;
		await this.#driver.transaction((tx) =>
			publishStats(tx, replica, rows, Date.now()),
		);
	}

	async versionTotals(name: string, version: number): Promise<VersionTotals> {
		this.#checkOpen();
		return this.#read((s) => sumStats(s, name, version));
	}

	async clearRoute(name: string, alias: string): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertAlias(alias);
		await this.#write(async (tx, change) => {
			const gone = await tx.all(
				"DELETE FROM traffic_policies WHERE name = $1 AND alias = $2 RETURNING alias",
				[name, alias],
			);
			if (gone.length === 0)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`${name}@${alias} has no traffic policy (see 'mlship experiments list')`,
				);
			change({ type: "route", name, alias });
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
		return this.#write(async (tx, change) => {
			// Merged under the row lock (or the exclusive write), so concurrent updates of different keys all survive.
			const row = await this.#versionRow(tx, name, version, true);
			const merged = toVersion(row, []).metadata;
			for (const [k, v] of Object.entries(metadata)) {
				if (v === null) delete merged[k];
				else merged[k] = v;
			}
			await tx.all(
				"UPDATE versions SET metadata = $3 WHERE name = $1 AND version = $2",
				[name, version, JSON.stringify(merged)],
			);
			change({ type: "metadata", name, version });
			return this.#fullVersion(tx, name, version);
		});
	}

	async archive(name: string, version: number): Promise<void> {
		await this.#setStatus(name, version, "archived");
	}

	async restore(name: string, version: number): Promise<void> {
		await this.#setStatus(name, version, "active");
	}

	async #setStatus(
		name: string,
		version: number,
		status: "active" | "archived",
	): Promise<void> {
		this.#checkOpen();
		assertName(name);
		assertVersion(version);
		await this.#write(async (tx, change) => {
			const row = await this.#versionRow(tx, name, version, true);
			if (row.status === status) return;
			if (status === "archived") {
				const aliases = await this.#aliasesOf(tx, name, version);
				if (aliases.length > 0)
					throw errors.aliased("archive", name, version, aliases);
				const routed = await routesUsing(
					tx,
					this.#driver.dialect,
					name,
					version,
				);
				if (routed.length > 0)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`cannot archive ${name}@${version}: the traffic policy of ${routed.map((a) => `'${a}'`).join(", ")} uses it (change it with 'mlship models route ${name} ${routed[0]} ...' or --clear)`,
					);
			}
			await tx.all(
				"UPDATE versions SET status = $3 WHERE name = $1 AND version = $2",
				[name, version, status],
			);
			change({
				type: status === "archived" ? "archived" : "restored",
				name,
				version,
			});
		});
	}

	async delete(
		name: string,
		version?: number,
		opts: DeleteOptions = {},
	): Promise<void> {
		this.#checkOpen();
		assertName(name);
		if (version !== undefined) assertVersion(version);
		const { forUpdate } = this.#driver.dialect;
		await this.#write(async (tx, change) => {
			if (version === undefined) {
				// Lock the name's counter row: a registration of this name waits for (and then follows) the delete.
				await tx.all(`SELECT 1 FROM models WHERE name = $1${forUpdate}`, [
					name,
				]);
				if (!(await this.#exists(tx, name)))
					throw await this.#notRegistered(tx, name);
				// aliases go with their versions (ON DELETE CASCADE); files when no other version names them
				const gone = await tx.all<{ manifest: string }>(
					"DELETE FROM versions WHERE name = $1 RETURNING manifest",
					[name],
				);
				await releaseBlobs(
					tx,
					digestsOf(gone.map((r) => JSON.parse(r.manifest) as Manifest)),
				);
				change({ type: "deleted", name });
				return;
			}
			const { entity, manifest } = await this.#versionRow(
				tx,
				name,
				version,
				true,
			);
			const aliases = await this.#aliasesOf(tx, name, version);
			if (aliases.length > 0 && opts.force !== true)
				throw errors.aliased("delete", name, version, aliases);
			await tx.all("DELETE FROM versions WHERE name = $1 AND version = $2", [
				name,
				version,
			]);
			await releaseBlobs(tx, digestsOf([JSON.parse(manifest) as Manifest]));
			// The version row is gone by append time: its entity is passed along.
			for (const a of aliases)
				change({ type: "alias_deleted", name, version, alias: a, entity });
			change({ type: "deleted", name, version, entity });
		});
	}

	async openBundle(v: ModelVersion | string): Promise<Bundle> {
		this.#checkOpen();
		const { name, version } = typeof v === "string" ? await this.get(v) : v;
		const source = `registry:${name}@${version}`;
		return this.#read(async (s) => {
			// The manifest and the artifact (most bundles' only file) in one statement.
			const row = await s.one<{
				manifest: string;
				sha256: string;
				bytes: Uint8Array | null;
			}>(
				`SELECT v.manifest, v.sha256, b.bytes
				 FROM versions v LEFT JOIN blobs b ON b.sha256 = v.sha256
				 WHERE v.name = $1 AND v.version = $2`,
				[name, version],
			);
			if (!row) {
				await this.#versionRow(s, name, version); // throws the right not-found error
				throw await this.#notRegistered(s, name);
			}
			// Stored as JSON.stringify wrote it (insertVersions).
			const manifest = JSON.parse(row.manifest) as Manifest;
			const named = manifestFiles(manifest);
			// Any other file (reference, profile, covers), or an artifact the row's digest no longer finds.
			const rest = named
				.map((f) => f.sha256)
				.filter((d) => d !== row.sha256 || row.bytes === null);
			const blobs = await readBlobs(s, rest);
			if (row.bytes !== null) blobs.set(row.sha256, row.bytes);
			const files = new Map<string, Uint8Array>();
			for (const f of named) {
				const bytes = blobs.get(f.sha256);
				if (bytes) files.set(f.path, bytesOf(bytes));
			}
			// A file gone between the two reads went with a concurrent delete of this version: not found, not corrupt.
			if (files.size < named.length) await this.#versionRow(s, name, version);
			const bundle = bundleFromParts(row.manifest, files, source, true);
			if (bundle.manifest.artifact.sha256 !== row.sha256)
				throw errors.storedDigestMismatch(
					source,
					bundle.manifest.artifact.sha256,
					row.sha256,
				);
			return bundle;
		});
	}

	async saveProfileWindow(w: ProfileWindow): Promise<void> {
		this.#checkOpen();
		await this.#driver.transaction((tx) =>
			tx.all(
				`INSERT INTO monitor_windows (name, version, window_start, window_seconds, replica, rows, profile)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (name, version, window_start, replica)
				DO UPDATE SET rows = excluded.rows, profile = excluded.profile, window_seconds = excluded.window_seconds`,
				[w.model, w.version, w.start, w.seconds, w.replica, w.rows, w.profile],
			),
		);
	}

	async pruneProfileWindows(before: number): Promise<number> {
		this.#checkOpen();
		return this.#driver.transaction(async (tx) => {
			let n = 0;
			for (const table of [
				"monitor_windows",
				"monitor_stats",
				"monitor_alerts",
			])
				n += (
					await tx.all<{ n: number }>(
						`DELETE FROM ${table} WHERE window_start < $1 RETURNING 1 AS n`,
						[before],
					)
				).length;
			return n;
		});
	}

	async saveStatsWindow(w: StatsWindow): Promise<void> {
		this.#checkOpen();
		await this.#driver.transaction((tx) =>
			tx.all(
				`INSERT INTO monitor_stats (name, version, window_start, window_seconds, replica, requests, errors, buckets, quality)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (name, version, window_start, replica)
				DO UPDATE SET requests = excluded.requests, errors = excluded.errors, buckets = excluded.buckets,
				quality = excluded.quality, window_seconds = excluded.window_seconds`,
				[
					w.model,
					w.version,
					w.start,
					w.seconds,
					w.replica,
					w.requests,
					w.errors,
					JSON.stringify(w.buckets),
					w.quality ?? null,
				],
			),
		);
	}

	async statsWindows(model: string, since: number): Promise<StatsWindow[]> {
		this.#checkOpen();
		const rows = await this.#read((s) =>
			s.all<{
				name: string;
				version: number;
				window_start: number | string;
				window_seconds: number;
				replica: string;
				requests: number | string;
				errors: number | string;
				buckets: string;
				quality: string | null;
			}>(
				`SELECT name, version, window_start, window_seconds, replica, requests, errors, buckets, quality FROM monitor_stats
				WHERE name = $1 AND window_start >= $2 ORDER BY window_start, version, replica${this.#driver.dialect.binary}`,
				[model, since],
			),
		);
		return rows.map((r) => {
			const w: StatsWindow = {
				model: r.name,
				version: Number(r.version),
				start: Number(r.window_start),
				seconds: Number(r.window_seconds),
				replica: r.replica,
				requests: Number(r.requests),
				errors: Number(r.errors),
				buckets: JSON.parse(r.buckets) as number[],
			};
			if (r.quality !== null) w.quality = r.quality;
			return w;
		});
	}

	async claimAlert(c: AlertClaim): Promise<boolean> {
		this.#checkOpen();
		const won = await this.#driver.transaction((tx) =>
			tx.all<{ n: number }>(
				`INSERT INTO monitor_alerts (name, version, subject, window_start, change, replica)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (name, version, subject, window_start, change) DO NOTHING RETURNING 1 AS n`,
				[c.model, c.version, c.subject, c.windowStart, c.change, c.replica],
			),
		);
		return won.length > 0;
	}

	async profileWindows(model: string, since: number): Promise<ProfileWindow[]> {
		this.#checkOpen();
		const rows = await this.#read((s) =>
			s.all<{
				name: string;
				version: number;
				window_start: number | string;
				window_seconds: number;
				replica: string;
				rows: number;
				profile: string;
			}>(
				`SELECT name, version, window_start, window_seconds, replica, rows, profile FROM monitor_windows
				WHERE name = $1 AND window_start >= $2 ORDER BY window_start, version, replica${this.#driver.dialect.binary}`,
				[model, since],
			),
		);
		return rows.map((r) => ({
			model: r.name,
			version: Number(r.version),
			start: Number(r.window_start),
			seconds: Number(r.window_seconds),
			replica: r.replica,
			rows: Number(r.rows),
			profile: r.profile,
		}));
	}

	watch(onChange: (e: ChangeEvent) => void): () => void {
		this.#checkOpen();
		return this.#driver.watch(onChange);
	}

	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		await this.#driver.close();
	}
}
