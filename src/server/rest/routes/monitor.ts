// GET /v2/models/:model/monitor: drift of a model's live traffic against its reference profile, per window.
import type { FastifyInstance } from "fastify";
import { parseDuration } from "../../../protocol/duration.ts";
import { MlshipError } from "../../../protocol/errors.ts";
import type { RestContext } from "../context.ts";

/** Registers the monitor route (answers 400 with how to turn it on when the server does not monitor). */
export function registerMonitorRoute(
	app: FastifyInstance,
	{ dp, monitor }: RestContext,
): void {
	app.get<{
		Params: { model: string };
		Querystring: { since?: string; profiles?: string };
	}>("/v2/models/:model/monitor", async (req) => {
		dp.modelMetadata(req.params.model); // 404 for a model this server does not serve
		if (!monitor)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"drift monitoring is off: start mlship serve with --monitor-window 5m (and give the bundle a reference profile: mlship bundle init --reference train.parquet)",
			);
		const since = Date.now() - parseDuration(req.query.since ?? "24h", "since");
		const r = await monitor.report(req.params.model, since);
		const { current, references, ...rest } = r;
		return {
			...rest,
			window_seconds: monitor.windowSeconds,
			// Live quality by version from feedback (ground truth joined by request id), next to drift.
			quality: dp.quality?.(req.params.model) ?? [],
			...(req.query.profiles === "true" ? { current, references } : {}),
		};
	});
}
