// `mlship ui`: the web dashboard over a registry and the `mlship serve` processes named with --server.
import { Command } from "commander";
import { MlshipError } from "../protocol/errors.ts";
import { defaultRegistryUri } from "../registry/open.ts";
import { action, example } from "./common.ts";
import { collect } from "./models-common.ts";

interface UiOpts {
	registry: string;
	server?: string[];
	stream?: string[];
	host: string;
	port: string;
	auth: string;
	allowOpenAdmin?: boolean;
}

/** The `mlship ui` command. */
export function uiCommand(): Command {
	const cmd = new Command("ui")
		.description(
			"Web dashboard: models, versions, aliases, live latency and traffic per version, experiments, servers",
		)
		.option(
			"--registry <uri>",
			"registry: sqlite:PATH, a .db file or postgres://USER@HOST/DB (env MLSHIP_REGISTRY)",
			defaultRegistryUri(),
		)
		.option(
			"--server <url>",
			"an mlship serve to show (repeatable): its models, live figures, experiments; read with the user's token",
			collect,
		)
		.option(
			"--stream <url>",
			"an mlship stream's --metrics-port URL to show on the Servers page (repeatable): model, source and sink, counts, last message",
			collect,
		)
		.option("--host <host>", "address to listen on", "127.0.0.1")
		.option("--port <port>", "HTTP port (0 = any free port)", "8090")
		.option(
			"--auth <mode>",
			"API tokens, as for serve: auto (required once any token exists) | required | off",
			"auto",
		)
		.option(
			"--allow-open-admin",
			"let alias moves and unloads through without a token when none is asked for",
		)
		.action(
			action(async (opts: UiOpts) => {
				const port = Number(opts.port);
				if (!Number.isInteger(port) || port < 0 || port > 65535)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`--port expects 0–65535, got '${opts.port}'`,
					);
				if (!["auto", "required", "off"].includes(opts.auth))
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`--auth expects auto, required or off, got '${opts.auth}'`,
					);
				const { startUi } = await import("../server/ui/app.ts");
				const ui = await startUi({
					registry: opts.registry,
					servers: opts.server ?? [],
					streams: opts.stream ?? [],
					host: opts.host,
					port,
					auth: opts.auth as "auto" | "required" | "off",
					allowOpenAdmin: opts.allowOpenAdmin === true,
				});
				const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
				process.stderr.write(
					`mlship ui: http://${host}:${ui.port}/ui/ (Ctrl-C to stop)\n`,
				);
				await new Promise<void>((resolve) => {
					const stop = () => void ui.close().then(resolve);
					process.once("SIGINT", stop);
					process.once("SIGTERM", stop);
				});
			}),
		);
	return example(
		cmd,
		"mlship ui --registry sqlite:./registry.db --server http://127.0.0.1:8080 --port 8090",
		"mlship ui --registry sqlite:./registry.db --stream http://127.0.0.1:9464   # an mlship stream --metrics-port 9464",
		"mlship serve --registry sqlite:./registry.db -m churn@production --ui   # same port, under /ui",
	);
}
