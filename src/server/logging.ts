// Server logs: JSON lines for machines, pino-pretty and a start-up banner for a person at a terminal, and the access log.
import type { FastifyInstance, FastifyRequest } from "fastify";
import pino, { type Logger } from "pino";
import type { RepositoryEntry } from "../dataplane/types.ts";
import { redactingLogger, redactUrl } from "../protocol/redact.ts";
import type { ServerSettings } from "./settings.ts";

/** True when logs should be pretty: `--log-format pretty`, or `auto` (the default) with stdout on a terminal. */
export function prettyLogs(
	format: ServerSettings["log_format"],
	isTTY = process.stdout.isTTY === true,
): boolean {
	return format === "pretty" || (format === "auto" && isTTY);
}

/**
 * The server's logger: pino JSON lines, or pino-pretty (loaded only then) for a person at a terminal.
 * @example const log = await createLogger(settings)
 */
export async function createLogger(settings: ServerSettings): Promise<Logger> {
	const level = settings.log_level;
	if (!prettyLogs(settings.log_format))
		return pino({ ...redactingLogger, level });
	const { default: pretty } = await import("pino-pretty");
	return pino(
		{ ...redactingLogger, level },
		pretty({
			colorize: process.stdout.isTTY === true,
			translateTime: "SYS:HH:MM:ss.l",
			ignore: "pid,hostname",
			singleLine: true,
			sync: true,
		}),
	);
}

/** What the banner shows. */
export interface BannerInfo {
	host: string;
	httpPort: number;
	grpcPort: number;
	registry: string | undefined;
	models: RepositoryEntry[];
}

/** A short start-up summary for a person: where to send requests, what is served, from which registry. */
export function banner(i: BannerInfo): string {
	const host = i.host === "0.0.0.0" || i.host === "::" ? "localhost" : i.host;
	const h = host.includes(":") ? `[${host}]` : host;
	const rest = `http://${h}:${i.httpPort}`;
	const width = Math.max(0, ...i.models.map((m) => m.name.length));
	const lines = [
		"",
		`  mlship serving ${i.models.length} model${i.models.length === 1 ? "" : "s"}`,
		"",
		`  REST      ${rest}/v2   (OpenAPI ${rest}/v2/openapi.json, metrics ${rest}/metrics)`,
		`  gRPC      ${i.grpcPort >= 0 ? `${h}:${i.grpcPort}` : "off"}`,
		`  registry  ${i.registry ? hidePassword(i.registry) : "none (bundles and files only)"}`,
		"  models",
		...i.models.map(
			(m) =>
				`    ${m.name.padEnd(width)}  v${m.version}  ${m.state.toLowerCase()}${m.reason ? `: ${m.reason}` : ""}`,
		),
		"",
		`  try: curl ${rest}/v2/health/ready`,
		"",
	];
	return lines.join("\n");
}

/** A URI with any password in its user info shown as `***` (a banner is read over shoulders and pasted in tickets). */
export const hidePassword = redactUrl;

const SERVED = Symbol("mlship.served");
type Marked = FastifyRequest & { [SERVED]?: string };

/** Records the version that served a request, for the access log (call only when the access log is on). */
export function markServed(req: FastifyRequest, version: string): void {
	(req as Marked)[SERVED] = version;
}

/**
 * One log line per request (method, path, status, duration, request id, model, served version). Registered only
 * with `--access-log`: without it no per-request hook exists, so it costs nothing.
 */
export function registerAccessLog(app: FastifyInstance): void {
	app.addHook("onResponse", (req, reply, done) => {
		const params = req.params as { model?: string; version?: string };
		req.log.info(
			{
				method: req.method,
				path: req.url.split("?")[0],
				status: reply.statusCode,
				duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
				request_id: req.id,
				model: params?.model,
				version: (req as Marked)[SERVED] ?? params?.version,
			},
			"access",
		);
		done();
	});
}
