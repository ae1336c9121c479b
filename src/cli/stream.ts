// `mlship stream`: score messages from a broker (or JSON lines) and produce results, at least once.
import { Command, InvalidArgumentError, Option } from "commander";
import pino from "pino";
import { parseDuration } from "../protocol/duration.ts";
import { redactingLogger, redactUrl, redactValue } from "../protocol/redact.ts";
import { isStdio } from "../stream/connectors/index.ts";
import {
	AVRO_FRAMINGS,
	type AvroFraming,
	FORMATS,
	type FormatName,
} from "../stream/format.ts";
import {
	DEAD_LETTER_FORMATS,
	type DeadLetterFormat,
} from "../stream/message.ts";
import {
	TOMBSTONE_POLICIES,
	type TombstonePolicy,
} from "../stream/processor.ts";
import { runStream } from "../stream/run.ts";
import { streamStatus } from "../stream/status.ts";
import { PARTITIONERS, type PartitionerName } from "../stream/types.ts";
import { action, example, wholeNumber } from "./common.ts";
import { metricsPortOption, startCommandMetrics } from "./metrics-port.ts";
import {
	type PayloadLogFlags,
	payloadLogConfig,
	payloadLogOptions,
} from "./payload-log.ts";

interface StreamOpts extends PayloadLogFlags {
	otlpEndpoint?: string;
	model?: string;
	from?: string;
	to?: string;
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
	partitioner: PartitionerName;
	dlqFormat?: DeadLetterFormat;
	feedbackFrom?: string;
	feedbackMaxIds?: number;
	feedbackRetention?: string;
	tombstones: TombstonePolicy;
	timestamp: "input" | "now";
	format: FormatName;
	schema?: string;
	avroFraming: AvroFraming;
	resultSchema?: string;
	monitorWindow?: string;
	monitorMinRows?: number;
	alertWebhook?: string;
	explain?: number;
	decodeThread: boolean;
}

