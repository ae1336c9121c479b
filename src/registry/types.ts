// The registry's vocabulary: model references, versions, change events, and the ModelStore interface.
import type { Bundle } from "../bundle/bundle.ts";
import type { Manifest } from "../bundle/manifest.ts";
import type {
	StoredRoute,
	TrafficPolicy,
	TrafficPolicyInput,
} from "../experiments/policy.ts";
import { LATENCY_BOUNDS_MS, type StatsRow } from "../monitor/stats.ts";
import type { WindowRow } from "../monitor/windows.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { Audit, Tokens } from "./access.ts";

/** One arm's totals (or a replica's delta): rewards received and their sum. */
export interface ArmStats {
	name: string;
	alias: string;
	version: number;
	/** Rewards received for the arm (a request without feedback is not a pull). */
	pulls: number;
	rewardSum: number;
}

/**
 * What an alias was configured to serve after one change (an alias move, a policy set or cleared, a rollout step):
 * kept in the registry so the configured weights can be drawn over time.
 */
export interface TrafficChange {
	name: string;
	alias: string;
	/** When, ms since the epoch. */
	at: number;
	/** The alias's version after the change; null when the alias was deleted. */
	version: number | null;
	/** The policy after the change (without its salt); null when the alias had none. */
	policy: Omit<TrafficPolicy, "salt"> | null;
	/** Who made the change (a token id, `local:USER`, `rollout-agent:…`). */
	actor: string;
}

/** Where a progressive rollout is: running or paused, or ended (promoted, rolled back, aborted). */
export type RolloutState =
	| "running"
	| "paused"
	| "promoted"
	| "rolled_back"
	| "aborted";

/** What `mlship rollout start` asks for. */
export interface RolloutSpec {
	name: string;
	alias: string;
	/** The new version; the alias's current version is the one rolled back to. */
	to: number;
	/** Percent of traffic to `to` at each step, increasing, the last 100 (e.g. 5, 25, 50, 100). */
	steps: number[];
	/** Time between checks (each step lasts at least this long). */
	intervalMs: number;
	/** Highest error rate of `to` a check accepts, as a fraction (0.01 = 1%). */
	maxErrorRate: number;
	/** Highest p99 latency of `to` a check accepts (ms); unset: latency is not checked. */
	maxP99Ms?: number | undefined;
	/** Fewest requests to `to` a check needs; with fewer it waits (neither passes nor fails). */
	minRequests: number;
	/** Failed checks that roll back to the previous version. */
	failures: number;
}

/** A version's request counts and latency histogram, summed over the replicas that published them. */
export interface VersionTotals {
	requests: number;
	errors: number;
	/** Requests per latency bucket (upper bounds ROLLOUT_LATENCY_BUCKETS_MS, then +Inf). */
	buckets: number[];
}

/** A progressive rollout as stored (one per alias). */
export interface Rollout extends RolloutSpec {
	/** The version the alias pointed at when it started (rolled back to). */
	from: number;
	state: RolloutState;
	/** Index into `steps` of the current step. */
	step: number;
	/** Failed checks so far. */
	failed: number;
	/** When the current step began, and when its next check is due (ms since the epoch). */
	stepStartedAt: number;
	nextCheckAt: number;
	/** `to`'s totals when the current check window began (a check looks at what came after). */
	baseline: VersionTotals;
	/** The replica driving it and until when (ms since the epoch). */
	leaseOwner?: string | undefined;
	leaseUntil?: number | undefined;
	startedAt: number;
	updatedAt: number;
}

/** One step of a rollout's history. */
export interface RolloutEvent {
	seq: number;
	name: string;
	alias: string;
	/** ms since the epoch. */
	at: number;
	/** started, step, check_failed, waiting, paused, resumed, promoted, rolled_back, aborted. */
	type: string;
	detail: Record<string, unknown>;
}

