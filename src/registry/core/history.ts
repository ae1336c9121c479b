// The history of what each alias was configured to serve: its version and traffic policy after every change,
// written in the transaction of the change (alias moves, policy set or cleared, rollout steps alike).
import type { TrafficPolicy } from "../../experiments/policy.ts";
import type { TrafficChange } from "../types.ts";
import { currentActor } from "./audit.ts";
import { readRoutesOf } from "./routes.ts";
import { insertRows, placeholders } from "./rows.ts";
import type { PendingChange, Session } from "./session.ts";

/** Newest rows a read returns at most. */
export const MAX_HISTORY_ROWS = 100_000;

interface HistoryRow {
	seq: number | string;
	name: string;
	alias: string;
	at: number | string;
	version: number | string | null;
	policy: string | null;
	actor: string;
}

function toChange(r: HistoryRow): TrafficChange {
	return {
		name: r.name,
		alias: r.alias,
		at: Number(r.at),
		version: r.version === null ? null : Number(r.version),
		policy:
			r.policy === null
				? null
				: (JSON.parse(r.policy) as Omit<TrafficPolicy, "salt">),
		actor: r.actor,
	};
}

/**
 * Records, inside the change's own transaction, the state after it of every alias the pending changes touched
 * (alias set or deleted, route set or cleared): a change that did not commit leaves no row.
 */
export async function recordHistory(
	tx: Session,
	pending: readonly PendingChange[],
	now = Date.now(),
): Promise<void> {
	const keys = new Map<string, { name: string; alias: string }>();
	// Per-entity members' aliases are left out: they carry no traffic policy and the page does not draw them, and a
	// bulk registration of 100,000 of them would fill the history the page reads.
	for (const e of pending)
		if (
			e.alias !== undefined &&
			(e.entity === undefined || e.entity === null) &&
			(e.type === "route" ||
				e.type === "alias_set" ||
				e.type === "alias_deleted")
		)
			keys.set(`${e.name}\0${e.alias}`, { name: e.name, alias: e.alias });
	if (keys.size === 0) return;
	// One read of the aliases and one of the policies per 1,000 models, not two per alias: a bulk registration of
	// 100,000 entities each with an alias stays a few statements.
	const names = [...new Set([...keys.values()].map((k) => k.name))];
	const versions = new Map<string, number>();
	for (let i = 0; i < names.length; i += 1000) {
		const chunk = names.slice(i, i + 1000);
		const rows = await tx.all<{
			name: string;
			alias: string;
			version: number | string;
		}>(
			`SELECT name, alias, version FROM aliases WHERE name IN (${chunk.map((_, j) => `$${j + 1}`).join(", ")})`,
			chunk,
		);
		for (const r of rows)
			versions.set(`${r.name}\0${r.alias}`, Number(r.version));
	}
	const policies = new Map<string, string>();
	for (const route of await readRoutesOf(tx, names)) {
		const { salt: _, ...body } = route.policy;
		policies.set(`${route.name}\0${route.alias}`, JSON.stringify(body));
	}
	const actor = currentActor().actor.slice(0, 500);
	await insertRows(
		tx,
		"INSERT INTO traffic_policy_history (name, alias, at, version, policy, actor)",
		[...keys].map(([key, k]) => [
			k.name,
			k.alias,
			now,
			versions.get(key) ?? null,
			policies.get(key) ?? null,
			actor,
		]),
		placeholders(6),
	);
}

/**
 * The changes since `since` (ms since the epoch), oldest first, the newest `limit` of them, preceded by the last
 * change before `since` (what it served when the range began) of the one alias asked for by name and alias, else of
 * each alias that has one of those changes or a traffic policy now: an alias untouched in the range and without a
 * policy (an entity's alias among 100,000) sends nothing, so the answer is at most `limit` rows plus one per alias
 * with a policy.
 */
export async function readHistory(
	s: Session,
	filter: { name?: string; alias?: string; since: number; limit: number },
): Promise<TrafficChange[]> {
	const where =
		"(CAST($1 AS TEXT) IS NULL OR name = $1) AND (CAST($2 AS TEXT) IS NULL OR alias = $2)";
	const args = [filter.name ?? null, filter.alias ?? null, filter.since];
	const during = `SELECT * FROM traffic_policy_history WHERE ${where} AND at >= $3
		 ORDER BY seq DESC LIMIT ${filter.limit}`;
	const keys =
		filter.name !== undefined && filter.alias !== undefined
			? "SELECT CAST($1 AS TEXT) AS name, CAST($2 AS TEXT) AS alias"
			: `SELECT name, alias FROM (${during}) d
			   UNION SELECT name, alias FROM traffic_policies WHERE ${where}`;
	// Each key's last row before the range, through the (name, alias, at) index.
	const before = await s.all<HistoryRow>(
		`SELECT * FROM traffic_policy_history WHERE seq IN (
		   SELECT (SELECT max(h.seq) FROM traffic_policy_history h
		           WHERE h.name = k.name AND h.alias = k.alias AND h.at < $3)
		   FROM (${keys}) k)
		 ORDER BY seq`,
		args,
	);
	const rows = await s.all<HistoryRow>(during, args);
	return [...before, ...rows.reverse()].map(toChange);
}
