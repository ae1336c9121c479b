// `mlship audit`: who changed what in the registry and on servers (register, alias moves, load, unload, tokens…).
import { Command } from "commander";
import { MlshipError } from "../protocol/errors.ts";
import type { AuditEvent } from "../registry/access.ts";
import { action, example, output } from "./common.ts";
import { timeArg } from "./duration.ts";
import { type CommonOpts, common, withRegistry } from "./models-common.ts";

function line(e: AuditEvent): string {
	const detail =
		Object.keys(e.detail).length > 0 ? `  ${JSON.stringify(e.detail)}` : "";
	return `${e.at.slice(0, 19)}Z  ${e.actor.padEnd(17)}  ${e.source.padEnd(15)}  ${e.action.padEnd(14)}  ${e.target}${detail}`;
}

/** The `mlship audit` command. */
export function auditCommand(): Command {
	const cmd = common(
		new Command("audit")
			.description(
				"Show the audit log: who (token id or local:USER) did what (register, alias moves, load, unload, tokens…), when and from where",
			)
			.option(
				"--since <when>",
				"only events since: a duration (7d, 12h) or an ISO date",
				"7d",
			)
			.option(
				"--action <action>",
				"only this action (model.load) or family (model, alias, token)",
			)
			.option("--limit <n>", "most events shown, newest first", "1000"),
	).action(
		action(
			async (
				opts: CommonOpts & { since: string; action?: string; limit: string },
			) => {
				const limit = Number(opts.limit);
				if (!Number.isSafeInteger(limit) || limit < 1)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`--limit expects a whole number ≥ 1, got '${opts.limit}'`,
					);
				const events = await withRegistry(opts.registry, (store) =>
					store.audit.list({
						since: timeArg(opts.since, "--since", -1),
						limit,
						...(opts.action !== undefined && { action: opts.action }),
					}),
				);
				output(Boolean(opts.json), events, () =>
					events.length === 0
						? `no audit events since ${opts.since}${opts.action ? ` for ${opts.action}` : ""} (widen with --since 90d)`
						: events.map(line).join("\n"),
				);
			},
		),
	);
	return example(
		cmd,
		"mlship audit --since 7d",
		"mlship audit --since 2026-11-01 --action model.load --json",
		"mlship audit --action token --registry postgres://mlship@db/registry",
	);
}