export function streamCommand(): Command {
	const cmd = payloadLogOptions(metricsPortOption(new Command("stream")))
		.description(
			"Score a stream: read requests from --from, produce results to --to (at least once), bad messages to --dlq",
		)
		.option(
			"-m, --model <ref>",
			"bundle dir, .onnx file or registry ref (name@alias: followed, swapped live)",
		)
		.option(
			"--from <uri>",
			"kafka://host:port/topic | nats://host:port/stream/subject | redis://host:port/stream | file.jsonl | - (stdin)",
		)
		.option("--to <uri>", "where results go (same kinds of URI; - = stdout)")
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
		.addOption(
			new Option(
				"--partitioner <name>",
				"Kafka: which partition a result key goes to — java: as Kafka's Java client (co-partitioned joins line up); murmur2-positive: mlship's old placement; random; same-as-input: the input's partition number",
			)
				.choices(PARTITIONERS)
				.default("java"),
		)
		.addOption(
			new Option(
				"--dlq-format <format>",
				"connect (default for a broker): the original record byte for byte plus Kafka Connect's __connect.errors.* headers (replayable with mlship stream replay); envelope (default for a JSON-lines file): a JSON object with error, code and payload",
			).choices(DEAD_LETTER_FORMATS),
		)
		.addOption(
			new Option(
				"--tombstones <policy>",
				"a null-valued record (tombstone): forward a tombstone for its key (a compacted result topic drops it), skip it, or dead-letter it",
			)
				.choices(TOMBSTONE_POLICIES)
				.default("forward"),
		)
		.addOption(
			new Option(
				"--timestamp <which>",
				"a result's timestamp: input = the input record's event time; now = processing time",
			)
				.choices(["input", "now"])
				.default("input"),
		)
		.addOption(
			new Option(
				"--format <format>",
				"payload format of requests and results: json; avro (with --schema; results get a schema derived from the model's outputs); csv (a message is a header row and record rows; so is a result)",
			)
				.choices(FORMATS)
				.default("json"),
		)
		.option(
			"--schema <file.avsc>",
			"--format avro: the Avro schema of the request records",
		)
		.addOption(
			new Option(
				"--avro-framing <framing>",
				"--format avro: confluent = Confluent's wire format (magic byte, 4-byte schema id; the id is not looked up: --schema is the schema); none = bare Avro datums",
			)
				.choices(AVRO_FRAMINGS)
				.default("confluent"),
		)
		.option(
			"--result-schema <file.avsc>",
			"--format avro: write the results' Avro schema here (for the readers of --to)",
		)
		.option(
			"--monitor-window <duration>",
			"drift monitoring: profile requests in windows of this length (30s, 5m) against the bundle's reference profile, and keep requests, errors, latency and feedback quality per window; windows go to the registry (replicas merge), gauges to --metrics-port",
		)
		.option(
			"--monitor-min-rows <n>",
			"fewest rows per window for a drift verdict (default 50)",
			(t: string) => {
				const n = Number(t);
				if (!Number.isInteger(n) || n < 1)
					throw new InvalidArgumentError(`not a positive whole number: ${t}.`);
				return n;
			},
		)
		.option(
			"--alert-webhook <url>",
			"POST drift alerts (JSON) to this URL, with hysteresis (no flapping)",
		)
		.option(
			"--feedback-from <uri>",
			'feedback messages {"id", "reward" | "truth"} (kafka://, nats://, redis://; consumer group <group>.feedback), joined by request id to this processor\'s results: live quality and rewards by version',
		)
		.option(
			"--feedback-max-ids <n>",
			"request ids kept for feedback, ~400 bytes each (default 100000)",
			wholeNumber(),
		)
		.option(
			"--feedback-retention <duration>",
			"how long a result can receive feedback, e.g. 30m, 1h (default 1h)",
		)
		.option(
			"--explain <k>",
			"add the K largest feature contributions (exact SHAP, trees runtime) to each result: keys explain_1_feature, explain_1_value, … on records (as batch run --explain); an 'explanation' output on OIP requests",
			wholeNumber(1),
		)
		.option(
			"--no-decode-thread",
			"parse JSON payloads of 8 KiB or more (many records per message) on the main thread instead of a decode thread (default: a decode thread, so the main thread keeps to broker I/O and acks)",
		)
		.option(
			"--otlp-endpoint <url>",
			"export OpenTelemetry traces (a span per message with decode, queue, compute, encode; model load and swap) over OTLP/HTTP, e.g. http://127.0.0.1:4318/v1/traces; a message's traceparent header is continued",
		)
		.option(
			"--json",
			"print the run's counters as JSON when it ends (on stderr when --to is stdout)",
		)
		.action(
			action(async (opts: StreamOpts) => {
				// Checked here, not as commander's required options: those would be demanded of `stream replay` too.
				const required = [
					["-m, --model <ref>", opts.model],
					["--from <uri>", opts.from],
					["--to <uri>", opts.to],
				] as const;
				for (const [flag, v] of required)
					if (v === undefined)
						cmd.error(`error: required option '${flag}' not specified`, {
							exitCode: 2,
							code: "commander.missingMandatoryOptionValue",
						});
				const { model, from, to } = opts as Required<
					Pick<StreamOpts, "model" | "from" | "to">
				>;
				const log = pino(
					{
						...redactingLogger,
						level: opts.logLevel,
						base: { pid: process.pid },
					},
					pino.destination(2),
				);
				let running: Awaited<ReturnType<typeof runStream>> | undefined;
				const drift =
					opts.monitorWindow === undefined
						? undefined
						: await (
								await import("../dataplane/drift-monitor.ts")
							).openDriftMonitor({
								window: opts.monitorWindow,
								registry: opts.registry,
								sources: [model],
								minRows: opts.monitorMinRows,
								webhook: opts.alertWebhook,
								...(opts.feedbackRetention !== undefined
									? {
											feedbackRetentionMs: parseDuration(
												opts.feedbackRetention,
												"--feedback-retention",
											),
										}
									: {}),
								onError: (err) =>
									log.warn({ err: err.message }, "drift monitor"),
							});
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
								...(drift ? [() => drift.monitor.metricsText()] : []),
							],
							ready: () => running?.ready() ?? false,
							details: () => running?.details() ?? {},
							status: () => streamStatus(running, { model, from, to }),
						},
						(port) => log.info({ metrics_port: port }, "metrics serving"),
					);
				}
				const s = await runStream({
					model,
					from,
					to,
					dlq: opts.dlq,
					group: opts.group,
					consumer: opts.consumer,
					registry: opts.registry,
					batchSize: opts.batchSize,
					maxInFlight: opts.maxInFlight,
					workers: opts.workers,
					exactlyOnce: opts.exactlyOnce,
					partitioner: opts.partitioner,
					dlqFormat: opts.dlqFormat,
					tombstones: opts.tombstones,
					timestamp: opts.timestamp,
					explain: opts.explain,
					decodeThread: opts.decodeThread,
					format: opts.format,
					schema: opts.schema,
					avroFraming: opts.avroFraming,
					resultSchema: opts.resultSchema,
					...(drift
						? {
								hooks: [drift.monitor.hook],
								onDataPlane: (dp) => drift.monitor.attach(dp),
							}
						: {}),
					feedbackFrom: opts.feedbackFrom,
					feedbackMaxIds: opts.feedbackMaxIds,
					feedbackRetentionMs:
						opts.feedbackRetention !== undefined
							? parseDuration(opts.feedbackRetention, "--feedback-retention")
							: undefined,
					payloadLog: payloadLogConfig(opts),
					otlpEndpoint: opts.otlpEndpoint,
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
						from,
						to,
						group: s.group,
						consumer: s.consumer,
					},
					"mlship streaming",
				);
				const stats = await s.done;
				await drift?.close();
				log.info(stats, "stream stopped");
				if (opts.json) {
					const text = `${JSON.stringify(redactValue(stats))}\n`;
					if (isStdio(to)) process.stderr.write(text);
					else process.stdout.write(text);
				}
				process.exit(0);
			}),
		);
	// Options after `replay` are its own (its --from/--to are not the stream's).
	cmd.enablePositionalOptions().addCommand(replayCommand());
	return example(
		cmd,
		"mlship stream --model churn@production --from kafka://localhost:9092/requests --to kafka://localhost:9092/scores --dlq kafka://localhost:9092/dead",
		"mlship stream -m examples/iris --from redis://127.0.0.1:6379/requests --to redis://127.0.0.1:6379/scores --group scorers",
		"mlship stream -m iris-logreg@production --from nats://127.0.0.1:4222/REQUESTS/requests.iris --to nats://127.0.0.1:4222/SCORES/scores.iris --metrics-port 9464",
		"mlship stream -m churn@production --from redis://127.0.0.1:6379/requests --to redis://127.0.0.1:6379/scores --monitor-window 5m --alert-webhook https://hooks.example/drift --metrics-port 9464",
		"mlship stream -m churn@production --from kafka://localhost:9092/requests --to kafka://localhost:9092/scores --feedback-from kafka://localhost:9092/outcomes --metrics-port 9464",
		"mlship stream -m ./xgb-bundle --from redis://127.0.0.1:6379/requests --to redis://127.0.0.1:6379/scores --explain 3",
		"mlship stream -m churn@production --from kafka://127.0.0.1:9092/requests --to kafka://127.0.0.1:9092/scores --log-payloads kafka://127.0.0.1:9092/mlship.payloads --log-sample 0.05",
		'echo \'{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}\' | mlship stream -m examples/iris --from - --to -',
	);
}

