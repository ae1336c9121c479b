// POST /v2/models/:model[/versions/:version]/infer: decode (JSON or binary), DataPlane.infer, encode.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
	REQUEST_ID_HEADER,
	requestIdOf,
	VERSION_HEADER,
} from "../../../protocol/request-id.ts";
import { tracer } from "../../../protocol/trace.ts";
import { markServed } from "../../logging.ts";
import { callerOf } from "../auth.ts";
import { HEADER_LENGTH } from "../body.ts";
import {
	inferOptions,
	overloaded,
	type RestContext,
	requestSpan,
} from "../context.ts";
import { decodeInfer } from "../infer-request.ts";
import { encodeInferResponse } from "../infer-response.ts";
import type { ModelParams } from "./health.ts";

/** Registers the inference routes (with and without a version in the path). */
export function registerInferRoutes(
	app: FastifyInstance,
	ctx: RestContext,
): void {
	const handler = async (
		req: FastifyRequest<{ Params: ModelParams }>,
		reply: FastifyReply,
	) => {
		// One check when tracing is off; on, a server span with decode, queue, compute and encode children.
		const span = tracer() && requestSpan(req, "infer");
		try {
			const t0 = span && performance.now();
			const { request, binaryOutput, timeoutMs } = decodeInfer(
				req.body,
				req.headers[HEADER_LENGTH],
			);
			const opts = inferOptions(ctx, req.headers, timeoutMs, callerOf(req));
			const id = requestIdOf(request.id, req.headers[REQUEST_ID_HEADER]);
			opts.requestId = id;
			if (span) {
				span.record("decode", t0 as number, performance.now());
				span.set("mlship.request_id", id);
				opts.trace = span;
			}
			const res = await ctx.dp
				.infer(req.params.model, req.params.version, request, opts)
				.catch((err: unknown) => overloaded(ctx, req, err));
			if (ctx.accessLog) markServed(req, res.model_version ?? "");
			reply.header(REQUEST_ID_HEADER, id);
			if (res.model_version !== undefined)
				reply.header(VERSION_HEADER, res.model_version);
			const t1 = span && performance.now();
			const encoded = encodeInferResponse(res, id, binaryOutput);
			if (span) {
				span.record("encode", t1 as number, performance.now());
				if (res.model_version !== undefined)
					span.set("mlship.model_version", res.model_version);
			}
			return send(reply, encoded);
		} catch (err) {
			span?.fail(err);
			throw err;
		} finally {
			span?.end();
		}
	};
	const send = (
		reply: FastifyReply,
		{ body, headerLength }: ReturnType<typeof encodeInferResponse>,
	) => {
		if (headerLength === undefined) reply.type("application/json");
		else
			reply
				.type("application/octet-stream")
				.header("inference-header-content-length", String(headerLength));
		return reply.send(body);
	};
	const onRequest = ctx.admission.onRequest;
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/infer",
		{ onRequest },
		handler,
	);
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/versions/:version/infer",
		{ onRequest },
		handler,
	);
}
