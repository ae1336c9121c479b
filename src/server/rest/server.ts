// createRestServer: the Open Inference Protocol v2 REST adapter (plus Triton's extensions) around a DataPlane.
import Fastify, {
	type FastifyBaseLogger,
	type FastifyInstance,
	LogController,
} from "fastify";
import type { ArchiveLimits } from "../../bundle/archive.ts";
import type { DriftMonitor } from "../../dataplane/drift-monitor.ts";
import type { DataPlane } from "../../dataplane/types.ts";
import type { AuditEntry } from "../../registry/access.ts";
import type { ModelStore } from "../../registry/types.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import { registerAccessLog } from "../logging.ts";
import { registerUi } from "../ui/routes.ts";
import { localServer, type UiServer, type UiStream } from "../ui/servers.ts";
import { Admission } from "./admission.ts";
import { registerAuth } from "./auth.ts";
import { registerRawBodyParser } from "./body.ts";
import type { RestContext } from "./context.ts";
import { registerErrorHandlers } from "./errors.ts";
import { registerAliasRoute } from "./routes/aliases.ts";
import { registerExplainRoutes } from "./routes/explain.ts";
import { registerFeedbackRoutes } from "./routes/feedback.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerInferRoutes } from "./routes/infer.ts";
import { registerMetricsRoute } from "./routes/metrics.ts";
import { registerMonitorRoute } from "./routes/monitor.ts";
import { registerOpenApiRoute } from "./routes/openapi.ts";
import { registerPredictRoutes } from "./routes/predict.ts";
import { registerRepositoryRoutes } from "./routes/repository.ts";
import { registerUploadRoute } from "./routes/upload.ts";

export interface RestServerOptions {
	/** Largest request body in bytes (413 above it). Default 64 MiB. */
	bodyLimit?: number;
	/**
	 * HTTP request timeout in ms: the whole request must arrive within it (Node's `requestTimeout`), and it
	 * bounds the inference timeout a client asks for with `parameters.timeout` (µs, Triton) or the
	 * `x-request-timeout-ms` header. Without a client timeout the model's own `timeout_ms` applies.
	 * 0 or unset = no limit.
	 */
	requestTimeoutMs?: number;
	/** A pino logger, or false for none (default). Per-request lines are never logged; failures are. */
	logger?: FastifyBaseLogger | false;
	/** Retry-After (seconds) sent with every 503. Default 1. */
	retryAfterSeconds?: number;
	/**
	 * Log one line per request (method, path, status, duration, request id — `x-request-id` when the client sends
	 * one —, model, version). Default false: then no per-request hook is registered.
	 */
	accessLog?: boolean;
	/**
	 * Limits of a bundle uploaded to `POST /v2/repository/models/{name}/versions`: archive bytes (default
	 * `bodyLimit`), entries (default 1000), extracted bytes (default 4 × `bodyLimit`).
	 */
	uploadLimits?: Partial<ArchiveLimits>;
	/** Token checks (src/server/auth); without one every route is open, admin included (library use and tests). */
	auth?: Authenticator;
	/** Records admin actions (load, unload) in the audit log; its failures are the caller's to log. */
	audit?: (e: AuditEntry) => Promise<void>;
	/** Most open connections (Node's `server.maxConnections`); more are closed at once. Default 10,000. */
	maxConnections?: number;
	/**
	 * The request headers must arrive within this many ms of the connection (or of the previous request); slower
	 * clients, and new connections that send nothing, are closed. Default 10,000 (Node's own is 60,000, checked
	 * every 30 s; here every second at most).
	 */
	headersTimeoutMs?: number;
	/** Largest request header block in bytes; larger gets 431. Default 16 KiB (Node's default). */
	maxHeaderBytes?: number;
	/** `load` of a name that is not served loads ROOT/NAME (a bundle) or ROOT/NAME.onnx; default: served models only. */
	modelRoot?: string;
	/** Serve HTTPS with these options (cert, key, client CA): see ServerTls.httpsOptions. Default: plain HTTP. */
	https?: import("node:https").ServerOptions;
	/** Drift monitoring (its hook must be in the data plane's hooks): serves `/v2/models/{m}/monitor` and its gauges. */
	monitor?: DriftMonitor;
	/** More of `/v2/health/ready`'s details (e.g. `payload_log`): shown, never making the server unready. */
	readiness?: () => Record<string, unknown>;
	/** `serve --processes N`: the data plane metrics of every process, summed (replaces this process's own). */
	clusterMetrics?: () => Promise<string>;
	/** More Prometheus expositions appended to `GET /metrics` (each with metric names of its own). */
	metrics?: (() => Promise<{ contentType: string; body: string }>)[];
	/** The registry the served models come from: adds `PUT /v2/repository/models/:model/aliases/:alias` (admin). */
	registry?: ModelStore;
	/**
	 * The web dashboard under `/ui` (`serve --ui`): this server first, then `servers` (other `mlship serve`
	 * processes, read with the user's token). Off by default.
	 */
	ui?: {
		servers?: readonly UiServer[];
		streams?: readonly UiStream[];
		intervalMs?: number;
	};
}

