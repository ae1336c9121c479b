// Bandit arm totals in the registry: replicas add their deltas (pulls, reward sums) and read the merged totals.
import type { ArmStats } from "../types.ts";
import type { Session } from "./session.ts";

/**
 * Adds deltas to the stored totals, one additive upsert per arm (`pulls = pulls + $n`), so replicas flushing at
 * once never lose each other's counts.
 */
export async function addArmStats(
	tx: Session,
	deltas: readonly ArmStats[],
): Promise<void> {
	for (const d of deltas)
		await tx.all(
			`INSERT INTO bandit_arms (name, alias, version, pulls, reward_sum) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name, alias, version) DO UPDATE SET pulls = bandit_arms.pulls + excluded.pulls,
			reward_sum = bandit_arms.reward_sum + excluded.reward_sum`,
			[d.name, d.alias, d.version, d.pulls, d.rewardSum],
		);
}

/** The merged totals of every arm of `name@alias` (of every alias of every name when both are omitted). */
export async function readArmStats(
	s: Session,
	name?: string,
	alias?: string,
): Promise<ArmStats[]> {
	const rows = await s.all<{
		name: string;
		alias: string;
		version: number;
		pulls: number | string;
		reward_sum: number;
	}>(
		name === undefined
			? "SELECT name, alias, version, pulls, reward_sum FROM bandit_arms ORDER BY name, alias, version"
			: "SELECT name, alias, version, pulls, reward_sum FROM bandit_arms WHERE name = $1 AND alias = $2 ORDER BY version",
		name === undefined ? [] : [name, alias ?? ""],
	);
	return rows.map((r) => ({
		name: r.name,
		alias: r.alias,
		version: Number(r.version),
		pulls: Number(r.pulls),
		rewardSum: Number(r.reward_sum),
	}));
}
