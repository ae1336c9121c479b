// GET /metrics: the data plane's Prometheus exposition.
import type { FastifyInstance } from "fastify";
import type { RestContext } from "../context.ts";

/** Registers `GET /metrics`. */
export function registerMetricsRoute(
	app: FastifyInstance,
	{ dp, metrics }: RestContext,
): void {
	app.get("/metrics", async (_req, reply) => {
		const { contentType, body } = await dp.metrics();
		if (metrics.length === 0) return reply.type(contentType).send(body);
		const more = await Promise.all(metrics.map((m) => m()));
		return reply
			.type(contentType)
			.send(body + more.map((m) => m.body).join(""));
	});
}
