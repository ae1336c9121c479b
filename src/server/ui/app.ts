// `mlship ui`: the dashboard as a process of its own, reading a registry and other `mlship serve` processes.
// Same routes, token checks and error shapes as `serve --ui`; no data plane of its own.
import Fastify from "fastify";
import { openRegistry } from "../../registry/open.ts";
import { Authenticator, type AuthMode } from "../auth/authenticator.ts";
import { registerAuth } from "../rest/auth.ts";
import { registerRawBodyParser } from "../rest/body.ts";
import { registerErrorHandlers } from "../rest/errors.ts";
import { registerAliasRoute } from "../rest/routes/aliases.ts";
import { registerUi } from "./routes.ts";
import { parseServerUrl, remoteServer, remoteStream } from "./servers.ts";

export interface UiAppOptions {
	registry: string;
	/** Other servers, as http(s) URLs. */
	servers?: readonly string[];
	/** Stream processors' --metrics-port URLs. */
	streams?: readonly string[];
	host?: string;
	/** 0 = any free port. */
	port: number;
	auth?: AuthMode;
	allowOpenAdmin?: boolean;
	intervalMs?: number;
}

/**
 * Starts the dashboard; `close()` stops it and closes the registry.
 * @example const ui = await startUi({ registry: "sqlite:./registry.db", servers: ["http://127.0.0.1:8080"], port: 8090 });
 */
export async function startUi(
	opts: UiAppOptions,
): Promise<{ port: number; close(): Promise<void> }> {
	const servers = (opts.servers ?? []).map((u, i) =>
		remoteServer(`s${i + 1}`, parseServerUrl(u)),
	);
	const streams = (opts.streams ?? []).map((u, i) =>
		remoteStream(`t${i + 1}`, parseServerUrl(u, "--stream")),
	);
	const store = await openRegistry(opts.registry);
	let auth: Authenticator;
	try {
		auth = await Authenticator.start({
			mode: opts.auth ?? "auto",
			allowOpenAdmin: opts.allowOpenAdmin ?? false,
			tokens: store.tokens,
		});
	} catch (err) {
		await store.close();
		throw err;
	}
	const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
	registerAuth(app, auth);
	registerRawBodyParser(app);
	registerErrorHandlers(app, { bodyLimit: 64 * 1024, retryAfterSeconds: 1 });
	registerAliasRoute(app, store);
	registerUi(app, {
		store,
		servers,
		streams,
		...(opts.intervalMs !== undefined && { intervalMs: opts.intervalMs }),
	});
	try {
		await app.listen({ host: opts.host ?? "127.0.0.1", port: opts.port });
	} catch (err) {
		await Promise.all([auth.close(), store.close()]);
		throw err;
	}
	const address = app.server.address();
	return {
		port: typeof address === "object" && address ? address.port : opts.port,
		async close() {
			await app.close();
			await auth.close();
			await store.close();
		},
	};
}
