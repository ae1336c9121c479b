// `mlship stream`: score messages from a broker (or JSON lines) and produce results, at least once.
import { Command } from "commander";
import pino from "pino";
import { isStdio } from "../stream/connectors/index.ts";
import { runStream } from "../stream/run.ts";
import { action, example, wholeNumber } from "./common.ts";
import { metricsPortOption, startCommandMetrics } from "./metrics-port.ts";

interface StreamOpts {
	model: string;
	from: string;
	to: string;
	dlq?: string;
	group: string;
	consumer?: string;
	registry?: string;
	batchSize: number;
	maxInFlight: number;
	workers?: number;
	logLevel: string;
	json?: boolean;
	exactlyOnce?: boolean;
	metricsPort?: number;
}

export function streamCommand(): Command {
	const cmd = metricsPortOption(new Command("stream"))
		.description(
			"Score a stream: read requests from --from, produce results to --to (at least once), bad messages to --dlq",
		)
		.requiredOption(
			"-m, --model <ref>",
			"bundle dir, .onnx file or registry ref (name@alias: followed, swapped live)",
		)
		.requiredOption(
			"--from <uri>",
			"kafka://host:port/topic | nats://host:port/stream/subject | redis://host:port/stream | file.jsonl | - (stdin)",
		)
		.requiredOption(
			"--to <uri>",
			"where results go (same kinds of URI; - = stdout)",
		)
		.option(
			"--dlq <uri>",
			"dead letters: messages that cannot be parsed or scored, with the error and the original payload",
		)
		.option(
			"--group <name>",
			"consumer group: processors in one group share the input",
			"mlship",
		)
		.option(
			"--consumer <name>",
			"this processor's name in the group (default host-pid; keep it stable across restarts to resume pending work first)",
		)
		.option(
			"--registry <uri>",
			"registry for registry refs (default: MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
		)
		.option(
			"--batch-size <n>",
			"most messages per micro-batch",
			wholeNumber(),
			256,
		)
		.option(
			"--max-in-flight <n>",
			"most messages read but not yet acked (reading pauses beyond: back-pressure)",
			wholeNumber(),
			2048,
		)
		.option("--workers <n>", "model worker threads", wholeNumber())
		.option(
			"--log-level <level>",
			"fatal|error|warn|info|debug|silent (JSON logs on stderr)",
			"info",
		)
		.option(
			"--exactly-once",
			"Kafka to Kafka only: each batch's results, dead letters and input offsets commit in one transaction (read the output with isolation.level=read_committed)",
		)
		.option(
			"--json",
			"print the run's counters as JSON when it ends (on stderr when --to is stdout)",
		)
		.action(
			action(async (opts: StreamOpts) => {
				const log = pino(
					{ level: opts.logLevel, base: { pid: process.pid } },
					pino.destination(2),
				);
				let running: Awaited<ReturnType<typeof runStream>> | undefined;
				if (opts.metricsPort !== undefined) {
					const { streamRowMetrics } = await import("../monitor/metrics.ts");
					const rows = streamRowMetrics(() => ({
						model: running?.model ?? "",
						versions: running?.stats.versions ?? {},
						dead: running?.stats.dead ?? 0,
					}));
					await startCommandMetrics(
						opts.metricsPort,
						{
							metrics: [
								async () => ({
									contentType: rows.contentType,
									body: await rows.metrics(),
								}),
								() =>
									running?.metrics() ??
									Promise.resolve({ contentType: "", body: "" }),
							],
							ready: () => running?.ready() ?? false,
						},
						(port) => log.info({ metrics_port: port }, "metrics serving"),
					);
				}
				const s = await runStream({
					model: opts.model,
					from: opts.from,
					to: opts.to,
					dlq: opts.dlq,
					group: opts.group,
					consumer: opts.consumer,
					registry: opts.registry,
					batchSize: opts.batchSize,
					maxInFlight: opts.maxInFlight,
					workers: opts.workers,
					exactlyOnce: opts.exactlyOnce,
					log: (level, msg, fields) => log[level](fields ?? {}, msg),
					onModelEvent: (e) =>
						log.info(
							e,
							e.type === "updated" ? "model updated" : "model update failed",
						),
				});
				running = s;
				const stop = (signal: string) => {
					if (s.stopping) {
						log.warn({ signal }, "second signal: exiting without draining");
						process.exit(130);
					}
					log.info({ signal }, "draining: finishing in-flight messages");
					s.stop();
				};
				process.on("SIGTERM", () => stop("SIGTERM"));
				process.on("SIGINT", () => stop("SIGINT"));
				log.info(
					{
						model: s.model,
						version: s.version,
						from: opts.from,
						to: opts.to,
						group: s.group,
						consumer: s.consumer,
					},
					"mlship streaming",
				);
				const stats = await s.done;
				log.info(stats, "stream stopped");
				if (opts.json) {
					const text = `${JSON.stringify(stats)}\n`;
					if (isStdio(opts.to)) process.stderr.write(text);
					else process.stdout.write(text);
				}
				process.exit(0);
			}),
		);
	return example(
		cmd,
		"mlship stream --model churn@production --from kafka://localhost:9092/requests --to kafka://localhost:9092/scores --dlq kafka://localhost:9092/dead",
		"mlship stream -m examples/iris --from redis://127.0.0.1:6379/requests --to redis://127.0.0.1:6379/scores --group scorers",
		"mlship stream -m iris-logreg@production --from nats://127.0.0.1:4222/REQUESTS/requests.iris --to nats://127.0.0.1:4222/SCORES/scores.iris --metrics-port 9464",
		'echo \'{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}\' | mlship stream -m examples/iris --from - --to -',
	);
}
