// The metrics and health endpoint of a long-running pattern (stream, batch work --follow, batch schedule, pg worker).
import { createServer, type Server } from "node:http";
import { MlshipError } from "../protocol/errors.ts";

export interface MetricsServerOptions {
	/** Port; 0 = any free port. */
	port: number;
	/** Address to listen on. Default 0.0.0.0 (Prometheus and the kubelet reach the pod's address). */
	host?: string;
	/** Prometheus expositions, concatenated (each with distinct metric names). */
	metrics: (() => Promise<{ contentType: string; body: string }>)[];
	/** Ready to do its work: `/health/ready` answers 200, else 503. */
	ready: () => boolean;
	/** Alive: `/health/live` answers 200, else 503. Default: always. */
	live?: () => boolean;
	/** More of `/health/ready`'s body (e.g. `payload_log`): shown, never making it unready. */
	details?: () => Record<string, unknown>;
	/** `GET /status`: what the process is doing, as JSON (the dashboard's Servers page reads it); 404 without. */
	status?: () => object;
}

export interface MetricsServer {
	port: number;
	close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text, serve's metric names), `GET /health/live`, `GET /health/ready` and, when
 * given, `GET /status` on plain node:http: a few handles, no framework, so any long-running pattern can afford it.
 * @example const m = await startMetricsServer({ port: 9464, metrics: [() => dp.metrics()], ready: () => dp.ready() });
 */
export async function startMetricsServer(
	opts: MetricsServerOptions,
): Promise<MetricsServer> {
	const live = opts.live ?? (() => true);
	const server: Server = createServer((req, res) => {
		const path = (req.url ?? "/").split("?")[0];
		const health = (ok: boolean, key: string, more = {}) => {
			res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
			res.end(JSON.stringify({ [key]: ok, ...more }));
		};
		if (req.method !== "GET" && req.method !== "HEAD") {
			res.writeHead(405, { allow: "GET", "content-type": "application/json" });
			res.end(JSON.stringify({ error: "only GET is served here" }));
		} else if (path === "/health/live") health(live(), "live");
		else if (path === "/health/ready")
			health(live() && opts.ready(), "ready", opts.details?.());
		else if (path === "/status" && opts.status) {
			let body: string;
			try {
				body = JSON.stringify(opts.status());
			} catch {
				res.writeHead(500, { "content-type": "application/json" });
				res.end(JSON.stringify({ error: "status could not be collected" }));
				return;
			}
			res.writeHead(200, {
				"content-type": "application/json",
				"cache-control": "no-store",
			});
			res.end(body);
		} else if (path === "/metrics")
			Promise.all(opts.metrics.map((m) => m())).then(
				(parts) => {
					res.writeHead(200, {
						"content-type": parts[0]?.contentType ?? "text/plain",
					});
					res.end(parts.map((p) => p.body).join(""));
				},
				() => {
					res.writeHead(500, { "content-type": "application/json" });
					res.end(JSON.stringify({ error: "metrics could not be collected" }));
				},
			);
		else {
			res.writeHead(404, { "content-type": "application/json" });
			res.end(
				JSON.stringify({
					error: `no route for ${path?.slice(0, 200)}: try /metrics, /health/live or /health/ready${opts.status ? " or /status" : ""}`,
				}),
			);
		}
	});
	const host = opts.host ?? "0.0.0.0";
	await new Promise<void>((resolve, reject) => {
		server.once("error", (err: NodeJS.ErrnoException) =>
			reject(
				new MlshipError(
					"MLSHIP_UNAVAILABLE",
					`cannot listen for metrics on ${host}:${opts.port}: ${err.code === "EADDRINUSE" ? "the address is in use (EADDRINUSE): choose another --metrics-port" : err.message}`,
					{ cause: err },
				),
			),
		);
		server.listen(opts.port, host, resolve);
	});
	// Keep-alive scrapes must not hold the process open once the work is done.
	server.unref();
	const address = server.address();
	return {
		port: typeof address === "object" && address ? address.port : opts.port,
		close: () =>
			new Promise<void>((resolve) => {
				server.close(() => resolve());
				server.closeAllConnections();
			}),
	};
}
