// Traffic policies in the registry: read, write and check them inside the core's sessions (both databases).
import {
	checkPolicy,
	newSalt,
	parsePolicy,
	type StoredRoute,
	servingVersions,
	type TrafficPolicy,
	type TrafficPolicyInput,
} from "../../experiments/policy.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Dialect, Session } from "./session.ts";

interface RouteRow {
	name: string;
	alias: string;
	policy: string | TrafficPolicy;
	salt: string;
	actor: string | null;
	updated_at: string | Date;
}

function toRoute(row: RouteRow): StoredRoute {
	const policy = (
		typeof row.policy === "string" ? JSON.parse(row.policy) : row.policy
	) as TrafficPolicy;
	const r: StoredRoute = {
		name: row.name,
		alias: row.alias,
		policy: { ...policy, salt: row.salt },
		updatedAt:
			row.updated_at instanceof Date
				? row.updated_at.toISOString()
				: row.updated_at,
	};
	if (row.actor !== null) r.actor = row.actor;
	return r;
}

/** Checks a client's policy before any database work: its shape, with the salt filled in if missing. */
export function parseInput(
	name: string,
	alias: string,
	input: TrafficPolicyInput,
): TrafficPolicy {
	const obj =
		typeof input === "object" && input !== null && !Array.isArray(input)
			? input
			: undefined;
	if (!obj)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid traffic policy for ${name}@${alias}: expected an object with split, sticky, shadow or bandit`,
		);
	return parsePolicy({ ...obj, salt: obj.salt ?? "unset" }, `${name}@${alias}`);
}

export async function readRoute(
	s: Session,
	name: string,
	alias: string,
): Promise<StoredRoute | undefined> {
	const row = await s.one<RouteRow>(
		"SELECT * FROM traffic_policies WHERE name = $1 AND alias = $2",
		[name, alias],
	);
	return row ? toRoute(row) : undefined;
}

/** The policies of the aliases of these models, in statements of at most 1,000 names (bulk changes). */
export async function readRoutesOf(
	s: Session,
	names: readonly string[],
): Promise<StoredRoute[]> {
	const out: StoredRoute[] = [];
	for (let i = 0; i < names.length; i += 1000) {
		const chunk = names.slice(i, i + 1000);
		const rows = await s.all<RouteRow>(
			`SELECT * FROM traffic_policies WHERE name IN (${chunk.map((_, j) => `$${j + 1}`).join(", ")})`,
			chunk,
		);
		out.push(...rows.map(toRoute));
	}
	return out;
}

export async function readRoutes(
	s: Session,
	dialect: Dialect,
	name: string | undefined,
): Promise<StoredRoute[]> {
	const rows = await s.all<RouteRow>(
		`SELECT * FROM traffic_policies WHERE (CAST($1 AS TEXT) IS NULL OR name = $1)
		 ORDER BY name${dialect.binary}, alias${dialect.binary}`,
		[name ?? null],
	);
	return rows.map(toRoute);
}

/**
 * Writes a policy in the caller's write transaction, after checking it against the alias (which must exist) and
 * the model's versions. `aliasVersion` is the alias's version, read (locked) by the caller.
 */
export async function writeRoute(
	tx: Session,
	dialect: Dialect,
	p: {
		name: string;
		alias: string;
		aliasVersion: number;
		input: TrafficPolicyInput;
		parsed: TrafficPolicy;
		actor: string | undefined;
	},
): Promise<StoredRoute> {
	const versions = new Map<number, "active" | "archived">();
	for (const r of await tx.all<{
		version: number;
		status: "active" | "archived";
	}>("SELECT version, status FROM versions WHERE name = $1", [p.name]))
		versions.set(Number(r.version), r.status);
	const before = await readRoute(tx, p.name, p.alias);
	const salt = p.input.salt ?? before?.policy.salt ?? newSalt();
	const policy: TrafficPolicy = { ...p.parsed, salt };
	checkPolicy(policy, {
		name: p.name,
		alias: p.alias,
		aliasVersion: p.aliasVersion,
		versions,
	});
	const { salt: _, ...body } = policy;
	await tx.all(
		`INSERT INTO traffic_policies (name, alias, policy, salt, actor, updated_at)
		 VALUES ($1, $2, $3, $4, $5, ${dialect.now})
		 ON CONFLICT (name, alias) DO UPDATE SET policy = excluded.policy, salt = excluded.salt,
		   actor = excluded.actor, updated_at = excluded.updated_at`,
		[p.name, p.alias, JSON.stringify(body), salt, p.actor ?? null],
	);
	return (await readRoute(tx, p.name, p.alias)) as StoredRoute;
}

/** The aliases whose policy names `version` (serving or shadow), to refuse archiving it. */
export async function routesUsing(
	s: Session,
	dialect: Dialect,
	name: string,
	version: number,
): Promise<string[]> {
	const out: string[] = [];
	for (const r of await readRoutes(s, dialect, name)) {
		const p = r.policy;
		if (
			servingVersions(p)?.includes(version) ||
			p.shadow?.some((x) => x.version === version)
		)
			out.push(r.alias);
	}
	return out;
}
