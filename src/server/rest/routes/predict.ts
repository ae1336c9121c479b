// POST /v2/models/:model[/versions/:version]/predict: records or columns in, records with class names out.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Row } from "../../../codec/table.ts";
import { invalidInput } from "../../../protocol/errors.ts";
import {
	REQUEST_ID_HEADER,
	requestIdOf,
	VERSION_HEADER,
} from "../../../protocol/request-id.ts";
import { tracer } from "../../../protocol/trace.ts";
import { markServed } from "../../logging.ts";
import { callerOf } from "../auth.ts";
import { isObject, jsonBody, kindOf } from "../body.ts";
import {
	inferOptions,
	overloaded,
	type RestContext,
	requestSpan,
} from "../context.ts";
import type { ModelParams } from "./health.ts";

const SHAPES =
	'{"instances": [{"feature": value, ...}, ...]} or {"columns": {"feature": [values], ...}}';

/**
 * Reads a predict body: `instances` (records, as in TF Serving/KServe v1), or `columns` / `inputs` as an
 * object of equal-length columns.
 */
export function predictInput(body: unknown): Row[] | Record<string, unknown[]> {
	if (!isObject(body))
		throw invalidInput(
			`the predict request must be ${SHAPES}, got ${body === undefined ? "an empty body" : kindOf(body)}`,
		);
	if (body.instances !== undefined) {
		const rows = body.instances;
		if (!Array.isArray(rows) || rows.length === 0)
			throw invalidInput(
				`instances must be a non-empty list of records, got ${kindOf(rows)}`,
			);
		for (let i = 0; i < rows.length; i++)
			if (!isObject(rows[i]))
				throw invalidInput(
					`instances[${i}] must be an object of feature values, got ${kindOf(rows[i])}`,
				);
		return rows as Row[];
	}
	const cols = body.columns ?? body.inputs;
	if (cols === undefined)
		throw invalidInput(`the predict request must be ${SHAPES}`);
	const key = body.columns !== undefined ? "columns" : "inputs";
	if (!isObject(cols))
		throw invalidInput(
			`${key} must be an object of feature columns, got ${kindOf(cols)}`,
		);
	for (const [name, values] of Object.entries(cols))
		if (!Array.isArray(values))
			throw invalidInput(
				`${key}.${name} must be a list of values, got ${kindOf(values)}`,
			);
	return cols as Record<string, unknown[]>;
}

/** Registers the predict routes. */
export function registerPredictRoutes(
	app: FastifyInstance,
	ctx: RestContext,
): void {
	const handler = async (
		req: FastifyRequest<{ Params: ModelParams }>,
		reply: FastifyReply,
	) => {
		// One check when tracing is off; on, a server span with decode, queue and compute children.
		const span = tracer() && requestSpan(req, "predict");
		try {
			const t0 = span && performance.now();
			const body = jsonBody(req.body, req.headers);
			const input = predictInput(body);
			const opts = inferOptions(ctx, req.headers, undefined, callerOf(req));
			// Request parameters (a traffic policy's sticky key may be one), as OIP infer requests carry them.
			if (isObject(body) && isObject(body.parameters))
				opts.parameters = body.parameters;
			opts.requestId = requestIdOf(undefined, req.headers[REQUEST_ID_HEADER]);
			if (span) {
				span.record("decode", t0 as number, performance.now());
				span.set("mlship.request_id", opts.requestId);
				opts.trace = span;
			}
			const res = await ctx.dp
				.predict(req.params.model, req.params.version, input, opts)
				.catch((err: unknown) => overloaded(ctx, req, err));
			if (ctx.accessLog) markServed(req, res.model_version);
			reply.header(REQUEST_ID_HEADER, opts.requestId);
			reply.header(VERSION_HEADER, res.model_version);
			span?.set("mlship.model_version", res.model_version);
			return res;
		} catch (err) {
			span?.fail(err);
			throw err;
		} finally {
			span?.end();
		}
	};
	const onRequest = ctx.admission.onRequest;
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/predict",
		{ onRequest },
		handler,
	);
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/versions/:version/predict",
		{ onRequest },
		handler,
	);
}
