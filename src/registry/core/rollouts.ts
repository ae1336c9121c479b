// Progressive rollouts in the registry: the rollout row per alias (state, step, lease), its events, and the
// per-version request totals every replica publishes for the checks.
import { MlshipError } from "../../protocol/errors.ts";
import {
	ROLLOUT_LATENCY_BUCKETS_MS,
	type Rollout,
	type RolloutEvent,
	type RolloutSpec,
	type RolloutState,
	type VersionTotals,
} from "../types.ts";
import type { Session } from "./session.ts";

interface RolloutRow {
	name: string;
	alias: string;
	from_version: number;
	to_version: number;
	spec: string;
	state: RolloutState;
	step: number;
	failed: number;
	step_started_at: number | string;
	next_check_at: number | string;
	baseline: string;
	lease_owner: string | null;
	lease_until: number | string | null;
	started_at: number | string;
	updated_at: number | string;
}

const COLUMNS =
	"name, alias, from_version, to_version, spec, state, step, failed, step_started_at, next_check_at, baseline, lease_owner, lease_until, started_at, updated_at";

export const ACTIVE: readonly RolloutState[] = ["running", "paused"];

function toRollout(r: RolloutRow): Rollout {
	const spec = JSON.parse(r.spec) as Omit<RolloutSpec, "name" | "alias" | "to">;
	const out: Rollout = {
		name: r.name,
		alias: r.alias,
		to: Number(r.to_version),
		...spec,
		from: Number(r.from_version),
		state: r.state,
		step: Number(r.step),
		failed: Number(r.failed),
		stepStartedAt: Number(r.step_started_at),
		nextCheckAt: Number(r.next_check_at),
		baseline: JSON.parse(r.baseline) as VersionTotals,
		startedAt: Number(r.started_at),
		updatedAt: Number(r.updated_at),
	};
	if (r.lease_owner !== null) out.leaseOwner = r.lease_owner;
	if (r.lease_until !== null) out.leaseUntil = Number(r.lease_until);
	return out;
}

export function emptyTotals(): VersionTotals {
	return {
		requests: 0,
		errors: 0,
		buckets: new Array(ROLLOUT_LATENCY_BUCKETS_MS.length + 1).fill(0),
	};
}

export async function readRollout(
	s: Session,
	name: string,
	alias: string,
	lock = "",
): Promise<Rollout | undefined> {
	const r = await s.one<RolloutRow>(
		`SELECT ${COLUMNS} FROM rollouts WHERE name = $1 AND alias = $2${lock}`,
		[name, alias],
	);
	return r ? toRollout(r) : undefined;
}

export async function readRollouts(s: Session): Promise<Rollout[]> {
	return (
		await s.all<RolloutRow>(
			`SELECT ${COLUMNS} FROM rollouts ORDER BY name, alias`,
		)
	).map(toRollout);
}

export async function appendEvent(
	s: Session,
	name: string,
	alias: string,
	at: number,
	type: string,
	detail: Record<string, unknown> = {},
): Promise<void> {
	await s.all(
		"INSERT INTO rollout_events (name, alias, at, type, detail) VALUES ($1, $2, $3, $4, $5)",
		[name, alias, at, type, JSON.stringify(detail)],
	);
}

/** Inserts a new rollout (replacing an ended one); refused while one is running or paused. */
export async function insertRollout(
	tx: Session,
	spec: RolloutSpec,
	from: number,
	baseline: VersionTotals,
	now: number,
	lock: string,
): Promise<Rollout> {
	const old = await readRollout(tx, spec.name, spec.alias, lock);
	if (old && ACTIVE.includes(old.state))
		throw new MlshipError(
			"MLSHIP_ALREADY_EXISTS",
			`${spec.name}@${spec.alias} already has a ${old.state} rollout (to version ${old.to}, step ${old.steps[old.step]}%): abort or promote it first (mlship rollout abort ${spec.name}@${spec.alias})`,
		);
	if (old)
		await tx.all("DELETE FROM rollouts WHERE name = $1 AND alias = $2", [
			spec.name,
			spec.alias,
		]);
	const { name, alias, to, ...rest } = spec;
	await tx.all(
		`INSERT INTO rollouts (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, 'running', 0, 0, $6, $7, $8, NULL, NULL, $6, $6)`,
		[
			name,
			alias,
			from,
			to,
			JSON.stringify(rest),
			now,
			now + spec.intervalMs,
			JSON.stringify(baseline),
		],
	);
	await appendEvent(tx, name, alias, now, "started", {
		from,
		to,
		steps: spec.steps,
		weight: spec.steps[0],
	});
	return (await readRollout(tx, name, alias)) as Rollout;
}

