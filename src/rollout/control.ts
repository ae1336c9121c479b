// What `mlship rollout pause|resume|abort|promote` do to a rollout in the registry (any process may call them).
import { MlshipError } from "../protocol/errors.ts";
import type { ModelStore, Rollout, RolloutState } from "../registry/types.ts";
import { clearSplit, promote } from "./agent.ts";

function none(
	name: string,
	alias: string,
	states: readonly RolloutState[],
	r: Rollout | undefined,
): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		r === undefined
			? `${name}@${alias} has no rollout (start one: mlship rollout start ${name}@${alias} --to VERSION)`
			: `${name}@${alias}'s rollout is ${r.state}, not ${states.join(" or ")}: nothing changed`,
	);
}

async function change(
	store: ModelStore,
	name: string,
	alias: string,
	states: readonly RolloutState[],
	patch: (r: Rollout) => Promise<Parameters<ModelStore["updateRollout"]>[3]>,
	type: string,
	by: string,
): Promise<Rollout> {
	const r = await store.rollout(name, alias);
	if (!r || !states.includes(r.state)) throw none(name, alias, states, r);
	const updated = await store.updateRollout(
		name,
		alias,
		states,
		await patch(r),
		{ type, detail: { by } },
	);
	if (!updated)
		throw none(name, alias, states, await store.rollout(name, alias));
	return updated;
}

/** Stops checks and steps; the split stays where it is. */
export function pauseRollout(
	store: ModelStore,
	name: string,
	alias: string,
	by = "cli",
): Promise<Rollout> {
	return change(
		store,
		name,
		alias,
		["running"],
		async () => ({ state: "paused" }),
		"paused",
		by,
	);
}

/** Checks and steps again; the next check is one interval away and looks at what comes after now. */
export function resumeRollout(
	store: ModelStore,
	name: string,
	alias: string,
	now = Date.now(),
	by = "cli",
): Promise<Rollout> {
	return change(
		store,
		name,
		alias,
		["paused"],
		async (r) => ({
			state: "running",
			nextCheckAt: now + r.intervalMs,
			baseline: await store.versionTotals(r.name, r.to),
		}),
		"resumed",
		by,
	);
}

/** Ends it and sends all traffic back to the previous version. */
export async function abortRollout(
	store: ModelStore,
	name: string,
	alias: string,
	by = "cli",
): Promise<Rollout> {
	const r = await change(
		store,
		name,
		alias,
		["running", "paused"],
		async () => ({ state: "aborted" }),
		"aborted",
		by,
	);
	await clearSplit(store, r);
	return r;
}

/** Ends it and moves the alias to the new version now. */
export async function promoteRollout(
	store: ModelStore,
	name: string,
	alias: string,
	by = "cli",
): Promise<Rollout> {
	const r = await change(
		store,
		name,
		alias,
		["running", "paused"],
		async () => ({ state: "promoted" }),
		"promoted",
		by,
	);
	await promote(store, r);
	return r;
}
