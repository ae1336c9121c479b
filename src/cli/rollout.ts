// `mlship rollout start|status|pause|resume|abort|promote`: progressive delivery of a new version on an alias.
import { Command } from "commander";
import { MlshipError } from "../protocol/errors.ts";
import type { ModelStore, Rollout, RolloutEvent } from "../registry/types.ts";
import { parseRef } from "../registry/types.ts";
import {
	abortRollout,
	pauseRollout,
	promoteRollout,
	resumeRollout,
} from "../rollout/control.ts";
import { ROLLOUT_DEFAULTS, startRolloutFrom } from "../rollout/spec.ts";
import { action, example, output, textTable } from "./common.ts";
import { type CommonOpts, common, withRegistry } from "./models-common.ts";

interface StartOpts extends CommonOpts {
	to: string;
	steps: string;
	interval: string;
	maxErrorRate: string;
	maxP99Ms?: string;
	minRequests: string;
	failures: string;
}

function bad(message: string): MlshipError {
	return new MlshipError("MLSHIP_INVALID_ARGUMENT", message);
}

/** `churn@production` → name and alias (an alias is required: a rollout moves one). */
export function aliasRef(ref: string): { name: string; alias: string } {
	const r = parseRef(ref);
	if (r.alias === undefined)
		throw bad(
			`a rollout moves an alias: give NAME@ALIAS (e.g. churn@production), got '${ref}'`,
		);
	return { name: r.name, alias: r.alias };
}

function line(r: Rollout): string[] {
	return [
		`${r.name}@${r.alias}`,
		`${r.from} → ${r.to}`,
		r.state,
		`${r.steps[r.step]}% (${r.step + 1}/${r.steps.length})`,
		`${r.failed}/${r.failures}`,
		r.leaseOwner !== undefined && (r.leaseUntil ?? 0) > Date.now()
			? r.leaseOwner
			: "-",
	];
}

const HEADER = [
	"rollout",
	"versions",
	"state",
	"step",
	"failed checks",
	"driven by",
];

function describe(r: Rollout, events: RolloutEvent[]): string {
	const spec = `steps ${r.steps.join(",")} · every ${r.intervalMs} ms · max error ${(r.maxErrorRate * 100).toFixed(2)}%${r.maxP99Ms !== undefined ? ` · max p99 ${r.maxP99Ms} ms` : ""} · min ${r.minRequests} requests · rollback after ${r.failures} failed checks`;
	const ev = events.map((e) => [
		new Date(e.at).toISOString(),
		e.type,
		Object.entries(e.detail)
			.map(
				([k, v]) =>
					`${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`,
			)
			.join(" "),
	]);
	return `${textTable(HEADER, [line(r)])}\n${spec}\n\n${textTable(["at", "event", "detail"], ev)}`;
}

