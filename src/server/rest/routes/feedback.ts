// POST /v2/models/:model/feedback (rewards and truths by request id) and GET /v2/models/:model/quality (live quality by version).
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { FeedbackItem } from "../../../feedback/join.ts";
import { invalidInput, MlshipError } from "../../../protocol/errors.ts";
import { jsonBody, kindOf } from "../body.ts";
import type { RestContext } from "../context.ts";
import type { ModelParams } from "./health.ts";

/** The items of a feedback body: one `{id, reward | truth, version?}`, a list of them, or `{"feedback": [...]}`. */
export function feedbackItems(body: unknown): FeedbackItem[] {
	if (Array.isArray(body)) return body as FeedbackItem[];
	if (body !== null && typeof body === "object") {
		const list = (body as { feedback?: unknown }).feedback;
		if (Array.isArray(list)) return list as FeedbackItem[];
		return [body as FeedbackItem];
	}
	throw invalidInput(
		`feedback must be {"id": "...", "reward": 1} or {"id": "...", "truth": ...}, or a list of them; got ${body === undefined ? "an empty body" : kindOf(body)}`,
	);
}

function unsupported(): never {
	throw new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		"this server does not take feedback",
	);
}

/** Registers the feedback and quality routes. */
export function registerFeedbackRoutes(
	app: FastifyInstance,
	ctx: RestContext,
): void {
	app.post<{ Params: ModelParams }>(
		"/v2/models/:model/feedback",
		async (req: FastifyRequest<{ Params: ModelParams }>) => {
			const items = feedbackItems(jsonBody(req.body, req.headers));
			if (!ctx.dp.feedback) unsupported();
			return ctx.dp.feedback(req.params.model, items);
		},
	);
	app.get<{ Params: ModelParams }>(
		"/v2/models/:model/quality",
		async (req: FastifyRequest<{ Params: ModelParams }>) => {
			if (!ctx.dp.quality) unsupported();
			return {
				model_name: req.params.model,
				versions: ctx.dp.quality(req.params.model),
			};
		},
	);
}
