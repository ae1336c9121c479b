// `mlship monitor report`: a model's drift windows from the registry as one self-contained HTML file (or JSON).
import { writeFile } from "node:fs/promises";
import { Command } from "commander";
import type { Profile } from "../monitor/profile/format.ts";
import { parseProfile } from "../monitor/profile/format.ts";
import { reportHtml } from "../monitor/report-html.ts";
import { type MonitorReport, monitorReport } from "../monitor/windows.ts";
import { parseDuration } from "../protocol/duration.ts";
import { MlshipError } from "../protocol/errors.ts";
import { defaultRegistryUri } from "../registry/open.ts";
import { action, example } from "./common.ts";
import { withRegistry } from "./models-common.ts";

interface ReportOpts {
	model: string;
	since: string;
	output?: string;
	registry?: string;
	minRows: string;
	json?: boolean;
}

function reportCommand(): Command {
	const cmd = new Command("report")
		.description(
			"Write a model's monitoring report: reference vs current histograms per feature, drift per window, dataset drift over time, traffic, errors, latency (p50/p99) and feedback quality by version over time; one self-contained HTML file, or --json",
		)
		.requiredOption("--model <name>", "the model's registry name")
		.option("--since <duration>", "how far back (30m, 24h, 7d)", "24h")
		.option("-o, --output <file>", "write the HTML here (default: stdout)")
		.option(
			"--registry <uri>",
			"registry the server writes its windows to: sqlite:PATH or postgres://USER@HOST/DB (env MLSHIP_REGISTRY)",
		)
		.option(
			"--min-rows <n>",
			"fewest rows per window for a verdict (as serve's --monitor-min-rows)",
			"50",
		)
		.option("--json", "print the report data as JSON instead of HTML")
		.action(
			action(async (opts: ReportOpts) => {
				const since = Date.now() - parseDuration(opts.since, "--since");
				const minRows = Number(opts.minRows);
				if (!Number.isInteger(minRows) || minRows < 1)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`--min-rows: not a positive whole number: ${opts.minRows}`,
					);
				const report = await withRegistry(
					opts.registry ?? defaultRegistryUri(),
					async (store): Promise<MonitorReport> => {
						const rows = await store.profileWindows(opts.model, since);
						const stats = await store.statsWindows(opts.model, since);
						const refs = new Map<number, Profile | undefined>();
						for (const v of new Set(
							[...rows, ...stats].map((r) => r.version),
						)) {
							let p: Profile | undefined;
							try {
								const b = await store.openBundle(`${opts.model}@${v}`);
								const f = b.manifest.profile;
								const bytes = f ? b.files.get(f.path) : undefined;
								if (f && bytes)
									p = parseProfile(bytes, `${opts.model}@${v}: ${f.path}`);
							} catch (err) {
								// A version deleted since (or a bundle directory served as version 1): its windows show without drift.
								if (
									(err as { code?: string }).code !== "MLSHIP_MODEL_NOT_FOUND"
								)
									throw err;
							}
							refs.set(v, p);
						}
						return monitorReport(
							opts.model,
							since,
							rows,
							(v) => refs.get(v),
							{ minRows },
							Date.now(),
							stats,
						);
					},
				);
				// The rows a report left out (e.g. unreadable quality statistics), also in --json's `warnings`.
				for (const w of report.warnings)
					process.stderr.write(`warning: ${w}\n`);
				const text = opts.json
					? `${JSON.stringify(report, null, 2)}\n`
					: reportHtml(report);
				if (opts.output) {
					await writeFile(opts.output, text);
					process.stderr.write(
						`wrote ${opts.output}: ${report.windows.length} windows of ${opts.model} since ${report.since}\n`,
					);
				} else process.stdout.write(text);
			}),
		);
	return example(
		cmd,
		"mlship monitor report --model churn --since 24h -o report.html",
		"mlship monitor report --model churn --since 7d --registry postgres://mlship@db/registry --json | jq '.latest'",
	);
}

export function monitorCommand(): Command {
	const cmd = new Command("monitor").description(
		"Drift monitoring: reports of the windows serve and stream write with --monitor-window",
	);
	cmd.addCommand(reportCommand());
	return example(cmd, "mlship monitor report --model churn -o report.html");
}
