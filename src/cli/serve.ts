// `mlship serve`: Open Inference Protocol v2 over REST and gRPC for bundles and registry models.
import { Command } from "commander";
import { MlshipError } from "../protocol/errors.ts";
import { banner, createLogger, prettyLogs } from "../server/logging.ts";
import { isServeWorker, runPrimary } from "../server/processes.ts";
import { defaultModelName, startServer } from "../server/server.ts";
import {
	parseModelArg,
	resolveSettings,
	type ServerSettings,
} from "../server/settings.ts";
import { action, example } from "./common.ts";
import {
	type PayloadLogFlags,
	payloadLogOptions,
	payloadLogSettings,
} from "./payload-log.ts";

interface ServeOpts extends PayloadLogFlags {
	tlsCert?: string;
	tlsKey?: string;
	tlsClientCa?: string;
	otlpEndpoint?: string;
	model?: string[];
	config?: string;
	host?: string;
	httpPort?: string;
	grpcPort?: string;
	registry?: string;
	maxBatchSize?: string;
	maxQueueDelayUs?: string;
	maxQueueSize?: string;
	timeoutMs?: string;
	processes?: string;
	workers?: string;
	logLevel?: string;
	lazy?: boolean;
	keepGoing?: boolean;
	logFormat?: string;
	accessLog?: boolean;
	maxLoadedModels?: string;
	memoryBudget?: string;
	monitorWindow?: string;
	monitorMinRows?: string;
	monitorMethod?: string;
	alertWebhook?: string;
	entityKey?: string[];
	entityNoFallback?: string[];
	auth?: string;
	allowOpenAdmin?: boolean;
	rateLimit?: string[];
	maxConnections?: string;
	headersTimeoutMs?: string;
	maxHeaderBytes?: string;
	modelRoot?: string;
	feedbackMaxIds?: string;
	feedbackRetention?: string;
	qualityWindow?: string;
	ui?: boolean;
	uiServer?: string[];
	uiStream?: string[];
}

