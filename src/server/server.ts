// `mlship serve` as a library: the data plane behind REST and gRPC, with graceful shutdown.
import type { Logger } from "pino";
import { createDataPlane, type ModelSpec } from "../dataplane/dataplane.ts";
import type {
	DriftMonitor,
	OpenedMonitor,
} from "../dataplane/drift-monitor.ts";
import { isRegistryRef } from "../dataplane/entry.ts";
import type { DataPlane } from "../dataplane/types.ts";
import { startTracing } from "../monitor/tracing.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { AuditEntry } from "../registry/access.ts";
import type { ModelStore } from "../registry/types.ts";
import { Authenticator } from "./auth/authenticator.ts";
import { parseRateLimit } from "./auth/rate-limit.ts";
import type { startGrpcServer } from "./grpc/index.ts";
import { createLogger } from "./logging.ts";
import { serveWorker, workerMetrics } from "./processes.ts";
import { createRestServer } from "./rest/index.ts";
import type { ServerSettings } from "./settings.ts";
import { ServerTls, tlsFilesFrom } from "./tls.ts";
import { parseServerUrl, remoteServer, remoteStream } from "./ui/servers.ts";

// Kept here too for the callers that import it with the server.
export { defaultModelName } from "../bundle/model-name.ts";

/** How long a start-up failure may spend closing what it opened before the error is reported anyway. */
const CLOSE_ON_FAILURE_MS = 500;

async function closeWithin(ms: number, p: Promise<unknown>): Promise<void> {
	let timer: NodeJS.Timeout | undefined;
	await Promise.race([
		p.catch(() => undefined),
		new Promise<void>((r) => {
			timer = setTimeout(r, ms);
		}),
	]);
	clearTimeout(timer);
}

/** The drift monitor of `monitor_window` (see openDriftMonitor), or undefined when monitoring is off. */
async function startMonitor(
	settings: ServerSettings,
	log: Logger,
): Promise<OpenedMonitor | undefined> {
	if (settings.monitor_window === undefined) return undefined;
	const { openDriftMonitor } = await import("../dataplane/drift-monitor.ts");
	return openDriftMonitor({
		window: settings.monitor_window,
		registry: settings.registry,
		sources: settings.models.map((m) => m.source),
		minRows: settings.monitor_min_rows,
		method: settings.monitor_method,
		webhook: settings.alert_webhook,
		feedbackRetentionMs: settings.feedback_retention,
		onError: (err) => log.warn({ err: err.message }, "drift monitor"),
	});
}

/** Each model asked for that is not loaded after start, as an error naming it, its source and the reason. */
function failedModels(dp: DataPlane, settings: ServerSettings): MlshipError[] {
	const byName = new Map(dp.repositoryIndex().map((e) => [e.name, e]));
	const out: MlshipError[] = [];
	for (const m of settings.models) {
		const e = byName.get(m.name);
		if (e?.state === "READY") continue;
		const cause = (
			dp as DataPlane & { loadErrors?: MlshipError[] }
		).loadErrors?.find((x) => e?.reason?.includes(x.message));
		const source = m.source === m.name ? "" : ` (${m.source})`;
		out.push(
			new MlshipError(
				cause?.code ?? "MLSHIP_UNAVAILABLE",
				`model '${m.name}'${source} failed to load: ${e?.reason || cause?.message || e?.state || "not loaded"}`,
			),
		);
	}
	return out;
}

/** A listen failure as the user's error: which transport and address, what the OS said, and which flag to change. */
function listenError(
	what: "HTTP" | "gRPC",
	host: string,
	port: number,
	err: unknown,
): MlshipError {
	const text = err instanceof Error ? err.message : String(err);
	const code =
		(err as { code?: unknown })?.code ??
		/\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(text)?.[1];
	const flag = what === "HTTP" ? "--http-port" : "--grpc-port";
	const where = `cannot listen for ${what} on ${host.includes(":") ? `[${host}]` : host}:${port}`;
	let reason: string;
	if (code === "EADDRINUSE")
		reason = `the address is in use (EADDRINUSE): stop the process that holds it, or choose another ${flag}`;
	else if (code === "EADDRNOTAVAIL")
		reason = `${host} is not an address of this machine (EADDRNOTAVAIL): choose one of its addresses with --host, or 0.0.0.0 for all`;
	else if (code === "EACCES")
		reason = `permission denied (EACCES): ports below 1024 need privileges; choose another ${flag}`;
	else reason = `${text}: check --host and ${flag}`;
	return new MlshipError("MLSHIP_UNAVAILABLE", `${where}: ${reason}`, {
		cause: err,
	});
}