/** Checks a rollout's spec (steps increasing in (0, 100] ending at 100, positive interval, rates in [0, 1]). */
export function checkRolloutSpec(spec: RolloutSpec): void {
	const bad = (msg: string) => {
		throw new MlshipError("MLSHIP_INVALID_ARGUMENT", msg);
	};
	if (!Number.isInteger(spec.to) || spec.to < 1)
		bad(`the version to roll out must be a version number, got ${spec.to}`);
	const s = spec.steps;
	if (!Array.isArray(s) || s.length === 0 || s.length > 100)
		bad("steps must be 1 to 100 percentages, e.g. 5,25,50,100");
	for (let i = 0; i < s.length; i++) {
		const v = s[i] as number;
		if (!(v > 0 && v <= 100) || (i > 0 && v <= (s[i - 1] as number)))
			bad(
				`steps must increase within (0, 100], got ${s.join(",")} (e.g. 5,25,50,100)`,
			);
	}
	if (s[s.length - 1] !== 100)
		bad(`the last step must be 100 (all traffic), got ${s.join(",")}`);
	if (!(spec.intervalMs > 0)) bad("the interval must be a positive duration");
	if (!(spec.maxErrorRate >= 0 && spec.maxErrorRate <= 1))
		bad(
			`the max error rate must be within 0–100%, got ${spec.maxErrorRate * 100}%`,
		);
	if (spec.maxP99Ms !== undefined && !(spec.maxP99Ms > 0))
		bad(`the max p99 must be a positive number of ms, got ${spec.maxP99Ms}`);
	if (!Number.isInteger(spec.minRequests) || spec.minRequests < 1)
		bad(`min requests must be a whole number ≥ 1, got ${spec.minRequests}`);
	if (!Number.isInteger(spec.failures) || spec.failures < 1)
		bad(`failures must be a whole number ≥ 1, got ${spec.failures}`);
}

/**
 * Latency buckets (ms, upper bounds) of the per-version stats replicas publish for rollout checks: those of
 * `mlship_request_duration_seconds`, so a replica publishes its histogram as it is.
 */
export const ROLLOUT_LATENCY_BUCKETS_MS = LATENCY_BOUNDS_MS;

/** Names and aliases: letters, digits, '.', '_' or '-', starting with a letter or digit (as in mlship.yaml). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DIGITS_RE = /^[0-9]+$/;

/**
 * A reference to a model: a bare name (newest active version that belongs to no entity), a version number, an
 * alias, or an entity (the newest active version registered for that entity of a per-entity family).
 */
export interface ModelRef {
	name: string;
	version?: number;
	alias?: string;
	entity?: string;
}

/** Entity keys: 1–200 characters, no control characters and no '#'. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the class exists to refuse control characters.
const ENTITY_RE = /^[^\x00-\x1f\x7f#]{1,200}$/;

/** Throws MLSHIP_INVALID_ARGUMENT unless `entity` is a valid entity key. */
export function assertEntity(entity: string): void {
	if (typeof entity !== "string" || !ENTITY_RE.test(entity))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid entity '${String(entity)}': use 1–200 characters without control characters or '#'`,
		);
}

/** Throws MLSHIP_INVALID_ARGUMENT unless `name` is a valid model name. */
export function assertName(name: string): void {
	if (!NAME_RE.test(name))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid model name '${name}': use letters, digits, '.', '_' or '-', starting with a letter or digit`,
		);
}

/** Throws MLSHIP_INVALID_ARGUMENT unless `alias` is a valid alias (a name that is not purely numeric). */
export function assertAlias(alias: string): void {
	if (!NAME_RE.test(alias) || DIGITS_RE.test(alias))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid alias '${alias}': use letters, digits, '.', '_' or '-', starting with a letter or digit, and not only digits (digits mean a version)`,
		);
}

/** Throws MLSHIP_INVALID_ARGUMENT unless `version` is a positive integer. */
export function assertVersion(version: number): void {
	if (!Number.isSafeInteger(version) || version < 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid version '${version}': versions are whole numbers from 1`,
		);
}

/**
 * Parses `name`, `name@3` or `name@production` (digits after '@' are a version, anything else an alias).
 * A ModelRef object is validated and returned as is. Throws MLSHIP_INVALID_ARGUMENT on a malformed reference.
 * @example parseRef("churn@production") // { name: "churn", alias: "production" }
 */