export function serveCommand(): Command {
	const cmd = payloadLogOptions(new Command("serve"))
		.description(
			"Serve models over the Open Inference Protocol v2 (REST and gRPC) with adaptive batching",
		)
		.option(
			"-m, --model <src[:name]>",
			"bundle dir, .onnx file or registry ref (name@alias), optionally :name (repeatable)",
			(v: string, acc: string[] = []) => [...acc, v],
		)
		.option(
			"--config <file>",
			"settings file (YAML/JSON); env MLSHIP_* and flags override it",
		)
		.option("--host <host>", "address to listen on (default 0.0.0.0)")
		.option("--http-port <port>", "REST port (default 8080; 0 = any free)")
		.option(
			"--grpc-port <port>",
			"gRPC port (default 8081; 0 = any free; -1 = off)",
		)
		.option(
			"--registry <uri>",
			"registry for registry refs (default: MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
		)
		.option(
			"--max-batch-size <rows>",
			"override every model's max_batch_size (1 = no batching)",
		)
		.option(
			"--max-queue-delay-us <us>",
			"override every model's max_queue_delay_us",
		)
		.option(
			"--max-queue-size <n>",
			"override every model's queue limit (then 503)",
		)
		.option("--timeout-ms <ms>", "override every model's per-request timeout")
		.option(
			"--processes <n>",
			"server processes sharing the ports, so HTTP parsing uses every core; /metrics sums them (default 1)",
		)
		.option(
			"--workers <n>",
			"model worker threads, shared by all served models (default: cores)",
		)
		.option("--lazy", "load models on their first request instead of at start")
		.option(
			"--keep-going",
			"serve the models that loaded when another fails at start (default: exit non-zero)",
		)
		.option(
			"--max-loaded-models <n>",
			"most models loaded at once; least recently used are unloaded (0 = no limit)",
		)
		.option(
			"--memory-budget <size>",
			"most estimated memory of loaded models (e.g. 2GiB); least recently used are unloaded",
		)
		.option(
			"--entity-key <model=key>",
			"serve MODEL as a per-entity family keyed by KEY (header x-mlship-entity, parameter or feature KEY); repeatable",
			(v: string, acc: string[] = []) => [...acc, v],
		)
		.option(
			"--entity-no-fallback <model>",
			"a family's request whose entity has no model gets 404 instead of the default model; repeatable",
			(v: string, acc: string[] = []) => [...acc, v],
		)
		.option(
			"--auth <mode>",
			"API tokens: auto (default: required once any token exists in the registry; before that predict/read open, admin refused) | required | off",
		)
		.option(
			"--allow-open-admin",
			"let load/unload through without a token when none is asked for (--auth off, or auto before any token exists)",
		)
		.option(
			"--model-root <dir>",
			"admin load of a name that is not served loads DIR/NAME (bundle) or DIR/NAME.onnx (default: none)",
		)
		.option(
			"--rate-limit <scope=n/unit>",
			"per token (or per client address without one): predict=1000/s, read=100/m; over it 429 + Retry-After (repeatable)",
			(v: string, acc: string[] = []) => [...acc, v],
		)
		.option(
			"--max-connections <n>",
			"most open HTTP connections (default 10000)",
		)
		.option(
			"--headers-timeout-ms <ms>",
			"close connections that do not send their request headers within this (default 10000)",
		)
		.option(
			"--max-header-bytes <n>",
			"largest request header block; larger gets 431 (default 16384)",
		)
		.option(
			"--ui",
			"serve the web dashboard on the HTTP port under /ui (models, live charts, experiments, servers)",
		)
		.option(
			"--ui-server <url>",
			"another mlship serve the dashboard also shows (repeatable; read with the user's token)",
			(v: string, acc: string[] = []) => [...acc, v],
		)
		.option(
			"--ui-stream <url>",
			"an mlship stream's --metrics-port URL the dashboard's Servers page shows (repeatable), e.g. http://127.0.0.1:9464",
			(v: string, acc: string[] = []) => [...acc, v],
		)
		.option("--log-level <level>", "fatal|error|warn|info|debug|trace|silent")
		.option(
			"--log-format <format>",
			"auto (pretty with a banner on a terminal, else JSON lines) | json | pretty",
		)
		.option(
			"--tls-cert <file>",
			"PEM certificate: REST and gRPC listen with TLS only (with --tls-key; reloaded on SIGHUP)",
		)
		.option("--tls-key <file>", "PEM private key of --tls-cert")
		.option(
			"--tls-client-ca <file>",
			"mTLS: require client certificates signed by this CA (others are refused)",
		)
		.option(
			"--monitor-window <duration>",
			"drift monitoring: profile traffic in windows of this length (30s, 5m) against each bundle's reference profile, and keep every version's requests, errors, latency histogram and feedback quality per window (registry table monitor_stats); GET /v2/models/{m}/monitor, mlship monitor report",
		)
		.option(
			"--monitor-min-rows <n>",
			"fewest rows per window for a drift verdict (default 50)",
		)
		.option(
			"--monitor-method <method>",
			"default (Evidently's choice by type and size) | psi",
		)
		.option(
			"--alert-webhook <url>",
			"POST drift alerts (JSON) to this URL, with hysteresis (no flapping)",
		)
		.option(
			"--otlp-endpoint <url>",
			"export OpenTelemetry traces (decode, queue, compute, encode, load, swap) over OTLP/HTTP, e.g. http://127.0.0.1:4318/v1/traces",
		)
		.option(
			"--access-log",
			"log each request: method, path, status, duration, request id, model, version (off by default: costs nothing)",
		)
		.option(
			"--feedback-max-ids <n>",
			"request ids kept for feedback (POST /v2/models/{m}/feedback), ~400 bytes each (default 100000; 0 = off)",
		)
		.option(
			"--feedback-retention <duration>",
			"how long an answer can receive feedback, e.g. 30m, 1h (default 1h)",
		)
		.option(
			"--quality-window <rows>",
			"live quality window: the newest N rows with feedback (default 1000)",
		)
		.action(
			action(async (opts: ServeOpts) => {
				const models = await Promise.all(
					(opts.model ?? []).map(async (m) => {
						const { source, name } = parseModelArg(m);
						return { source, name: name ?? (await defaultModelName(source)) };
					}),
				);
				const flags: Record<string, unknown> = {
					host: opts.host,
					http_port: opts.httpPort,
					grpc_port: opts.grpcPort,
					registry: opts.registry,
					max_batch_size: opts.maxBatchSize,
					max_queue_delay_us: opts.maxQueueDelayUs,
					max_queue_size: opts.maxQueueSize,
					timeout_ms: opts.timeoutMs,
					processes: opts.processes,
					workers: opts.workers,
					log_level: opts.logLevel,
					log_format: opts.logFormat,
					access_log: opts.accessLog,
					lazy: opts.lazy,
					keep_going: opts.keepGoing,
					max_loaded_models: opts.maxLoadedModels,
					memory_budget: opts.memoryBudget,
					auth: opts.auth,
					allow_open_admin: opts.allowOpenAdmin,
					rate_limit: opts.rateLimit,
					max_connections: opts.maxConnections,
					headers_timeout_ms: opts.headersTimeoutMs,
					max_header_bytes: opts.maxHeaderBytes,
					model_root: opts.modelRoot,
					tls_cert: opts.tlsCert,
					tls_key: opts.tlsKey,
					tls_client_ca: opts.tlsClientCa,
					monitor_window: opts.monitorWindow,
					monitor_min_rows: opts.monitorMinRows,
					monitor_method: opts.monitorMethod,
					alert_webhook: opts.alertWebhook,
					feedback_max_ids: opts.feedbackMaxIds,
					feedback_retention: opts.feedbackRetention,
					quality_window: opts.qualityWindow,
					otlp_endpoint: opts.otlpEndpoint,
					...payloadLogSettings(opts),
					ui: opts.ui,
					ui_servers: opts.uiServer,
					ui_streams: opts.uiStream,
				};
				if (models.length > 0) flags.models = models;
				const settings = resolveSettings(flags, opts.config);
				applyEntityFlags(
					settings.models,
					opts.entityKey ?? [],
					opts.entityNoFallback ?? [],
				);
				if (settings.models.length === 0) {
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						"no models to serve: pass --model (or models: in --config, or MLSHIP_MODELS)",
					);
				}
				if (settings.processes > 1 && !isServeWorker()) {
					process.exitCode = await servePrimary(settings);
					return;
				}
				const server = await startServer(settings).catch((err: unknown) => {
					// Whatever start-up could not close must not keep a useless process alive: the error is reported
					// by action() and the process ends within a second either way.
					setTimeout(() => {
						process.stderr.write(
							"warning: handles were still open 1 s after a failed start; exiting\n",
						);
						process.exit();
					}, 1000).unref();
					throw err;
				});
				if (prettyLogs(settings.log_format))
					process.stdout.write(
						`${banner({
							host: settings.host,
							httpPort: server.httpPort,
							grpcPort: server.grpcPort,
							registry: server.dataPlane.registry()
								? (settings.registry ??
									process.env.MLSHIP_REGISTRY ??
									"sqlite:.mlship/registry.db")
								: undefined,
							models: server.dataPlane.repositoryIndex(),
						})}\n`,
					);
				const stop = (signal: string) => {
					server.logger.info(
						{ signal },
						"shutting down: finishing in-flight requests",
					);
					server.close().then(
						() => process.exit(0),
						() => process.exit(1),
					);
				};
				// SIGHUP: new certificate files (renewed by cert-manager, certbot…) for new connections; none is dropped.
				process.on("SIGHUP", () => {
					if (!server.tls) {
						server.logger.warn("SIGHUP: no TLS configured; nothing to reload");
						return;
					}
					try {
						server.reloadTls();
						server.logger.info("TLS certificate reloaded");
					} catch (err) {
						server.logger.error(
							{ err: (err as Error).message },
							"TLS reload failed; still serving the previous certificate",
						);
					}
				});
				process.once("SIGTERM", () => stop("SIGTERM"));
				process.once("SIGINT", () => stop("SIGINT"));
			}),
		);
	return example(
		cmd,
		"mlship serve --model examples/iris --model churn@production",
		"mlship serve --registry postgres://mlship@db/registry --model price@production --entity-key price=city --lazy --max-loaded-models 1000 --memory-budget 4GiB",
		"mlship serve --registry sqlite:./registry.db -m churn@production --ui   # then open http://127.0.0.1:8080/ui/",
		"mlship serve -m ./bundles/gbdt:gbdt --http-port 9000 --grpc-port -1 --max-batch-size 64",
		"mlship serve -m churn@production --processes 2   # two server processes on :8080/:8081, /metrics sums both",
		"mlship serve --model churn@production --auth required --rate-limit predict=1000/s   # tokens: mlship tokens create --scope predict",
		"mlship serve -m examples/iris --tls-cert server.pem --tls-key server.key --tls-client-ca clients-ca.pem   # then: kill -HUP <pid> after renewing",
		"mlship serve -m churn@production --monitor-window 5m --alert-webhook https://hooks.example/drift && curl -s localhost:8080/v2/models/churn/monitor?since=1h",
		'mlship serve -m churn@production --feedback-max-ids 500000 --feedback-retention 6h   # then: curl -d \'{"id":"<x-request-id>","truth":1}\' localhost:8080/v2/models/churn/feedback',
		"mlship serve -m churn@production --log-payloads ./payloads --log-sample 0.1 --log-retention 7d",
		'curl -s localhost:8080/v2/models/iris-logreg/infer -d \'{"inputs":[{"name":"float_input","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}\'',
	);
}

