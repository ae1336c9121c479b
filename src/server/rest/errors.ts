// Every REST error as {"error": "..."}: MlshipError status from the one table, Fastify's own errors mapped, 5xx kept generic.
import type { FastifyError, FastifyInstance } from "fastify";
import { MlshipError } from "../../protocol/errors.ts";
import { RateLimitedError } from "../auth/rate-limit.ts";

/** What the error handler needs to know about the server. */
export interface ErrorOptions {
	bodyLimit: number;
	retryAfterSeconds: number;
}

const INTERNAL = "internal server error";

/** Status and client-safe message of anything a route, a parser or Fastify threw. */
export function describeError(
	err: unknown,
	opts: ErrorOptions,
): { status: number; message: string } {
	if (err instanceof MlshipError) {
		const status = err.status;
		// MLSHIP_INTERNAL may wrap a foreign error whose text describes internals; the others are written for users.
		if (err.code === "MLSHIP_INTERNAL") return { status, message: INTERNAL };
		return { status, message: err.message };
	}
	const e = err as Partial<FastifyError> | undefined;
	switch (e?.code) {
		case "FST_ERR_CTP_BODY_TOO_LARGE":
			return {
				status: 413,
				message: `the request body is larger than the limit of ${opts.bodyLimit} bytes`,
			};
		case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
			return {
				status: 415,
				message:
					"unsupported Content-Type: send application/json, or application/octet-stream with Inference-Header-Content-Length",
			};
		case "FST_ERR_CTP_INVALID_JSON_BODY":
		case "FST_ERR_CTP_EMPTY_JSON_BODY":
			return { status: 400, message: `malformed JSON: ${e.message}` };
	}
	if (err instanceof SyntaxError)
		return { status: 400, message: `malformed JSON: ${err.message}` };
	// Fastify's and Node's client errors (bad URL, Content-Length mismatch, aborted body) carry a 4xx statusCode.
	const status = e?.statusCode;
	if (typeof status === "number" && status >= 400 && status < 500)
		return { status, message: e?.message ?? "bad request" };
	return { status: 500, message: INTERNAL };
}

/** Installs the error and not-found handlers. */
export function registerErrorHandlers(
	app: FastifyInstance,
	opts: ErrorOptions,
): void {
	app.setErrorHandler((err, req, reply) => {
		const { status, message } = describeError(err, opts);
		if (status >= 500 && status !== 503 && status !== 504)
			req.log.error({ err, reqId: req.id }, "request failed");
		else req.log.debug({ err, reqId: req.id }, "request refused");
		if (status === 503)
			reply.header("retry-after", String(opts.retryAfterSeconds));
		if (status === 401)
			reply.header("www-authenticate", 'Bearer realm="mlship"');
		if (err instanceof RateLimitedError)
			reply.header("retry-after", String(err.retryAfterSeconds));
		reply.code(status).type("application/json").send({ error: message });
	});
	app.setNotFoundHandler((req, reply) => {
		reply
			.code(404)
			.type("application/json")
			.send({
				error: `no route for ${req.method} ${(req.url.split("?")[0] ?? "").slice(0, 200)}`,
			});
	});
}
