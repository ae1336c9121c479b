// `mlship pg`: models inside PostgreSQL — attach a model to a table column (trigger + worker), run the worker, detach.
import { Command } from "commander";
import { attach, detach, runAttachedWorker } from "../sql/pg-attach.ts";
import {
	action,
	example,
	output,
	untilStopped,
	wholeNumber,
} from "./common.ts";
import {
	metricsPortOption,
	runnerMetrics,
	startCommandMetrics,
} from "./metrics-port.ts";

interface DbOpts {
	db: string;
	table: string;
	column: string;
	json?: boolean;
}

const dbOption = (cmd: Command) =>
	cmd
		.requiredOption(
			"--db <url>",
			"the database: postgres://USER@HOST/DB (env DATABASE_URL)",
			process.env.DATABASE_URL,
		)
		.requiredOption("-t, --table <name>", "the table whose rows are scored")
		.requiredOption("-c, --column <name>", "the prediction column")
		.option("--json", "print machine-readable JSON");

/** Runs the worker until SIGTERM/SIGINT (or, with once, until the queue is empty). */
async function work(
	opts: DbOpts & { once?: boolean; chunkRows?: number; metricsPort?: number },
) {
	const metrics = await runnerMetrics(opts.metricsPort);
	const closeMetrics = await startCommandMetrics(opts.metricsPort, {
		metrics: metrics ? [() => metrics.exposition()] : [],
		ready: () => metrics?.ready ?? false,
	});
	const s = await untilStopped((signal) =>
		runAttachedWorker({
			db: opts.db,
			table: opts.table,
			column: opts.column,
			signal,
			...(opts.once ? { once: true } : {}),
			...(opts.chunkRows ? { chunkRows: opts.chunkRows } : {}),
			...(metrics ? { metrics } : {}),
		}),
	).catch((err: unknown) => {
		metrics?.failed();
		throw err;
	});
	await closeMetrics();
	output(
		Boolean(opts.json),
		s,
		() =>
			`worker stopped: ${s.rows_scored} rows scored, ${s.rows_rejected} rejected, in ${s.chunks} chunk(s)`,
	);
}

export function pgCommand(): Command {
	const attachCmd = dbOption(new Command("attach"))
		.description(
			"Attach a model to a table: adds the prediction column (if absent), a queue and a trigger that queues every inserted row and every row whose features change; then runs the worker that fills the column shortly after (unless --no-worker). Rows with bad values get NULL and a row in mlship_errors_<table>_<column>.",
		)
		.requiredOption(
			"-m, --model <ref>",
			"bundle directory, .onnx file, or registered model (name@production)",
		)
		.option(
			"--registry <uri>",
			"registry for model names (stored with the attachment for the worker)",
		)
		.option("--key <col>", "single key column (default: the primary key)")
		.option("--backfill", "queue every existing row too")
		.option(
			"--no-worker",
			"install only; run `mlship pg worker` separately (e.g. several, or under a supervisor)",
		)
		.action(
			action(
				async (
					opts: DbOpts & {
						model: string;
						registry?: string;
						key?: string;
						backfill?: boolean;
						worker: boolean;
					},
				) => {
					const a = await attach({
						db: opts.db,
						table: opts.table,
						column: opts.column,
						model: opts.model,
						...(opts.registry ? { registry: opts.registry } : {}),
						...(opts.key ? { key: opts.key } : {}),
						...(opts.backfill ? { backfill: true } : {}),
					});
					output(
						Boolean(opts.json),
						{ attached: a },
						() =>
							`attached ${a.model} to ${a.table}.${a.column} (${a.column_type}, key ${a.key})${opts.backfill ? `; ${a.backfilled} existing rows queued` : ""}`,
					);
					if (opts.worker) await work(opts);
				},
			),
		);
	const workerCmd = metricsPortOption(dbOption(new Command("worker")))
		.description(
			"Fill the prediction column of queued rows of an attached table (waits for new rows; several workers can share a queue). SIGTERM finishes the current chunk and exits.",
		)
		.option("--once", "exit when the queue is empty")
		.option("--chunk-rows <n>", "rows per transaction", wholeNumber())
		.action(
			action(
				async (
					opts: DbOpts & {
						once?: boolean;
						chunkRows?: number;
						metricsPort?: number;
					},
				) => work(opts),
			),
		);
	const detachCmd = dbOption(new Command("detach"))
		.description(
			"Remove the trigger, its function and queue table; the prediction column and its values stay unless --drop-column.",
		)
		.option("--drop-column", "also drop the prediction column")
		.action(
			action(async (opts: DbOpts & { dropColumn?: boolean }) => {
				const r = await detach({
					db: opts.db,
					table: opts.table,
					column: opts.column,
					...(opts.dropColumn ? { dropColumn: true } : {}),
				});
				output(
					Boolean(opts.json),
					{ detached: r },
					() =>
						`detached ${r.table}.${r.column}${r.dropped_column ? " (column dropped)" : ""}`,
				);
			}),
		);
	example(
		attachCmd,
		"mlship pg attach --db postgres://app@db/prod --table customers --column churn_p --model churn@production --backfill",
	);
	example(
		workerCmd,
		"mlship pg worker --db postgres://app@db/prod --table customers --column churn_p --metrics-port 9464",
	);
	example(
		detachCmd,
		"mlship pg detach --db postgres://app@db/prod --table customers --column churn_p",
	);
	return example(
		new Command("pg")
			.description(
				"Models inside PostgreSQL: a trigger queues new or changed rows and a worker fills a prediction column",
			)
			.addCommand(attachCmd)
			.addCommand(workerCmd)
			.addCommand(detachCmd),
		"mlship pg attach --db postgres://app@db/prod --table customers --column churn_p --model churn@production",
	);
}
