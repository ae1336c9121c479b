// runStream: a model, a source and a sink wired into a StreamProcessor — what `mlship stream` and embedders call.

import { hostname } from "node:os";
import { defaultModelName } from "../bundle/model-name.ts";
import { createDataPlane, type ModelEvent } from "../dataplane/dataplane.ts";
import { topK } from "../dataplane/explain.ts";
import type { PredictHook } from "../dataplane/instance.ts";
import type { DataPlane } from "../dataplane/types.ts";
import type { PayloadLogConfig } from "../payload-log/open.ts";
import { MlshipError, toMlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import type { ModelStore } from "../registry/types.ts";
import { TREES_PLATFORM } from "../trees/ir.ts";
import {
	carriesHeaders,
	checkUri,
	openSink,
	openSource,
} from "./connectors/index.ts";
import { FeedbackConsumer, type FeedbackStats } from "./feedback.ts";
import {
	type AvroFraming,
	avroFormat,
	csvFormat,
	type FormatName,
	jsonFormat,
	type PayloadFormat,
} from "./format.ts";
import type { DeadLetterFormat } from "./message.ts";
import type { TombstonePolicy } from "./processor.ts";
import {
	type ProcessorOptions,
	StreamProcessor,
	type StreamStats,
} from "./processor.ts";
import type { SinkOptions, Transactor } from "./types.ts";

export interface StreamOptions {
	/** Bundle dir, .onnx file, or registry reference (`name@alias` is followed: new versions swap in live). */
	model: string;
	/** Source URI: kafka://, nats://, redis://, a JSON-lines file, or `-` (stdin). */
	from: string;
	/** Result URI (same kinds; `-` = stdout). */
	to: string;
	/** Dead-letter URI for messages that cannot be parsed or scored. */
	dlq?: string | undefined;
	/** Consumer group. Default "mlship". */
	group?: string | undefined;
	/** This processor's name in the group. Default host-pid. */
	consumer?: string | undefined;
	registry?: string | ModelStore | undefined;
	batchSize?: number | undefined;
	maxInFlight?: number | undefined;
	/** Model worker threads. */
	workers?: number | undefined;
	/** Kafka to Kafka: one transaction per batch (results, dead letters, input offsets). */
	exactlyOnce?: boolean | undefined;
	/** Kafka: how result keys map to partitions. Default `java` (Kafka's Java client). */
	partitioner?: SinkOptions["partitioner"] | undefined;
	/**
	 * Dead letters: the original record plus `__connect.errors.*` headers (default for a broker) or a JSON envelope
	 * (default for a JSON-lines file, which carries no headers).
	 */
	dlqFormat?: DeadLetterFormat | undefined;
	/** Tombstones (null values): forwarded for their key (default), skipped, or dead-lettered. */
	tombstones?: TombstonePolicy | undefined;
	/** A result's timestamp: the input's event time (default) or processing time. */
	timestamp?: "input" | "now" | undefined;
	/** Payload format of requests and results. Default `json`. */
	format?: FormatName | undefined;
	/** `format: "avro"`: the requests' Avro schema file (.avsc). */
	schema?: string | undefined;
	/** `format: "avro"`: Confluent's wire format (default) or bare datums. */
	avroFraming?: AvroFraming | undefined;
	/** `format: "avro"`: where to write the results' schema (derived from the model's outputs). */
	resultSchema?: string | undefined;
	/**
	 * Feedback (`{id, reward | truth}` messages) from this URI (kafka://, nats://, redis://): joined by request id
	 * to the answers this processor produced (live quality, rewards). Read with consumer group `<group>.feedback`.
	 */
	feedbackFrom?: string | undefined;
	/** Request ids kept for feedback (default 100,000; ~400 bytes each). */
	feedbackMaxIds?: number | undefined;
	/** How long an answer can receive feedback, in ms (default 1 hour). */
	feedbackRetentionMs?: number | undefined;
	log?: ProcessorOptions["log"];
	/** Model hot updates (and refused ones). */
	onModelEvent?: (e: ModelEvent) => void;
	/** Added to the model's instances after warm-up (e.g. the drift monitor's hook). */
	hooks?: PredictHook[];
	/** Told of the data plane once it is created (the drift monitor attaches to read traffic and feedback). */
	onDataPlane?: (dp: DataPlane) => void;
	/** Log each prediction (request id, inputs, outputs, latency) to a Parquet directory, PostgreSQL or Kafka. */
	payloadLog?: PayloadLogConfig | undefined;
	/**
	 * Adds the K largest feature contributions to each result (models on the trees runtime): records get
	 * `explain_<i>_feature`/`explain_<i>_value` keys as `batch run --explain` adds columns; OIP requests get the
	 * `explanation` output of `parameters.explain`. Not with Avro (the results' schema is the model's outputs).
	 */
	explain?: number | undefined;
	/** Parse large JSON payloads of records on a decode thread (default true; see ProcessorOptions.decodeThread). */
	decodeThread?: boolean | undefined;
	/** Export OpenTelemetry traces over OTLP/HTTP to this URL (a consumer span per message, continuing its `traceparent`). */
	otlpEndpoint?: string | undefined;
}

/** A started stream. */
export interface RunningStream {
	/** The model's name and the version serving when the stream started. */
	model: string;
	version: string;
	group: string;
	consumer: string;
	/** Stops reading; `done` resolves once in-flight messages are produced and acked and everything is closed. */
	stop(): void;
	readonly stopping: boolean;
	readonly done: Promise<StreamStats>;
	/** Live counters of the run (for metrics). */
	readonly stats: StreamStats;
	/** Counters of the feedback consumer (with `feedbackFrom`). */
	readonly feedback: FeedbackStats | undefined;
	/** The model is loaded and messages are being read. */
	ready(): boolean;
	/** The data plane's Prometheus metrics (requests, latency, batch sizes by model and version), and the payload log's. */
	metrics(): Promise<{ contentType: string; body: string }>;
	/** Readiness details: the payload log's destination and state, when there is one. */
	details(): Record<string, unknown>;
}

/**
 * Loads the model, opens the connectors and starts processing; resolves once it runs.
 * @example
 * const s = await runStream({ model: "churn@production", from: "kafka://k:9092/requests", to: "kafka://k:9092/scores" });
 * process.once("SIGTERM", () => s.stop());
 * console.log(await s.done);
 */
export async function runStream(opts: StreamOptions): Promise<RunningStream> {
	if (
		opts.feedbackFrom !== undefined &&
		!/^(kafka|nats|redis):\/\//.test(opts.feedbackFrom)
	)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--feedback-from must be a kafka://, nats:// or redis:// URI, got '${opts.feedbackFrom}'`,
		);
	for (const uri of [opts.from, opts.to, opts.dlq, opts.feedbackFrom])
		if (uri !== undefined) {
			checkUri(uri);
			if (opts.exactlyOnce && !uri.startsWith("kafka://"))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`exactly-once works from Kafka to Kafka; '${redactUrl(uri)}' is not a kafka:// URI`,
				);
		}
	if (opts.exactlyOnce && opts.consumer === undefined)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"--exactly-once needs a stable --consumer name: its Kafka transactional id must be the same after a restart so the new process fences the old one's open transaction",
		);
	if (opts.explain !== undefined) {
		topK(opts.explain, "--explain");
		if (opts.format === "avro")
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"--explain cannot go with --format avro: the results' Avro schema holds the model's outputs only; use --format json or csv",
			);
	}
	let format: PayloadFormat = opts.format === "csv" ? csvFormat : jsonFormat;
	if (opts.format === "avro") {
		if (opts.schema === undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"--format avro needs --schema FILE.avsc: the Avro schema of the request records",
			);
		format = await avroFormat({
			schema: opts.schema,
			framing: opts.avroFraming,
			resultSchema: opts.resultSchema,
		});
	}
	const name = await defaultModelName(opts.model);
	// Before the model loads, so its load span is exported too.
	const tracing =
		opts.otlpEndpoint === undefined
			? undefined
			: await (await import("../monitor/tracing.ts")).startTracing(
					opts.otlpEndpoint,
				);
	const payloadLog =
		opts.payloadLog === undefined
			? undefined
			: await (await import("../payload-log/open.ts")).openPayloadLog(
					opts.payloadLog,
					{
						onError: (err, ms) =>
							opts.log?.("warn", "payload log destination failed", {
								err: err.message,
								retry_ms: ms,
							}),
					},
				);
	const dp = await createDataPlane({
		...(payloadLog ? { hooks: [payloadLog.hook] } : {}),
		models: [{ name, source: opts.model }],
		...(opts.registry !== undefined ? { registry: opts.registry } : {}),
		processMetrics: false,
		...(opts.workers !== undefined ? { load: { workers: opts.workers } } : {}),
		...(opts.onModelEvent ? { onEvent: opts.onModelEvent } : {}),
		...(opts.hooks
			? { hooks: [...opts.hooks, ...(payloadLog ? [payloadLog.hook] : [])] }
			: {}),
		...(opts.feedbackFrom !== undefined
			? {
					feedback: {
						...(opts.feedbackMaxIds !== undefined
							? { maxIds: opts.feedbackMaxIds }
							: {}),
						...(opts.feedbackRetentionMs !== undefined
							? { retentionMs: opts.feedbackRetentionMs }
							: {}),
					},
				}
			: {}),
	});
	opts.onDataPlane?.(dp);
	// The payload log closes after the model: it writes the records of the last messages scored.
	const open: { close(): Promise<void> }[] = [dp];
	if (payloadLog) open.push(payloadLog);
	if (tracing) open.push({ close: tracing });
	const closeAll = async () => {
		// Sources first (stop consuming), then sinks, then the model; one that fails to close does not keep the
		// others open, and the first failure is reported.
		let first: unknown;
		for (const o of open)
			await o.close().catch((err: unknown) => {
				first ??= err;
			});
		if (first !== undefined) throw first;
	};
	try {
		const loadError = dp.loadErrors[0];
		if (loadError) throw loadError;
		if (opts.explain !== undefined) {
			const { platform } = dp.modelMetadata(name);
			if (platform !== TREES_PLATFORM)
				throw new MlshipError(
					"MLSHIP_UNSUPPORTED_MODEL",
					`--explain: model '${name}' runs on ${platform}, which cannot explain predictions; set 'runtime: trees' in mlship.yaml for a tree ensemble or linear model (ONNX, PMML, XGBoost JSON or LightGBM text)`,
				);
		}
		const connector = {
			group: opts.group ?? "mlship",
			consumer: opts.consumer ?? `${hostname()}-${process.pid}`,
		};
		const sinkOptions: SinkOptions =
			opts.partitioner !== undefined ? { partitioner: opts.partitioner } : {};
		const sink = await openSink(opts.to, sinkOptions);
		open.unshift(sink);
		const dlq =
			opts.dlq !== undefined
				? await openSink(opts.dlq, sinkOptions)
				: undefined;
		if (dlq) open.unshift(dlq);
		const source = await openSource(opts.from, connector);
		open.unshift(source);
		let transactor: Transactor | undefined;
		if (opts.exactlyOnce) {
			const { kafkaTransactor } = await import("./connectors/kafka.ts");
			transactor = kafkaTransactor(
				source,
				opts.to,
				opts.dlq,
				`mlship-${connector.group}-${connector.consumer}`,
				sinkOptions,
			);
			open.unshift(transactor);
		}
		const p = new StreamProcessor({
			dataPlane: dp,
			model: name,
			source,
			sink,
			dlq,
			transactor,
			...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
			...(opts.maxInFlight !== undefined
				? { maxInFlight: opts.maxInFlight }
				: {}),
			// A JSON-lines dead-letter file holds only values: the error must be in the value (the envelope).
			dlqFormat:
				opts.dlqFormat ??
				(opts.dlq !== undefined && !carriesHeaders(opts.dlq)
					? "envelope"
					: "connect"),
			...(opts.tombstones !== undefined ? { tombstones: opts.tombstones } : {}),
			...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
			...(opts.explain !== undefined ? { explain: opts.explain } : {}),
			...(opts.decodeThread !== undefined
				? { decodeThread: opts.decodeThread }
				: {}),
			format,
			...(opts.log ? { log: opts.log } : {}),
		});
		let fb: FeedbackConsumer | undefined;
		let fbDone: Promise<unknown> = Promise.resolve();
		if (opts.feedbackFrom !== undefined) {
			const fbSource = await openSource(opts.feedbackFrom, {
				...connector,
				group: `${connector.group}.feedback`,
			});
			open.unshift(fbSource);
			fb = new FeedbackConsumer({
				dataPlane: dp,
				model: name,
				source: fbSource,
				...(opts.log ? { log: opts.log } : {}),
			});
			// Feedback failing for good (bad credentials) stops the stream too: it was asked for.
			fbDone = fb.run().catch((err: unknown) => {
				opts.log?.("error", "feedback consumer failed; stopping", {
					error: toMlshipError(err).message,
				});
				p.stop();
				throw err;
			});
		}
		const done = p
			.run()
			.then(async (stats) => {
				fb?.stop();
				await fbDone;
				return stats;
			})
			.finally(closeAll);
		return {
			model: name,
			version: dp.modelMetadata(name).version,
			...connector,
			stop: () => p.stop(),
			get stopping() {
				return p.stopping;
			},
			done,
			stats: p.stats,
			feedback: fb?.stats,
			ready: () => !p.stopping && dp.ready(),
			metrics: async () => {
				const m = await dp.metrics();
				if (!payloadLog) return m;
				return {
					contentType: m.contentType,
					body: m.body + (await payloadLog.exposition()).body,
				};
			},
			details: () => (payloadLog ? { payload_log: payloadLog.status() } : {}),
		};
	} catch (err) {
		await closeAll();
		throw err;
	}
}
