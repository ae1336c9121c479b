// createRestServer: the Open Inference Protocol v2 REST adapter (plus Triton's extensions) around a DataPlane.
import Fastify, {
	type FastifyBaseLogger,
	type FastifyInstance,
	LogController,
} from "fastify";
import type { DataPlane } from "../../dataplane/types.ts";
import { registerAccessLog } from "../logging.ts";
import { Admission } from "./admission.ts";
import { registerRawBodyParser } from "./body.ts";
import type { RestContext } from "./context.ts";
import { registerErrorHandlers } from "./errors.ts";
import { registerExplainRoutes } from "./routes/explain.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerInferRoutes } from "./routes/infer.ts";
import { registerMetricsRoute } from "./routes/metrics.ts";
import { registerOpenApiRoute } from "./routes/openapi.ts";
import { registerPredictRoutes } from "./routes/predict.ts";
import { registerRepositoryRoutes } from "./routes/repository.ts";

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
}

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
	const app = Fastify({
		bodyLimit,
		requestTimeout: timeout ?? 0,
		...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
		logController: new LogController({ disableRequestLogging: true }),
		return503OnClosing: true,
		...(opts.accessLog ? { requestIdHeader: "x-request-id" } : {}),
	});
	const retryAfterSeconds = opts.retryAfterSeconds ?? 1;
	const ctx: RestContext = {
		dp,
		maxTimeoutMs: timeout,
		admission: new Admission(retryAfterSeconds),
		accessLog: opts.accessLog === true,
	};
	if (ctx.accessLog) registerAccessLog(app);
	const routes: { method: string; url: string }[] = [];
	ROUTES.set(app, routes);
	app.addHook("onRoute", (r) => {
		for (const method of [r.method].flat())
			if (method !== "HEAD") routes.push({ method, url: r.url });
	});
	registerRawBodyParser(app);
	registerErrorHandlers(app, {
		bodyLimit,
		retryAfterSeconds,
	});
	registerHealthRoutes(app, ctx);
	registerInferRoutes(app, ctx);
	registerPredictRoutes(app, ctx);
	registerExplainRoutes(app, ctx);
	registerRepositoryRoutes(app, ctx);
	registerMetricsRoute(app, ctx);
	registerOpenApiRoute(app, ctx);
	return app;
}
