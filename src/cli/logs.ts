// `mlship logs query`: reads a payload log (--log-payloads of serve, stream, batch run) back.
import { Command } from "commander";
import type { LoggedPayload } from "../payload-log/query.ts";
import { parseDuration } from "../protocol/duration.ts";
import { MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import { action, example, textTable } from "./common.ts";

interface QueryOpts {
	from?: string;
	model?: string;
	since?: string;
	id?: string;
	limit?: string;
	json?: boolean;
}

function shortJson(v: unknown, max = 60): string {
	const s = JSON.stringify(v);
	return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function logsCommand(): Command {
	const query = new Command("query")
		.description(
			"Show payload-log records, newest first: request id, time, model, version, latency, inputs and outputs",
		)
		.option(
			"--from <dest>",
			"the payload log: the directory or postgres://…?table=T given to --log-payloads (default: MLSHIP_LOG_PAYLOADS)",
		)
		.option("-m, --model <name>", "only this model's records")
		.option(
			"--since <duration>",
			"only records of the last 90s, 15m, 1h, 7d … (default: all)",
		)
		.option("--id <request-id>", "only the record of this request id")
		.option("--limit <n>", "most records shown (default 100)")
		.option("--json", "print the records as a JSON array")
		.action(
			action(async (opts: QueryOpts) => {
				const from = opts.from ?? process.env.MLSHIP_LOG_PAYLOADS;
				if (from === undefined || from === "")
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						"which payload log? pass --from DIR (or postgres://USER@HOST/DB?table=T), as given to --log-payloads",
					);
				const limit = opts.limit === undefined ? 100 : Number(opts.limit);
				const { queryPayloadLog } = await import("../payload-log/query.ts");
				const records = await queryPayloadLog(from, {
					model: opts.model,
					id: opts.id,
					since:
						opts.since === undefined
							? undefined
							: Date.now() - parseDuration(opts.since, "--since"),
					limit,
				});
				if (opts.json) {
					process.stdout.write(`${JSON.stringify(records)}\n`);
					return;
				}
				if (records.length === 0) {
					process.stdout.write(
						`no records in ${redactUrl(from)}${opts.model ? ` for model '${opts.model}'` : ""}${opts.since ? ` in the last ${opts.since}` : ""}${opts.id ? ` with id '${opts.id}'` : ""}\n`,
					);
					return;
				}
				process.stdout.write(table(records));
			}),
		);
	example(
		query,
		"mlship logs query --from ./payloads --model iris --since 1h",
		"mlship logs query --from ./payloads --id 7f9c2ba4-e88f-4a1b-9c1e-0d5c2b7a1f3e --json",
		"mlship logs query --from 'postgres://mlship@db/ops?table=mlship_payload_log' --model churn --since 15m --limit 20",
	);
	const cmd = new Command("logs")
		.description(
			"Read the payload log that serve, stream and batch run write with --log-payloads",
		)
		.addCommand(query);
	return example(cmd, "mlship logs query --from ./payloads --since 1h");
}

function table(records: LoggedPayload[]): string {
	return `${textTable(
		[
			"time",
			"id",
			"model",
			"version",
			"latency_ms",
			"rows",
			"inputs",
			"outputs",
		],
		records.map((r) => [
			r.time,
			r.id,
			r.model,
			String(r.version ?? ""),
			r.latency_ms.toFixed(2),
			String(r.rows),
			shortJson(r.inputs),
			shortJson(r.outputs),
		]),
	)}\n`;
}