interface ReplayOpts {
	from: string;
	to: string;
	group: string;
	idleMs: number;
	max?: number;
	partitioner: PartitionerName;
	json?: boolean;
}

/** `mlship stream replay`: dead letters back to a topic as their original records. */
function replayCommand(): Command {
	const cmd = new Command("replay")
		.description(
			"Re-publish dead letters as their original records (error headers removed), e.g. after fixing the model or the producer",
		)
		.requiredOption(
			"--from <uri>",
			"the dead-letter queue (same URIs as --dlq)",
		)
		.requiredOption(
			"--to <uri>",
			"where the original records go (usually the stream's --from)",
		)
		.option(
			"--group <name>",
			"consumer group on the dead-letter queue: replayed ones are acked in it, so the next replay goes on after them",
			"mlship-replay",
		)
		.option(
			"--idle-ms <ms>",
			"stop once no dead letter arrived for this long",
			wholeNumber(),
			2000,
		)
		.option("--max <n>", "stop after this many", wholeNumber())
		.addOption(
			new Option("--partitioner <name>", "Kafka: as for mlship stream")
				.choices(PARTITIONERS)
				.default("java"),
		)
		.option("--json", "print {replayed} as JSON")
		.action(
			action(async (opts: ReplayOpts) => {
				const { replayDeadLetters } = await import("../stream/replay.ts");
				const r = await replayDeadLetters({
					from: opts.from,
					to: opts.to,
					group: opts.group,
					idleMs: opts.idleMs,
					max: opts.max,
					partitioner: opts.partitioner,
				});
				const out = isStdio(opts.to) ? process.stderr : process.stdout;
				out.write(
					opts.json
						? `${JSON.stringify(redactValue(r))}\n`
						: `replayed ${r.replayed} dead letter(s) from ${redactUrl(opts.from)} to ${redactUrl(opts.to)}\n`,
				);
			}),
		);
	return example(
		cmd,
		"mlship stream replay --from kafka://localhost:9092/dead --to kafka://localhost:9092/requests",
		"mlship stream replay --from redis://127.0.0.1:6379/dead --to redis://127.0.0.1:6379/requests --max 100 --json",
	);
}