/** A conditional update (state in `states`, and the lease `owner`'s when given) with its event. */
export async function patchRollout(
	tx: Session,
	name: string,
	alias: string,
	states: readonly RolloutState[],
	patch: Partial<
		Pick<
			Rollout,
			"state" | "step" | "failed" | "stepStartedAt" | "nextCheckAt" | "baseline"
		>
	>,
	event: { type: string; detail?: Record<string, unknown> },
	now: number,
	owner: string | undefined,
	lock: string,
): Promise<Rollout | undefined> {
	const cur = await readRollout(tx, name, alias, lock);
	if (!cur || !states.includes(cur.state)) return undefined;
	if (
		owner !== undefined &&
		(cur.leaseOwner !== owner || (cur.leaseUntil ?? 0) < now)
	)
		return undefined;
	const next = { ...cur, ...patch };
	await tx.all(
		`UPDATE rollouts SET state = $3, step = $4, failed = $5, step_started_at = $6, next_check_at = $7, baseline = $8,
		updated_at = $9 WHERE name = $1 AND alias = $2`,
		[
			name,
			alias,
			next.state,
			next.step,
			next.failed,
			next.stepStartedAt,
			next.nextCheckAt,
			JSON.stringify(next.baseline),
			now,
		],
	);
	await appendEvent(tx, name, alias, now, event.type, event.detail ?? {});
	return { ...next, updatedAt: now };
}

/** Takes or renews the lease of running rollouts that are free, expired, or already `owner`'s. */
export async function leaseRollouts(
	tx: Session,
	owner: string,
	leaseMs: number,
	now: number,
): Promise<Rollout[]> {
	const rows = await tx.all<RolloutRow>(
		`UPDATE rollouts SET lease_owner = $1, lease_until = $2
		WHERE state = 'running' AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $3)
		RETURNING ${COLUMNS}`,
		[owner, now + leaseMs, now],
	);
	return rows.map(toRollout);
}

export async function readEvents(
	s: Session,
	name: string,
	alias: string,
	limit: number,
): Promise<RolloutEvent[]> {
	const rows = await s.all<{
		seq: number | string;
		name: string;
		alias: string;
		at: number | string;
		type: string;
		detail: string;
	}>(
		"SELECT seq, name, alias, at, type, detail FROM rollout_events WHERE name = $1 AND alias = $2 ORDER BY seq DESC LIMIT $3",
		[name, alias, limit],
	);
	return rows.reverse().map((r) => ({
		seq: Number(r.seq),
		name: r.name,
		alias: r.alias,
		at: Number(r.at),
		type: r.type,
		detail: JSON.parse(r.detail) as Record<string, unknown>,
	}));
}

export async function publishStats(
	tx: Session,
	replica: string,
	rows: readonly { name: string; version: number; totals: VersionTotals }[],
	now: number,
): Promise<void> {
	for (const r of rows)
		await tx.all(
			`INSERT INTO version_stats (replica, name, version, requests, errors, buckets, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (replica, name, version) DO UPDATE SET requests = excluded.requests, errors = excluded.errors,
			buckets = excluded.buckets, updated_at = excluded.updated_at`,
			[
				replica,
				r.name,
				r.version,
				r.totals.requests,
				r.totals.errors,
				JSON.stringify(r.totals.buckets),
				now,
			],
		);
}

export async function sumStats(
	s: Session,
	name: string,
	version: number,
): Promise<VersionTotals> {
	const rows = await s.all<{
		requests: number | string;
		errors: number | string;
		buckets: string;
	}>(
		"SELECT requests, errors, buckets FROM version_stats WHERE name = $1 AND version = $2",
		[name, version],
	);
	const t = emptyTotals();
	for (const r of rows) {
		t.requests += Number(r.requests);
		t.errors += Number(r.errors);
		const b = JSON.parse(r.buckets) as number[];
		for (let i = 0; i < t.buckets.length; i++)
			t.buckets[i] = (t.buckets[i] as number) + (b[i] ?? 0);
	}
	return t;
}