export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

const ROUTES = new WeakMap<
	FastifyInstance,
	{ method: string; url: string }[]
>();

/** Every route a REST server registered (method and fastify URL pattern), e.g. to check the OpenAPI document covers them. */
export function registeredRoutes(
	app: FastifyInstance,
): readonly { method: string; url: string }[] {
	return ROUTES.get(app) ?? [];
}

/**
 * Builds the REST server (not listening: call `.listen({ host, port })`). Routes: `GET /v2`, `/v2/health/live`,
 * `/v2/health/ready`, model metadata and ready, `POST .../infer` (JSON and binary tensor data), `.../predict`,
 * the model repository extension, `GET /metrics` and `GET /v2/openapi.json`. Every error is `{"error": "..."}`.
 * @example
 * const app = createRestServer(await createDataPlane({ models: [{ name: "iris", source: "bundles/iris" }] }));
 * await app.listen({ host: "127.0.0.1", port: 8080 });
 */
export function createRestServer(
	dp: DataPlane,
	opts: RestServerOptions = {},
): FastifyInstance {
	const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
	const timeout =
		opts.requestTimeoutMs !== undefined && opts.requestTimeoutMs > 0
			? opts.requestTimeoutMs
			: undefined;
	// Node requires headersTimeout ≤ requestTimeout when the latter is set.
	const headersTimeout = Math.min(
		opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
		timeout ?? Number.POSITIVE_INFINITY,
	);
	const nodeServer = {
		maxHeaderSize: opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
		headersTimeout,
		// How often Node looks for connections past headersTimeout/requestTimeout (its default, 30 s, would let
		// idle connections pile up for half a minute).
		connectionsCheckingInterval: Math.max(
			50,
			Math.min(1000, Math.floor(headersTimeout / 2)),
		),
	};
	// With `https` Fastify's server is an https.Server; routes and hooks are the same, so one instance type serves.
	// Fastify passes `http` options to http.createServer only: with TLS the same limits go into the https options.
	const app = (Fastify as (o: object) => FastifyInstance)({
		...(opts.https
			? { https: { ...nodeServer, ...opts.https } }
			: { http: nodeServer }),
		bodyLimit,
		requestTimeout: timeout ?? 0,
		...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
		// Fastify makes a child logger per request (a pino child costs ~10 µs of CPU, about a tenth of a one-row
		// request); only failures are logged per request, and they name the request id themselves (errors.ts), so
		// without the access log every request shares the server's logger.
		...(opts.logger && !opts.accessLog
			? { childLoggerFactory: (logger: FastifyBaseLogger) => logger }
			: {}),
		logController: new LogController({ disableRequestLogging: true }),
		return503OnClosing: true,
		...(opts.accessLog ? { requestIdHeader: "x-request-id" } : {}),
	});
	app.server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
	const retryAfterSeconds = opts.retryAfterSeconds ?? 1;
	const ctx: RestContext = {
		dp,
		maxTimeoutMs: timeout,
		admission: new Admission(retryAfterSeconds),
		accessLog: opts.accessLog === true,
		audit: opts.audit ?? (async () => {}),
		modelRoot: opts.modelRoot,
		monitor: opts.monitor,
		readiness: opts.readiness,
		metrics: opts.metrics ?? [],
		clusterMetrics: opts.clusterMetrics,
	};
	if (ctx.accessLog) registerAccessLog(app);
	const routes: { method: string; url: string }[] = [];
	ROUTES.set(app, routes);
	app.addHook("onRoute", (r) => {
		for (const method of [r.method].flat())
			if (method !== "HEAD") routes.push({ method, url: r.url });
	});
	if (opts.auth) registerAuth(app, opts.auth);
	registerRawBodyParser(app);
	registerErrorHandlers(app, {
		bodyLimit,
		retryAfterSeconds,
	});
	registerHealthRoutes(app, ctx);
	registerInferRoutes(app, ctx);
	registerPredictRoutes(app, ctx);
	registerFeedbackRoutes(app, ctx);
	registerExplainRoutes(app, ctx);
	registerRepositoryRoutes(app, ctx);
	registerUploadRoute(app, ctx, {
		maxBytes: bodyLimit,
		maxEntries: 1000,
		maxExtractedBytes: 4 * bodyLimit,
		...opts.uploadLimits,
	});
	registerMetricsRoute(app, ctx);
	registerMonitorRoute(app, ctx);
	registerOpenApiRoute(app, ctx);
	if (opts.registry) registerAliasRoute(app, opts.registry);
	if (opts.ui)
		registerUi(app, {
			...(opts.registry && { store: opts.registry }),
			servers: [localServer(dp, ctx.audit, app), ...(opts.ui.servers ?? [])],
			...(opts.ui.streams && { streams: opts.ui.streams }),
			...(opts.ui.intervalMs !== undefined && {
				intervalMs: opts.ui.intervalMs,
			}),
		});
	return app;
}
