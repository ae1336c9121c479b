// --metrics-port for the long-running commands: Prometheus /metrics and /health/live, /health/ready on a port of their own.
import { type Command, InvalidArgumentError } from "commander";
import type { MetricsServerOptions } from "../monitor/http.ts";
import type { RunnerMetrics } from "../monitor/metrics.ts";

/** Adds `--metrics-port <port>` (off unless given). */
export function metricsPortOption(cmd: Command): Command {
	return cmd.option(
		"--metrics-port <port>",
		"serve Prometheus /metrics (serve's metric names) and /health/live, /health/ready on this port (0 = any free; off by default)",
		(text: string) => {
			const n = Number(text);
			if (text.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65535)
				throw new InvalidArgumentError(`not a port number: ${text}.`);
			return n;
		},
	);
}

/**
 * Starts the metrics server when `port` is given, and says where on stderr (as `say` writes it); returns its close.
 * Started before the work begins, so liveness answers while a model loads (ready stays 503 until it is).
 */
export async function startCommandMetrics(
	port: number | undefined,
	opts: Omit<MetricsServerOptions, "port">,
	say: (port: number) => void = (p) =>
		process.stderr.write(
			`metrics: http://${opts.host ?? "0.0.0.0"}:${p}/metrics (health: /health/live, /health/ready)\n`,
		),
): Promise<() => Promise<void>> {
	if (port === undefined) return async () => {};
	// Loaded only when asked for: the commands start as fast without it.
	const { startMetricsServer } = await import("../monitor/http.ts");
	const m = await startMetricsServer({ ...opts, port });
	say(m.port);
	return () => m.close();
}

/** Serve's metrics for a runner (batch work, batch schedule, pg worker), when `--metrics-port` is given. */
export async function runnerMetrics(
	port: number | undefined,
): Promise<RunnerMetrics | undefined> {
	if (port === undefined) return undefined;
	const { RunnerMetrics } = await import("../monitor/metrics.ts");
	return new RunnerMetrics();
}
