// POST /v2/models/:model[/versions/:version]/explain: records or columns in; per row and target, every feature's
// contribution to the raw output and the top-k (`top`, default 5).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { MlshipError } from "../../../protocol/errors.ts";
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
		const top = isObject(body) ? (body.top as number | undefined) : undefined;
		return explain
			.call(
				ctx.dp,
				req.params.model,
				req.params.version,
				input,
				top !== undefined ? { top } : {},
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