export function rolloutCommand(): Command {
	const start = common(
		new Command("start")
			.description(
				"Start a progressive rollout: the alias splits traffic to the new version step by step while checks pass, and goes back after --failures failed checks",
			)
			.argument("<name@alias>", "the alias to move, e.g. churn@production")
			.requiredOption("--to <version>", "the version to roll out")
			.option(
				"--steps <percents>",
				"traffic to the new version at each step, the last 100",
				ROLLOUT_DEFAULTS.steps,
			)
			.option(
				"--interval <duration>",
				"time between checks (each step lasts at least this long)",
				ROLLOUT_DEFAULTS.interval,
			)
			.option(
				"--max-error-rate <rate>",
				"highest error rate of the new version a check accepts (1% or 0.01)",
				ROLLOUT_DEFAULTS.maxErrorRate,
			)
			.option(
				"--max-p99-ms <ms>",
				"highest p99 latency of the new version a check accepts (default: not checked)",
			)
			.option(
				"--min-requests <n>",
				"fewest requests to the new version a check needs (with fewer it waits)",
				ROLLOUT_DEFAULTS.minRequests,
			)
			.option(
				"--failures <n>",
				"failed checks that roll back to the previous version",
				ROLLOUT_DEFAULTS.failures,
			),
	).action(
		action(async (ref: string, o: StartOpts) => {
			const { name, alias } = aliasRef(ref);
			const r = await withRegistry(o.registry, (store) =>
				startRolloutFrom(store, name, alias, {
					to: o.to,
					steps: o.steps,
					interval: o.interval,
					maxErrorRate: o.maxErrorRate,
					minRequests: o.minRequests,
					failures: o.failures,
					...(o.maxP99Ms !== undefined && { maxP99Ms: o.maxP99Ms }),
				}),
			);
			output(
				Boolean(o.json),
				r,
				() =>
					`rollout of ${name}@${alias} started: version ${r.from} → ${r.to}, ${r.steps[0]}% now; every serving replica takes part (one drives it at a time)`,
			);
		}),
	);
	example(
		start,
		"mlship rollout start churn@production --to 4 --steps 5,25,50,100 --interval 60s --max-error-rate 1% --max-p99-ms 50 --min-requests 100",
		"mlship rollout start churn@production --to 4 --failures 3 --json",
	);

	const status = common(
		new Command("status")
			.description(
				"Show rollouts: state, step, failed checks, the replica driving it, and each rollout's events",
			)
			.argument("[name@alias]", "one rollout (default: all)"),
	).action(
		action(async (ref: string | undefined, o: CommonOpts) => {
			await withRegistry(o.registry, async (store: ModelStore) => {
				if (ref === undefined) {
					const all = await store.rollouts();
					output(Boolean(o.json), all, () =>
						all.length === 0 ? "no rollouts" : textTable(HEADER, all.map(line)),
					);
					return;
				}
				const { name, alias } = aliasRef(ref);
				const r = await store.rollout(name, alias);
				if (!r)
					throw new MlshipError(
						"MLSHIP_MODEL_NOT_FOUND",
						`${name}@${alias} has no rollout (start one: mlship rollout start ${name}@${alias} --to VERSION)`,
					);
				const events = await store.rolloutEvents(name, alias, 50);
				output(Boolean(o.json), { ...r, events }, () => describe(r, events));
			});
		}),
	);
	example(
		status,
		"mlship rollout status",
		"mlship rollout status churn@production --json",
	);

	const cmd = new Command("rollout")
		.description(
			"Progressive rollout of a new version on an alias, checked on live error rate and latency, with automatic rollback",
		)
		.addCommand(start)
		.addCommand(status);
	const verbs: [
		string,
		string,
		(store: ModelStore, name: string, alias: string) => Promise<Rollout>,
	][] = [
		[
			"pause",
			"Pause a rollout: no checks or steps; the split stays where it is",
			pauseRollout,
		],
		[
			"resume",
			"Resume a paused rollout (the next check is one interval away)",
			resumeRollout,
		],
		[
			"abort",
			"Abort a rollout: all traffic goes back to the previous version",
			abortRollout,
		],
		[
			"promote",
			"Promote now: the alias moves to the new version and the split is cleared",
			promoteRollout,
		],
	];
	for (const [verb, description, fn] of verbs) {
		const sub = common(
			new Command(verb)
				.description(description)
				.argument("<name@alias>", "e.g. churn@production"),
		).action(
			action(async (ref: string, o: CommonOpts) => {
				const { name, alias } = aliasRef(ref);
				const r = await withRegistry(o.registry, (store) =>
					fn(store, name, alias),
				);
				output(
					Boolean(o.json),
					r,
					() => `rollout of ${name}@${alias}: ${r.state}`,
				);
			}),
		);
		example(
			sub,
			`mlship rollout ${verb} churn@production`,
			`mlship rollout ${verb} churn@production --json`,
		);
		cmd.addCommand(sub);
	}
	return example(
		cmd,
		"mlship rollout start churn@production --to 4 --steps 5,25,50,100 --interval 60s --max-error-rate 1% --max-p99-ms 50 --min-requests 100",
		"mlship rollout status churn@production",
		"mlship rollout abort churn@production",
	);
}
