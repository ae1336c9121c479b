// Traffic policies on an alias (split, sticky key, shadow, bandit): their shape, their validation, the sticky hash.
import { z } from "zod";
import { MlshipError } from "../protocol/errors.ts";

/** Where a sticky key is read from: a request header, a request parameter (OIP `parameters`), or a feature. */
export type StickyFrom = "header" | "param" | "feature";

/** The bandit algorithms a policy may name (their state and choice live with the feedback work). */
export type BanditAlgorithm = "thompson" | "epsilon" | "ucb1";

const version = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const keyName = z
	.string()
	.min(1)
	.max(200)
	// biome-ignore lint/suspicious/noControlCharactersInRegex: the class exists to refuse control characters.
	.regex(/^[^\x00-\x1f\x7f]+$/, "no control characters");

/** The JSON shape of a traffic policy, as stored in the registry and sent by clients. */
export const TrafficPolicySchema = z
	.object({
		/** Weighted versions (weights in percent, summing to 100). Exclusive with `bandit`. */
		split: z
			.array(
				z
					.object({
						version,
						weight: z.number().gt(0).max(100),
					})
					.strict(),
			)
			.min(1)
			.max(100)
			.optional(),
		/** With a split: the version is a hash of `salt` and this key, so a key always gets the same version. */
		sticky: z
			.object({
				key: keyName,
				from: z.enum(["header", "param", "feature"]),
			})
			.strict()
			.optional(),
		/** Versions that score a copy of `percent` % of requests after the primary answered (never returned). */
		shadow: z
			.array(
				z
					.object({
						version,
						percent: z.number().gt(0).max(100),
					})
					.strict(),
			)
			.min(1)
			.max(10)
			.optional(),
		/** A multi-armed bandit over `arms` (versions); exclusive with `split`. */
		bandit: z
			.object({
				algorithm: z.enum(["thompson", "epsilon", "ucb1"]),
				epsilon: z.number().gt(0).max(1).optional(),
				arms: z.array(version).max(100),
			})
			.strict()
			.optional(),
		/** The experiment's salt: changing it reshuffles sticky keys. */
		salt: z.string().min(1).max(200),
	})
	.strict();

/** A traffic policy on an alias. */
export type TrafficPolicy = z.infer<typeof TrafficPolicySchema>;

/** A policy as a client writes it: the salt may be left out (the stored one is kept, or one is made). */
export type TrafficPolicyInput = Omit<TrafficPolicy, "salt"> & {
	salt?: string;
};

/** A policy stored on an alias. */
export interface StoredRoute {
	name: string;
	alias: string;
	policy: TrafficPolicy;
	/** ISO 8601 time of the last change. */
	updatedAt: string;
	/** Who set it, when the caller said. */
	actor?: string;
}

/** What validation needs to know of the model: each version's status, and the version the alias points at. */
export interface PolicyContext {
	name: string;
	alias: string;
	/** The alias's version (the primary when the policy has neither split nor bandit). */
	aliasVersion: number;
	versions: ReadonlyMap<number, "active" | "archived">;
}

function bad(where: string, message: string): MlshipError {
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`invalid traffic policy for ${where}: ${message}`,
	);
}

/**
 * Parses and checks a policy's shape (no registry needed): weights summing to 100, no version twice, a bandit
 * with at least 2 arms and no split, a sticky key only with a split, at least one of split, shadow or bandit.
 * Throws MLSHIP_INVALID_ARGUMENT naming what is wrong.
 */
export function parsePolicy(
	input: unknown,
	where = "the alias",
): TrafficPolicy {
	const r = TrafficPolicySchema.safeParse(input);
	if (!r.success) {
		const issue = r.error.issues[0];
		const path = issue?.path.join(".") || "policy";
		throw bad(where, `${path}: ${issue?.message ?? "invalid"}`);
	}
	const p = r.data;
	if (!p.split && !p.shadow && !p.bandit)
		throw bad(
			where,
			"it has no split, shadow or bandit (to remove a policy, clear it)",
		);
	if (p.split && p.bandit)
		throw bad(where, "a split and a bandit are exclusive: give one");
	if (p.split) {
		const sum = p.split.reduce((s, a) => s + a.weight, 0);
		if (Math.abs(sum - 100) > 1e-9)
			throw bad(
				where,
				`split weights must sum to 100, got ${+sum.toFixed(6)} (${p.split.map((a) => `${a.version}=${a.weight}`).join(",")})`,
			);
		twice(
			where,
			"split",
			p.split.map((a) => a.version),
		);
	}
	if (p.bandit) {
		twice(where, "bandit arms", p.bandit.arms);
		if (p.bandit.arms.length < 2)
			throw bad(
				where,
				`a bandit needs at least 2 arms, got ${p.bandit.arms.length}`,
			);
		if (p.bandit.epsilon !== undefined && p.bandit.algorithm !== "epsilon")
			throw bad(where, "epsilon is only for the 'epsilon' bandit algorithm");
	}
	if (p.sticky && !p.split)
		throw bad(
			where,
			"a sticky key needs a split (it picks among its versions)",
		);
	if (p.shadow) {
		twice(
			where,
			"shadow",
			p.shadow.map((s) => s.version),
		);
		const primary = new Set(servingVersions(p) ?? []);
		for (const s of p.shadow)
			if (primary.has(s.version))
				throw bad(
					where,
					`version ${s.version} cannot shadow itself: it already serves in the ${p.split ? "split" : "bandit"}`,
				);
	}
	return p;
}

