// Starting a rollout from text settings (the `mlship rollout start` flags, the dashboard's form): one parser, one
// set of defaults, one call into the registry.
import { parseDuration } from "../protocol/duration.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { ModelStore, Rollout, RolloutSpec } from "../registry/types.ts";

/** The settings of a rollout as text, as a user types them (`--steps 5,25,50,100`, `--interval 60s`, …). */
export interface RolloutSettings {
	to: string;
	steps?: string;
	interval?: string;
	maxErrorRate?: string;
	/** Not checked when left out. */
	maxP99Ms?: string;
	minRequests?: string;
	failures?: string;
}

/** What a setting left out means (the CLI's flag defaults and the dashboard form's initial values). */
export const ROLLOUT_DEFAULTS = {
	steps: "5,25,50,100",
	interval: "60s",
	maxErrorRate: "1%",
	minRequests: "100",
	failures: "3",
} as const;

/** How errors name each setting: the CLI's flags by default. */
export type SettingNames = Record<keyof RolloutSettings, string>;

export const FLAG_NAMES: SettingNames = {
	to: "--to",
	steps: "--steps",
	interval: "--interval",
	maxErrorRate: "--max-error-rate",
	maxP99Ms: "--max-p99-ms",
	minRequests: "--min-requests",
	failures: "--failures",
};

function bad(message: string): MlshipError {
	return new MlshipError("MLSHIP_INVALID_ARGUMENT", message);
}

/** `1%`, `0.5%` or a fraction `0.01` → a fraction. */
export function parseRate(text: string, flag: string): number {
	const m = /^\s*(\d*\.?\d+)\s*(%?)\s*$/.exec(text);
	const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN;
	if (!(v >= 0 && v <= 1))
		throw bad(`${flag} expects a rate such as 1% or 0.01, got '${text}'`);
	return v;
}

function whole(text: string, flag: string, min: number): number {
	if (!/^\s*\d+\s*$/.test(text) || Number(text) < min)
		throw bad(`${flag} expects a whole number ≥ ${min}, got '${text}'`);
	return Number(text);
}

/** The registry's spec from text settings (defaults filled in); errors name the setting as `names` says. */
export function rolloutSpec(
	name: string,
	alias: string,
	s: RolloutSettings,
	names: SettingNames = FLAG_NAMES,
): RolloutSpec {
	for (const [k, v] of Object.entries(s))
		if (v !== undefined && (typeof v !== "string" || v.length > 200))
			throw bad(
				`${names[k as keyof RolloutSettings] ?? k} must be text of at most 200 characters`,
			);
	const stepsText = s.steps ?? ROLLOUT_DEFAULTS.steps;
	const steps = stepsText.split(",").map((x) => {
		if (!/^\s*\d*\.?\d+\s*$/.test(x))
			throw bad(
				`${names.steps} expects percentages separated by commas (e.g. 5,25,50,100), got '${stepsText}'`,
			);
		return Number(x);
	});
	return {
		name,
		alias,
		to: whole(s.to, names.to, 1),
		steps,
		intervalMs: parseDuration(
			s.interval ?? ROLLOUT_DEFAULTS.interval,
			names.interval,
		),
		maxErrorRate: parseRate(
			s.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate,
			names.maxErrorRate,
		),
		minRequests: whole(
			s.minRequests ?? ROLLOUT_DEFAULTS.minRequests,
			names.minRequests,
			1,
		),
		failures: whole(s.failures ?? ROLLOUT_DEFAULTS.failures, names.failures, 1),
		...(s.maxP99Ms !== undefined && s.maxP99Ms.trim() !== ""
			? { maxP99Ms: parseDuration(s.maxP99Ms, names.maxP99Ms, "ms") }
			: {}),
	};
}

/**
 * Starts a rollout of `name@alias` from text settings: what `mlship rollout start` and the dashboard both call.
 * The registry audits it (`rollout.started`) as the running code's actor.
 * @example await startRolloutFrom(store, "churn", "production", { to: "4", steps: "10,50,100" });
 */
export function startRolloutFrom(
	store: ModelStore,
	name: string,
	alias: string,
	settings: RolloutSettings,
	names: SettingNames = FLAG_NAMES,
): Promise<Rollout> {
	return store.startRollout(rolloutSpec(name, alias, settings, names));
}
