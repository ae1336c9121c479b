// GET /metrics: the data plane's Prometheus exposition.
import type { FastifyInstance } from "fastify";
import type { RestContext } from "../context.ts";

/** Registers `GET /metrics`. */
export function registerMetricsRoute(
	app: FastifyInstance,
	{ dp, metrics, monitor, clusterMetrics }: RestContext,
): void {
	// Appended to the data plane's: the payload log's and the drift monitor's expositions, when they are on.
	const extra = monitor ? [...metrics, () => monitor.metricsText()] : metrics;
	app.get("/metrics", async (_req, reply) => {
		const own = await dp.metrics();
		const contentType = own.contentType;
		// Under `serve --processes N`, the sum of every process (this one included) instead of its own.
		const body = clusterMetrics ? await clusterMetrics() : own.body;
		if (extra.length === 0) return reply.type(contentType).send(body);
		const more = await Promise.all(extra.map((m) => m()));
		return reply
			.type(contentType)
			.send(body + more.map((m) => m.body).join(""));
	});
}