function twice(where: string, what: string, versions: number[]): void {
	const seen = new Set<number>();
	for (const v of versions) {
		if (seen.has(v))
			throw bad(where, `version ${v} is listed twice in the ${what}`);
		seen.add(v);
	}
}

/** The versions that answer requests under a policy (split or bandit arms), or undefined: the alias's version. */
export function servingVersions(p: TrafficPolicy): number[] | undefined {
	if (p.split) return p.split.map((a) => a.version);
	if (p.bandit) return [...p.bandit.arms];
	return undefined;
}

/** Every version a policy needs loaded: the serving ones (or the alias's) and the shadows, without repeats. */
export function policyVersions(
	p: TrafficPolicy,
	aliasVersion: number,
): number[] {
	const out = [...(servingVersions(p) ?? [aliasVersion])];
	for (const s of p.shadow ?? [])
		if (!out.includes(s.version)) out.push(s.version);
	return out;
}

/**
 * Checks a parsed policy against the model: every version it names exists and is active, and no shadow is the
 * primary (the alias's version when there is no split or bandit). Throws MLSHIP_INVALID_ARGUMENT (or
 * MLSHIP_MODEL_NOT_FOUND for a version that does not exist).
 */
export function checkPolicy(p: TrafficPolicy, ctx: PolicyContext): void {
	const where = `${ctx.name}@${ctx.alias}`;
	const named = [
		...(p.split?.map((a) => a.version) ?? []),
		...(p.bandit?.arms ?? []),
		...(p.shadow?.map((s) => s.version) ?? []),
	];
	const have = [...ctx.versions.keys()].sort((a, b) => a - b);
	for (const v of named) {
		const status = ctx.versions.get(v);
		if (status === undefined)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`invalid traffic policy for ${where}: model '${ctx.name}' has no version ${v} (versions: ${have.join(", ") || "none"})`,
			);
		if (status === "archived")
			throw bad(
				where,
				`version ${v} is archived (restore it first: mlship models restore ${ctx.name} ${v})`,
			);
	}
	if (!servingVersions(p))
		for (const s of p.shadow ?? [])
			if (s.version === ctx.aliasVersion)
				throw bad(
					where,
					`version ${s.version} cannot shadow itself: '${ctx.alias}' points at it`,
				);
}

/** A new random salt (stored with the policy, so every replica hashes alike). */
export function newSalt(): string {
	return Math.random().toString(36).slice(2, 12).padEnd(10, "0");
}

/**
 * The sticky bucket of a key in [0, 100): FNV-1a (32-bit) over the UTF-16 code units of `salt`, a NUL, then
 * `key`, finished with murmur3's fmix32 so nearby keys spread. Deterministic across replicas and restarts; no
 * allocation.
 * @example stickyBucket("s1", "customer-42") // the same number on every replica
 */
export function stickyBucket(salt: string, key: string): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < salt.length; i++)
		h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193);
	h = Math.imul(h, 0x01000193); // the NUL separator
	for (let i = 0; i < key.length; i++)
		h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
	h ^= h >>> 16;
	h = Math.imul(h, 0x85ebca6b);
	h ^= h >>> 13;
	h = Math.imul(h, 0xc2b2ae35);
	h ^= h >>> 16;
	return ((h >>> 0) / 4294967296) * 100;
}

/** The split arm whose cumulative weight range holds `bucket` (in [0, 100)). */
export function pickArm(
	split: readonly { version: number; weight: number }[],
	bucket: number,
): number {
	let acc = 0;
	for (const a of split) {
		acc += a.weight;
		if (bucket < acc) return a.version;
	}
	return (split[split.length - 1] as { version: number }).version;
}

/**
 * Chooses a bandit arm for a request. The feedback work supplies one that learns from rewards shared through
 * the registry; the default ({@link uniformChooser}) picks uniformly.
 */
export interface ArmChooser {
	choose(
		name: string,
		alias: string,
		bandit: NonNullable<TrafficPolicy["bandit"]>,
	): number;
	/** A reward (feedback) for the arm `version` of the bandit on `name@alias`; learning choosers implement it. */
	reward?(
		name: string,
		alias: string,
		version: number,
		reward: number,
		algorithm: NonNullable<TrafficPolicy["bandit"]>["algorithm"],
	): void;
	/** Flushes what it learned (the data plane calls it on close). */
	close?(): Promise<void>;
}

/** Picks an arm uniformly at random (the default until a learning chooser is injected). */
export const uniformChooser: ArmChooser = {
	choose(_name, _alias, bandit) {
		return bandit.arms[
			Math.floor(Math.random() * bandit.arms.length)
		] as number;
	},
};

/**
 * Parses the CLI's `3=90,4=10` into versions and numbers (weights or percents).
 * @example parsePairs("3=90,4=10", "--split") // [{version: 3, value: 90}, {version: 4, value: 10}]
 */
export function parsePairs(
	text: string,
	flag: string,
): { version: number; value: number }[] {
	return text.split(",").map((part) => {
		const m = /^\s*(\d+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
		if (!m)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${flag} expects version=number pairs separated by commas (e.g. 3=90,4=10), got '${part}'`,
			);
		return { version: Number(m[1]), value: Number(m[2]) };
	});
}
