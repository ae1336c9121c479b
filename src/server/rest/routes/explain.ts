// POST /v2/models/:model[/versions/:version]/explain: records or columns in; per row and target, every feature's
// contribution to the raw output and the top-k (`top`, default 5).
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ExplainOptions } from "../../../dataplane/explain.ts";
import { invalidInput, MlshipError } from "../../../protocol/errors.ts";
import { isObject, jsonBody } from "../body.ts";
import { overloaded, type RestContext } from "../context.ts";
import type { ModelParams } from "./health.ts";
import { predictInput } from "./predict.ts";

/** Registers the explain routes. */
export function registerExplainRoutes(
	app: FastifyInstance,
	ctx: RestContext,
): void {
	const handler = async (req: FastifyRequest<{ Params: ModelParams }>) => {
		const body = jsonBody(req.body, req.headers);
		const input = predictInput(body);
		const explain = ctx.dp.explain;
		if (!explain)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				"this server cannot explain predictions",
			);
		return explain
			.call(
				ctx.dp,
				req.params.model,
				req.params.version,
				input,
				explainBodyOptions(body),
			)
			.catch((err: unknown) => overloaded(ctx, req, err));
	};
	const onRequest = ctx.admission.onRequest;
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/explain",
		{ onRequest },
		handler,
	);
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/versions/:version/explain",
		{ onRequest },
		handler,
	);
}

/** `top`, `method` ("exact" | "kernel"), `samples` and `seed` (KernelSHAP) of an explain body, checked. */
function explainBodyOptions(body: unknown): ExplainOptions {
	if (!isObject(body)) return {};
	const opts: ExplainOptions = {};
	if (body.top !== undefined) opts.top = body.top as number;
	if (body.method !== undefined) {
		if (body.method !== "exact" && body.method !== "kernel")
			throw invalidInput(
				`method must be "exact" or "kernel", got ${JSON.stringify(body.method)}`,
			);
		opts.method = body.method;
	}
	for (const k of ["samples", "seed"] as const) {
		const v = body[k];
		if (v === undefined) continue;
		if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
			throw invalidInput(
				`${k} must be a non-negative integer, got ${JSON.stringify(v)}`,
			);
		opts[k] = v;
	}
	return opts;
}