export function parseRef(ref: string | ModelRef): ModelRef {
	if (typeof ref !== "string") {
		assertName(ref.name);
		if (ref.version !== undefined && ref.alias !== undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`model reference for '${ref.name}' has both a version and an alias`,
			);
		if (
			ref.entity !== undefined &&
			(ref.version !== undefined || ref.alias !== undefined)
		)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`model reference for '${ref.name}' names an entity and a version or alias; an entity reference means that entity's newest version (name a version alone: ${ref.name}@N)`,
			);
		if (ref.version !== undefined) assertVersion(ref.version);
		if (ref.alias !== undefined) assertAlias(ref.alias);
		if (ref.entity !== undefined) assertEntity(ref.entity);
		return ref;
	}
	const hash = ref.indexOf("#");
	if (hash >= 0) {
		const name = ref.slice(0, hash);
		const entity = ref.slice(hash + 1);
		if (!NAME_RE.test(name) || !ENTITY_RE.test(entity))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`invalid model reference '${ref}': expected name#entity (e.g. price#berlin)`,
			);
		return { name, entity };
	}
	const at = ref.indexOf("@");
	const name = at < 0 ? ref : ref.slice(0, at);
	const tag = at < 0 ? undefined : ref.slice(at + 1);
	const valid =
		NAME_RE.test(name) &&
		(tag === undefined ||
			(NAME_RE.test(tag) &&
				(!DIGITS_RE.test(tag) || Number.parseInt(tag, 10) >= 1)));
	if (!valid)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid model reference '${ref}': expected name, name@version (1, 2, …) or name@alias, using letters, digits, '.', '_' or '-'`,
		);
	if (tag === undefined) return { name };
	if (DIGITS_RE.test(tag)) {
		const version = Number.parseInt(tag, 10);
		assertVersion(version);
		return { name, version };
	}
	return { name, alias: tag };
}

/** Formats a reference back to `name`, `name@3`, `name@alias` or `name#entity`. */
export function formatRef(ref: ModelRef): string {
	if (ref.entity !== undefined) return `${ref.name}#${ref.entity}`;
	if (ref.version !== undefined) return `${ref.name}@${ref.version}`;
	if (ref.alias !== undefined) return `${ref.name}@${ref.alias}`;
	return ref.name;
}

/** One registered version of a model. */
export interface ModelVersion {
	name: string;
	/** 1, 2, 3… per name, never reused for that name. */
	version: number;
	/** sha256 of the artifact (the model file). */
	sha256: string;
	/** The bundle manifest as registered (its `name` is the registered name). */
	manifest: Manifest;
	/** ISO 8601 time of registration. */
	createdAt: string;
	/** Archived versions are hidden from bare-name resolution and from `list` by default. */
	status: "active" | "archived";
	/** Aliases pointing at this version, sorted. */
	aliases: string[];
	/** Registration metadata (who, why, metrics…), kept apart from `manifest.metadata`. */
	metadata: Record<string, unknown>;
	/** The manifest's description, when it has one. */
	description?: string;
	/** The entity this version serves in a per-entity family (e.g. `berlin` of `price`); absent for ordinary versions. */
	entity?: string;
}

/** An alias of one of a model's own versions (not an entity member's), with what a rollout could move it to. */
export interface AliasTarget {
	name: string;
	alias: string;
	/** The active version the alias points at. */
	version: number;
	/** Every active version of the name that belongs to no entity, newest first (`version` included). */
	active: number[];
}

/** The newest active version of one entity of a per-entity family. */
export interface EntityVersion {
	entity: string;
	version: number;
}

/** What changed in a registry, in commit order (`seq` increases). */
export interface ChangeEvent {
	seq: number;
	type:
		| "registered"
		| "alias_set"
		| "alias_deleted"
		| "archived"
		| "restored"
		| "deleted"
		| "metadata"
		/** A traffic policy on `alias` was set or cleared (`version` absent). */
		| "route";
	name: string;
	/** Absent for a `deleted` event that removed every version of the name. */
	version?: number;
	alias?: string;
	/** The entity of the version changed, for versions of a per-entity family. */
	entity?: string;
	/** ISO 8601 time of the change. */
	at: string;
}

/** Options for {@link ModelStore.register}. */
export interface RegisterOptions {
	/** Registered name (default: the manifest's name). */
	name?: string;
	/** Aliases to point at the new version (moved from older versions if set). */
	aliases?: string[];
	/** Registration metadata. */
	metadata?: Record<string, unknown>;
	/** Registers the version for this entity of a per-entity family (`price#berlin` then resolves to it). */
	entity?: string;
	/**
	 * Accept inputs, features or labels that differ from the name's newest version (default false: refused with the
	 * difference, so an unrelated model never silently becomes the next version).
	 */
	allowSignatureChange?: boolean;
}

/** One replica's live profile of one model version over one time window (drift monitoring); see WindowRow. */
export type ProfileWindow = WindowRow;

/** One replica's traffic, latency and feedback quality of one model version over one time window; see StatsRow. */
export type StatsWindow = StatsRow;

