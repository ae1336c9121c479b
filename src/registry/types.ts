// The registry's vocabulary: model references, versions, change events, and the ModelStore interface.
import type { Bundle } from "../bundle/bundle.ts";
import type { Manifest } from "../bundle/manifest.ts";
import type { StoredRoute, TrafficPolicyInput } from "../experiments/policy.ts";
import { MlshipError } from "../protocol/errors.ts";

/** One arm's totals (or a replica's delta): rewards received and their sum. */
export interface ArmStats {
	name: string;
	alias: string;
	version: number;
	/** Rewards received for the arm (a request without feedback is not a pull). */
	pulls: number;
	rewardSum: number;
}

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
	/** Calls `onChange` for every later change, from this process and others, in `seq` order. Returns unsubscribe. */
	watch(onChange: (e: ChangeEvent) => void): () => void;
	/** Whether the store is reachable now (a networked store's change feed is connected), and why not. */
	health(): { available: boolean; reason?: string };
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
