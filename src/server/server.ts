// `mlship serve` as a library: the data plane behind REST and gRPC, with graceful shutdown.
import pino, { type Logger } from "pino";
import { createDataPlane, type ModelSpec } from "../dataplane/dataplane.ts";
import type { DataPlane } from "../dataplane/types.ts";
import type { startGrpcServer } from "./grpc/index.ts";
import { createRestServer } from "./rest/index.ts";
import type { ServerSettings } from "./settings.ts";

// Kept here too for the callers that import it with the server.
export { defaultModelName } from "../bundle/model-name.ts";

export interface RunningServer {
	httpPort: number;
	/** -1 when gRPC is off. */
	grpcPort: number;
	dataPlane: DataPlane;
	logger: Logger;
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
	const log = logger ?? pino({ level: settings.log_level });
	const load: Record<string, number> = {};
	if (settings.workers) load.workers = settings.workers;
	if (settings.intra_op_threads)
		load.intraOpThreads = settings.intra_op_threads;
	const dp = await createDataPlane({
		models: settings.models.map((m) => {
			const spec: ModelSpec = { name: m.name, source: m.source };
			if (m.entity_key !== undefined) spec.entityKey = m.entity_key;
			if (m.entity_fallback !== undefined)
				spec.entityFallback = m.entity_fallback;
			return spec;
		}),
		...(settings.registry ? { registry: settings.registry } : {}),
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
		onEvent: (e) =>
			e.type === "updated"
				? log.info(e, "model updated")
				: log.error(e, "model update refused; the old version keeps serving"),
	});
	for (const e of dp.loadErrors)
		log.error({ err: e.message }, "model failed to load");
	for (const e of dp.repositoryIndex(true))
		log.info({ model: e.name, version: e.version }, "model ready");
	const rest = createRestServer(dp, {
		bodyLimit: settings.body_limit_bytes,
		requestTimeoutMs: settings.request_timeout_ms,
		retryAfterSeconds: settings.retry_after_seconds,
		logger: log,
	});
	await rest.listen({ host: settings.host, port: settings.http_port });
	const address = rest.server.address();
	const httpPort =
		typeof address === "object" && address ? address.port : settings.http_port;
	let grpc: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
	if (settings.grpc_port >= 0)
		// Loaded only when gRPC is on: grpc-js and the proto loader are most of the server's start-up.
		grpc = await (await import("./grpc/index.ts")).startGrpcServer(dp, {
			host: settings.host,
			port: settings.grpc_port,
			maxMessageBytes: settings.body_limit_bytes,
			onInternalError: (err, method) =>
				log.error({ err, method }, "grpc internal error"),
		});
	log.info(
		{ http: httpPort, grpc: grpc?.port ?? null, host: settings.host },
		"mlship serving",
	);
	let closing: Promise<void> | undefined;
	return {
		httpPort,
		grpcPort: grpc?.port ?? -1,
		dataPlane: dp,
		logger: log,
		close() {
			closing ??= (async () => {
				const grace = new Promise<void>((r) =>
					setTimeout(r, settings.shutdown_grace_ms).unref(),
				);
				// Keep-alive connections that finish their last request after close began are idle but open;
				// closing them as they go idle lets close() end when the work ends, not at the keep-alive timeout.
				const sweep = setInterval(() => rest.server.closeIdleConnections(), 25);
				const stop = Promise.all([rest.close(), grpc?.close(true)]).then(() =>
					dp.close(),
				);
				await Promise.race([stop, grace]);
				clearInterval(sweep);
			})();
			return closing;
		},
	};
}
