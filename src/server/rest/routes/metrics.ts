// GET /metrics: the data plane's Prometheus exposition.
import type { FastifyInstance } from "fastify";
import type { RestContext } from "../context.ts";

/** Registers `GET /metrics`. */
export function registerMetricsRoute(
	app: FastifyInstance,
	{ dp, metrics, monitor }: RestContext,
): void {
	// Appended to the data plane's: the payload log's and the drift monitor's expositions, when they are on.
	const extra = monitor ? [...metrics, () => monitor.metricsText()] : metrics;
	app.get("/metrics", async (_req, reply) => {
		const { contentType, body } = await dp.metrics();
		if (extra.length === 0) return reply.type(contentType).send(body);
		const more = await Promise.all(extra.map((m) => m()));
		return reply
			.type(contentType)
			.send(body + more.map((m) => m.body).join(""));
	});
}