/** A drift alert to send once across replicas (see {@link ModelStore.claimAlert}). */
export interface AlertClaim {
	model: string;
	version: number;
	/** `feature:<name>`, `output:<name>` or `dataset`. */
	subject: string;
	/** Start of the window that decided it (epoch ms). */
	windowStart: number;
	/** `started` or `ended`. */
	change: string;
	/** The replica claiming it. */
	replica: string;
}

/** Options for {@link ModelStore.delete}. */
export interface DeleteOptions {
	/** Delete a version even though aliases point at it (they are deleted with it); default false: refused. */
	force?: boolean;
}

/** Filter for {@link ModelStore.list}. */
export interface ListFilter {
	name?: string;
	/** Include archived versions (default false). */
	includeArchived?: boolean;
	/** Only the versions of this entity. */
	entity?: string;
}

/**
 * Where models live: versions, their artifacts, aliases and a change feed.
 * Every implementation passes `test/registry/store.contract.ts`.
 */
export interface ModelStore {
	/** Stores a bundle as the next version of its name; registering the same bytes again still makes a new version. */
	register(bundle: Bundle, opts?: RegisterOptions): Promise<ModelVersion>;
	/**
	 * Registers many bundles in one transaction (all or none), e.g. thousands of per-entity models; versions are
	 * returned in input order. Change events are those of the same registrations one by one.
	 */
	registerMany(
		items: readonly { bundle: Bundle; opts?: RegisterOptions }[],
	): Promise<ModelVersion[]>;
	/** Resolves a reference; MLSHIP_MODEL_NOT_FOUND when nothing matches. A bare name means the newest active version. */
	get(ref: string | ModelRef): Promise<ModelVersion>;
	/** Versions sorted by name then version; archived ones only with `includeArchived`. */
	list(filter?: ListFilter): Promise<ModelVersion[]>;
	/** The newest active version of every entity of `name`, sorted by entity (one query, for thousands of entities). */
	entities(name: string): Promise<EntityVersion[]>;
	/**
	 * Every alias pointing at an active version that belongs to no entity, sorted by name and alias, with the active
	 * non-entity versions of its name: two narrow queries, no manifest read, however many entity members exist.
	 */
	aliasTargets(): Promise<AliasTarget[]>;
	/** Points `alias` at an existing active version (creating or moving the alias). */
	setAlias(name: string, alias: string, version: number): Promise<void>;
	deleteAlias(name: string, alias: string): Promise<void>;
	/**
	 * Sets the traffic policy of an alias (split, sticky key, shadow, bandit), replacing any earlier one; checked
	 * against the model (versions exist and are active, no shadow of the primary). Without a salt the stored one is
	 * kept (a ramp 90/10 → 50/50 keeps the keys already on the new version), else one is made. Emits a `route`
	 * change, so every replica follows.
	 * @example await store.setRoute("churn", "production", { split: [{ version: 3, weight: 90 }, { version: 4, weight: 10 }] })
	 */
	setRoute(
		name: string,
		alias: string,
		policy: TrafficPolicyInput,
		actor?: string,
	): Promise<StoredRoute>;
	/**
	 * What aliases were configured to serve (version and policy after each change) since `since` (whole ms since the
	 * epoch), oldest first: the newest `limit` (default 10,000) changes after `since`, preceded by the last change
	 * before it of each alias that has one of them or a traffic policy now (of the one alias, when name and alias are
	 * given), so aliases untouched in the range and without a policy send nothing.
	 */
	trafficHistory(filter: {
		name?: string;
		alias?: string;
		since: number;
		limit?: number;
	}): Promise<TrafficChange[]>;
	/** The traffic policy of an alias, or undefined when it has none. */
	route(name: string, alias: string): Promise<StoredRoute | undefined>;
	/** Every traffic policy (of one name, when given), sorted by name and alias. */
	routes(name?: string): Promise<StoredRoute[]>;
	/**
	 * Adds bandit arm deltas (rewards received and their sum per version of `name@alias`) to the shared totals with
	 * additive updates, so replicas never overwrite each other.
	 */
	addArmStats(deltas: readonly ArmStats[]): Promise<void>;
	/** The merged bandit arm totals of `name@alias` (of everything when both are omitted). */
	armStats(name?: string, alias?: string): Promise<ArmStats[]>;
	/**
	 * Starts a progressive rollout of `name@alias` to `spec.to`: refused when the alias has one running or paused
	 * (MLSHIP_ALREADY_EXISTS), nothing changed. Sets the first step's split and records a `started` event.
	 */
	startRollout(spec: RolloutSpec, now?: number): Promise<Rollout>;
	/** The rollout of an alias (the newest, ended ones included), or undefined. */
	rollout(name: string, alias: string): Promise<Rollout | undefined>;
	/** Every rollout, sorted by name and alias. */
	rollouts(): Promise<Rollout[]>;
	/**
	 * Changes a rollout only while its state is one of `states` (and, with `owner`, only while that replica holds its
	 * lease); records `event` with it. Returns the updated rollout, or undefined when the condition did not hold.
	 */
	updateRollout(
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
		opts?: { owner?: string; now?: number },
	): Promise<Rollout | undefined>;
	/** Takes (or renews) the lease of every running rollout whose lease is free, expired or `owner`'s. */
	leaseRollouts(
		owner: string,
		leaseMs: number,
		now?: number,
	): Promise<Rollout[]>;
	/** A rollout's events, oldest first (the newest `limit`). */
	rolloutEvents(
		name: string,
		alias: string,
		limit?: number,
	): Promise<RolloutEvent[]>;
	/** A replica's cumulative per-version totals (it alone writes its rows). */
	publishVersionStats(
		replica: string,
		rows: readonly { name: string; version: number; totals: VersionTotals }[],
	): Promise<void>;
	/** A version's totals summed over every replica. */
	versionTotals(name: string, version: number): Promise<VersionTotals>;
	/** Removes an alias's traffic policy (the alias serves its one version again); MLSHIP_MODEL_NOT_FOUND when it has none. */
	clearRoute(name: string, alias: string): Promise<void>;
	/** Merges into the registration metadata (a key set to null is removed); returns the updated version. */
	setMetadata(
		name: string,
		version: number,
		metadata: Record<string, unknown>,
	): Promise<ModelVersion>;
	/** Archives a version; refused while aliases point at it. Archiving an archived version does nothing. */
	archive(name: string, version: number): Promise<void>;
	/** Undoes {@link archive}: the version is active again (bare-name resolution, lists). Restoring an active one does nothing. */
	restore(name: string, version: number): Promise<void>;
	/**
	 * Deletes one version, refused while aliases point at it unless `force` (then they go too); or, without a
	 * version, every version and alias of the name.
	 */
	delete(name: string, version?: number, opts?: DeleteOptions): Promise<void>;
	/** Reads a version's files back and verifies every sha256 (MLSHIP_INTEGRITY on mismatch), every time. */
	openBundle(v: ModelVersion | string): Promise<Bundle>;
	/** Writes (or rewrites) one replica's profile window. */
	saveProfileWindow(w: ProfileWindow): Promise<void>;
	/** Deletes profile and stats windows and alert claims of windows that started before `before` (epoch ms); returns how many rows went. */
	pruneProfileWindows(before: number): Promise<number>;
	/** Profile windows of a model starting at or after `since` (epoch ms), oldest first; every replica's row. */
	profileWindows(model: string, since: number): Promise<ProfileWindow[]>;
	/** Writes (or rewrites) one replica's stats window (requests, errors, latency histogram, quality statistics). */
	saveStatsWindow(w: StatsWindow): Promise<void>;
	/** Stats windows of a model starting at or after `since` (epoch ms), oldest first; every replica's row. */
	statsWindows(model: string, since: number): Promise<StatsWindow[]>;
	/**
	 * Claims the sending of one alert (model, version, subject, window, change): true for the first replica to ask,
	 * false for every later one, so replicas judging the same merged window post it once. Claims older than `before`
	 * go with {@link pruneProfileWindows}.
	 */
	claimAlert(c: AlertClaim): Promise<boolean>;
	/** Calls `onChange` for every later change, from this process and others, in `seq` order. Returns unsubscribe. */
	watch(onChange: (e: ChangeEvent) => void): () => void;
	/** Whether the store is reachable now (a networked store's change feed is connected), and why not. */
	health(): { available: boolean; reason?: string };
	/** The audit log: registry changes are recorded by the store; `record` takes any other action (load, route change…). */
	readonly audit: Audit;
	/** API tokens for servers' access control (only hashes are stored). */
	readonly tokens: Tokens;
	close(): Promise<void>;
}

/** Registration metadata must be a plain JSON object. */
export function checkMetadata(
	metadata: Record<string, unknown>,
): Record<string, unknown> {
	if (
		typeof metadata !== "object" ||
		metadata === null ||
		Array.isArray(metadata)
	)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"metadata must be an object of key → JSON value",
		);
	try {
		JSON.stringify(metadata);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`metadata is not JSON-serializable: ${(err as Error).message}`,
		);
	}
	return metadata;
}
