// GET /metrics: the data plane's Prometheus exposition.
import type { FastifyInstance } from "fastify";
import type { RestContext } from "../context.ts";

/** Registers `GET /metrics`. */
export function registerMetricsRoute(
	app: FastifyInstance,
	{ dp, monitor }: RestContext,
): void {
	app.get("/metrics", async (_req, reply) => {
		const { contentType, body } = await dp.metrics();
		const drift = monitor ? (await monitor.metricsText()).body : "";
		return reply.type(contentType).send(drift ? `${body}${drift}` : body);
	});
}