/**
 * `--processes N`: this process starts N servers on the same ports and stops them together; resolves with the exit
 * code. What each process would keep on its own (a payload log's files, drift windows, the dashboard's view of one
 * process) is refused rather than split.
 */
async function servePrimary(settings: ServerSettings): Promise<number> {
	const alone = [
		settings.log_payloads !== undefined && "--log-payloads",
		settings.monitor_window !== undefined && "--monitor-window",
		settings.ui && "--ui",
	].filter(Boolean);
	if (alone.length > 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--processes ${settings.processes} cannot be combined with ${alone.join(", ")}: each process would keep its own; serve with --processes 1, or run one server per port behind a load balancer`,
		);
	const log = await createLogger(settings);
	return runPrimary({
		processes: settings.processes,
		log: (level, msg, fields) => log[level](fields ?? {}, msg),
	});
}

/** Applies --entity-key MODEL=KEY and --entity-no-fallback MODEL to the models being served. */
function applyEntityFlags(
	models: ServerSettings["models"],
	keys: string[],
	noFallback: string[],
): void {
	const find = (name: string, flag: string) => {
		const m = models.find((x) => x.name === name);
		if (!m)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${flag} names model '${name}', which is not served (served: ${models.map((x) => x.name).join(", ") || "none"})`,
			);
		return m;
	};
	for (const k of keys) {
		const eq = k.indexOf("=");
		if (eq <= 0 || eq === k.length - 1)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`--entity-key expects MODEL=KEY (e.g. price=city), got '${k}'`,
			);
		find(k.slice(0, eq), "--entity-key").entity_key = k.slice(eq + 1);
	}
	for (const n of noFallback) {
		const m = find(n, "--entity-no-fallback");
		if (m.entity_key === undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`--entity-no-fallback ${n}: model '${n}' has no --entity-key`,
			);
		m.entity_fallback = false;
	}
}