export interface RunningServer {
	httpPort: number;
	/** -1 when gRPC is off. */
	grpcPort: number;
	dataPlane: DataPlane;
	logger: Logger;
	/** Whether REST and gRPC listen with TLS (tls_cert/tls_key). */
	tls: boolean;
	/**
	 * Reads the TLS files again and serves new connections with them (SIGHUP); open connections keep theirs.
	 * A reload that fails keeps the old certificate and throws why. No-op without TLS.
	 */
	reloadTls(): void;
	/** Drift monitoring, when `monitor_window` is set. */
	monitor: DriftMonitor | undefined;
	/** Stops accepting, lets in-flight requests finish (up to shutdown_grace_ms), unloads models. */
	close(): Promise<void>;
}

/**
 * Starts the data plane and its transports.
 * @example const s = await startServer(resolveSettings({ models: [{ name: "iris", source: "./iris" }], http_port: 0 }))
 */
export async function startServer(
	settings: ServerSettings,
	logger?: Logger,
): Promise<RunningServer> {
	const log = logger ?? (await createLogger(settings));
	// One registry connection for models, tokens and the audit log; none when every model is a bundle path and no
	// registry was named (then tokens cannot exist: auth auto serves predict/read open and refuses admin).
	const registryUri =
		settings.registry ??
		(settings.models.some((m) => isRegistryRef(m.source))
			? (await import("../registry/open.ts")).defaultRegistryUri()
			: undefined);
	if (settings.auth === "required" && registryUri === undefined)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"--auth required needs a registry to read tokens from, and every model here is a bundle path: pass --registry URI (create tokens with 'mlship tokens create --registry URI'), or serve with --auth auto",
		);
	const store: ModelStore | undefined =
		registryUri === undefined
			? undefined
			: await (await import("../registry/open.ts")).openRegistry(registryUri);
	let auth: Authenticator;
	try {
		auth = await Authenticator.start({
			mode: settings.auth,
			allowOpenAdmin: settings.allow_open_admin,
			rateLimits: settings.rate_limit.map(parseRateLimit),
			...(store ? { tokens: store.tokens } : {}),
			onError: (err) =>
				log.warn(
					{ err: (err as Error).message },
					"cannot re-read API tokens from the registry; the last ones read stay in force",
				),
		});
	} catch (err) {
		await store?.close();
		throw err;
	}
	if (settings.auth === "required" && !auth.hasTokens)
		log.warn(
			"--auth required and no token exists: create one with 'mlship tokens create --scope predict'",
		);
	log.info(
		{
			auth: settings.auth,
			enforced: auth.enforced,
			allowOpenAdmin: settings.allow_open_admin,
		},
		"access control",
	);
	const audit = async (e: AuditEntry): Promise<void> => {
		log.info(
			{ action: e.action, target: e.target, actor: e.actor, source: e.source },
			"admin action",
		);
		await store?.audit
			.record(e)
			.catch((err: unknown) =>
				log.error(
					{ err: (err as Error).message, action: e.action },
					"cannot write the audit log",
				),
			);
	};
	// Read (and checked) before anything loads: a wrong path fails fast, naming the flag.
	const tlsFiles = tlsFilesFrom(settings);
	const tls = tlsFiles ? new ServerTls(tlsFiles) : undefined;
	const load: Record<string, number> = {};
	if (settings.workers) load.workers = settings.workers;
	if (settings.intra_op_threads)
		load.intraOpThreads = settings.intra_op_threads;
	const monitor = await startMonitor(settings, log);
	if (monitor)
		log.info(
			{
				window: settings.monitor_window,
				min_rows: settings.monitor_min_rows,
				method: settings.monitor_method,
				alerts: settings.alert_webhook !== undefined,
			},
			"drift monitoring on: GET /v2/models/{model}/monitor",
		);
	// Tracing starts before the models load, so their load spans are exported too.
	const tracing =
		settings.otlp_endpoint === undefined
			? undefined
			: await startTracing(settings.otlp_endpoint);
	// Opened before the models so every loaded instance gets its hook; it connects in the background, so an
	// unreachable destination does not stop the server (readiness details and metrics show it).
	const payloadLog =
		settings.log_payloads === undefined
			? undefined
			: await (await import("../payload-log/open.ts")).openPayloadLog(
					{
						destination: settings.log_payloads,
						sample: settings.log_sample,
						queueSize: settings.log_queue_size,
						rotateBytes: settings.log_rotate_size,
						rotateMs: settings.log_rotate_interval,
						retentionMs: settings.log_retention,
					},
					{
						onError: (err, ms) =>
							ms === undefined
								? log.warn(
										{ err: err.message },
										"payload log records refused by the destination",
									)
								: log.warn(
										{ err: err.message, retry_ms: ms },
										"payload log destination failed; records queue (then drop) until it is back",
									),
						onRecover: () => log.info("payload log destination is back"),
					},
				);
	const hooks = [
		...(monitor ? [monitor.monitor.hook] : []),
		...(payloadLog ? [payloadLog.hook] : []),
	];
	const dp = await createDataPlane({
		...(hooks.length > 0 ? { hooks } : {}),
		models: settings.models.map((m) => {
			const spec: ModelSpec = { name: m.name, source: m.source };
			if (m.entity_key !== undefined) spec.entityKey = m.entity_key;
			if (m.entity_fallback !== undefined)
				spec.entityFallback = m.entity_fallback;
			return spec;
		}),
		...(store ? { registry: store } : {}),
		batchingOverride: {
			max_batch_size: settings.max_batch_size,
			max_queue_delay_us: settings.max_queue_delay_us,
			max_queue_size: settings.max_queue_size,
			timeout_ms: settings.timeout_ms,
		},
		load,
		lazy: settings.lazy,
		maxLoadedModels: settings.max_loaded_models,
		memoryBudget: settings.memory_budget,
		// Replicas serving registry models publish per-version totals and drive rollouts (by lease).
		...(settings.models.some((m) => isRegistryRef(m.source))
			? {
					rollouts: {
						log: (level, msg, fields) => log[level](fields ?? {}, msg),
					},
				}
			: {}),
		...(settings.feedback_max_ids > 0
			? {
					feedback: {
						maxIds: settings.feedback_max_ids,
						retentionMs: settings.feedback_retention,
						qualityWindow: settings.quality_window,
					},
				}
			: {}),
		onEvent: (e) =>
			e.type === "updated"
				? log.info(e, "model updated")
				: log.error(e, "model update refused; the old version keeps serving"),
	});
	// Traffic, latency and feedback quality per window, for every served version (with or without a reference).
	monitor?.monitor.attach(dp);
	for (const e of dp.loadErrors)
		log.error({ err: e.message }, "model failed to load");
	const failed = settings.lazy ? [] : failedModels(dp, settings);
	if (failed.length > 0 && !settings.keep_going) {
		await closeWithin(CLOSE_ON_FAILURE_MS, dp.close());
		await closeWithin(
			CLOSE_ON_FAILURE_MS,
			Promise.all([
				auth.close(),
				store?.close(),
				payloadLog?.close(0),
				tracing?.(),
			]),
		);
		throw new MlshipError(
			failed[0]?.code ?? "MLSHIP_INTERNAL",
			`${failed.map((f) => f.message).join("\n")}\nnot serving: fix ${failed.length === 1 ? "it" : "them"}, or pass --keep-going to serve the other models`,
		);
	}
	for (const e of dp.repositoryIndex(true))
		log.info({ model: e.name, version: e.version }, "model ready");
	// One of `serve --processes N`: /metrics answers every process's sum, readiness says which process answered.
	const worker = serveWorker();
	const json = dp.metricsJson?.bind(dp);
	const clusterMetrics =
		worker && json ? workerMetrics(async () => json()) : undefined;
	const rest = createRestServer(dp, {
		...(clusterMetrics ? { clusterMetrics } : {}),
		bodyLimit: settings.body_limit_bytes,
		requestTimeoutMs: settings.request_timeout_ms,
		retryAfterSeconds: settings.retry_after_seconds,
		accessLog: settings.access_log,
		logger: log,
		auth,
		audit,
		maxConnections: settings.max_connections,
		headersTimeoutMs: settings.headers_timeout_ms,
		maxHeaderBytes: settings.max_header_bytes,
		...(settings.model_root !== undefined && {
			modelRoot: settings.model_root,
		}),
		...(tls ? { https: tls.httpsOptions() } : {}),
		...(monitor ? { monitor: monitor.monitor } : {}),
		...(worker ? { readiness: () => ({ ...worker }) } : {}),
		...(payloadLog
			? {
					readiness: () => ({ payload_log: payloadLog.status() }),
					metrics: [() => payloadLog.exposition()],
				}
			: {}),
		...(store && { registry: store }),
		...(settings.ui && {
			ui: {
				servers: settings.ui_servers.map((u, i) =>
					remoteServer(`s${i + 1}`, parseServerUrl(u)),
				),
				streams: settings.ui_streams.map((u, i) =>
					remoteStream(`t${i + 1}`, parseServerUrl(u, "--ui-stream")),
				),
			},
		}),
	});
	let grpc: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
	let httpPort: number;
	try {
		await rest
			.listen({ host: settings.host, port: settings.http_port })
			.catch((err: unknown) => {
				throw listenError("HTTP", settings.host, settings.http_port, err);
			});
		const address = rest.server.address();
		httpPort =
			typeof address === "object" && address
				? address.port
				: settings.http_port;
		if (settings.grpc_port >= 0)
			// Loaded only when gRPC is on: grpc-js and the proto loader are most of the server's start-up.
			grpc = await (await import("./grpc/index.ts"))
				.startGrpcServer(dp, {
					host: settings.host,
					port: settings.grpc_port,
					maxMessageBytes: settings.body_limit_bytes,
					auth,
					audit,
					...(settings.model_root !== undefined && {
						modelRoot: settings.model_root,
					}),
					onInternalError: (err, method) =>
						log.error({ err, method }, "grpc internal error"),
					...(tls
						? {
								credentials: tls.grpcCredentials(await import("@grpc/grpc-js")),
							}
						: {}),
				})
				.catch((err: unknown) => {
					throw listenError("gRPC", settings.host, settings.grpc_port, err);
				});
	} catch (err) {
		// A server that cannot serve must not linger: close what did start so the process can exit.
		await closeWithin(
			CLOSE_ON_FAILURE_MS,
			Promise.all([
				rest.close(),
				dp.close(),
				monitor?.close(),
				payloadLog?.close(0),
				tracing?.(),
			]).then(() => Promise.all([auth.close(), store?.close()])),
		);
		throw err;
	}
	// The https server takes each reload's context for new handshakes (grpc-js does the same through its provider).
	tls?.onChange(() =>
		(rest.server as import("node:https").Server).setSecureContext(
			tls.httpsOptions(),
		),
	);
	log.info(
		{
			http: httpPort,
			grpc: grpc?.port ?? null,
			host: settings.host,
			tls: tls !== undefined,
			mtls: tls?.files.clientCa !== undefined,
		},
		"mlship serving",
	);
	let closing: Promise<void> | undefined;
	return {
		httpPort,
		grpcPort: grpc?.port ?? -1,
		dataPlane: dp,
		logger: log,
		tls: tls !== undefined,
		reloadTls() {
			tls?.reload();
		},
		monitor: monitor?.monitor,
		close() {
			closing ??= (async () => {
				const grace = new Promise<void>((r) =>
					setTimeout(r, settings.shutdown_grace_ms).unref(),
				);
				// Keep-alive connections that finish their last request after close began are idle but open;
				// closing them as they go idle lets close() end when the work ends, not at the keep-alive timeout.
				const sweep = setInterval(() => rest.server.closeIdleConnections(), 25);
				// The payload log closes after the data plane: it writes the records of the requests that finished
				// while draining. The registry connection (tokens, audit, monitor windows) closes last.
				const stop = Promise.all([rest.close(), grpc?.close(true)])
					.then(() => dp.close())
					.then(() =>
						Promise.all([monitor?.close(), payloadLog?.close(), tracing?.()]),
					)
					.then(() => auth.close())
					.then(() => store?.close());
				await Promise.race([stop, grace]);
				clearInterval(sweep);
			})();
			return closing;
		},
	};
}
