// What every REST route shares: the data plane and the per-request timeout rules.
import type { FastifyRequest } from "fastify";
import type { DriftMonitor } from "../../dataplane/drift-monitor.ts";
import type { DataPlane, InferOptions } from "../../dataplane/types.ts";
import { invalidInput, MlshipError } from "../../protocol/errors.ts";
import {
	headerValue,
	TRACEPARENT,
	TRACESTATE,
	type TraceSpan,
	tracer,
} from "../../protocol/trace.ts";
import type { AuditEntry } from "../../registry/access.ts";
import type { Admission, ModelParams } from "./admission.ts";

export type { ModelParams };

/** Per-request timeout header (milliseconds); `parameters.timeout` (microseconds, Triton) works too. */
export const TIMEOUT_HEADER = "x-request-timeout-ms";
/** Names the entity of a request to a per-entity family (REST header, gRPC metadata). */
export const ENTITY_HEADER = "x-mlship-entity";

export interface RestContext {
	dp: DataPlane;
	/** Upper bound of the timeout a client may ask for, in ms (undefined = no bound). */
	maxTimeoutMs: number | undefined;
	/** Refuses requests to a full model before their body is read. */
	admission: Admission;
	/** The access log is on: handlers record the served version for it. */
	accessLog: boolean;
	/** Records an admin action in the registry's audit log (never throws; failures are logged). */
	audit: (e: AuditEntry) => Promise<void>;
	/** Where `load` finds models that are not served yet, by name (undefined: served models only). */
	modelRoot: string | undefined;
	/** Drift monitoring, when on (`/v2/models/{m}/monitor`, drift gauges in `/metrics`). */
	monitor?: DriftMonitor | undefined;
	/** More readiness details (payload log), shown by `/v2/health/ready`. */
	readiness: (() => Record<string, unknown>) | undefined;
	/** More expositions appended to `/metrics`. */
	metrics: (() => Promise<{ contentType: string; body: string }>)[];
	/** `serve --processes N`: every process's data plane metrics, summed. */
	clusterMetrics: (() => Promise<string>) | undefined;
}

/** Rethrows `err`, first telling admission control when the data plane refused the request as overloaded. */
export function overloaded(
	ctx: RestContext,
	req: FastifyRequest,
	err: unknown,
): never {
	if (err instanceof MlshipError && err.code === "MLSHIP_OVERLOADED")
		ctx.admission.overflowed(req);
	throw err;
}

/**
 * Infer options for a request: the caller's token id, the entity header, and the shorter of the timeout header and the body's `parameters.timeout`, capped
 * by the server's bound. When the client sets none, none is passed and the model's own timeout applies.
 */
export function inferOptions(
	ctx: RestContext,
	headers: Record<string, string | string[] | undefined>,
	fromBody?: number,
	caller?: string,
): InferOptions {
	const entity = headers[ENTITY_HEADER];
	const opts: InferOptions = {
		// A traffic policy's sticky key may be a header (read only when a policy asks for it).
		header: (name) => {
			const v = headers[name];
			return Array.isArray(v) ? v[0] : v;
		},
	};
	if (caller !== undefined) opts.caller = caller;
	if (entity !== undefined)
		opts.entity = Array.isArray(entity) ? (entity[0] as string) : entity;
	const header = headers[TIMEOUT_HEADER];
	let ms = fromBody;
	if (header !== undefined) {
		const text = Array.isArray(header) ? header[0] : header;
		const h = Number(text);
		if (text === undefined || text.trim() === "" || !(h >= 0 && h < Infinity))
			throw invalidInput(
				`${TIMEOUT_HEADER} must be a number of milliseconds ≥ 0, got ${JSON.stringify(text)}`,
			);
		if (h > 0) ms = ms === undefined ? h : Math.min(ms, h);
	}
	if (ms === undefined) return opts;
	if (ctx.maxTimeoutMs !== undefined) ms = Math.min(ms, ctx.maxTimeoutMs);
	opts.timeoutMs = ms;
	return opts;
}

/**
 * The server span of a REST inference request (tracing on), continuing the caller's W3C `traceparent` header.
 * The caller ends it.
 */
export function requestSpan(
	req: FastifyRequest<{ Params: ModelParams }>,
	route: "infer" | "predict",
): TraceSpan | undefined {
	const version = req.params.version === undefined ? "" : "/versions/{version}";
	return tracer()?.start(`POST /v2/models/{model}${version}/${route}`, {
		kind: "server",
		traceparent: headerValue(req.headers[TRACEPARENT]),
		tracestate: headerValue(req.headers[TRACESTATE]),
		attributes: {
			"http.request.method": "POST",
			"url.path": req.url.slice(0, 512),
			"mlship.model": req.params.model,
		},
	});
}
