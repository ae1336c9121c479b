// The `mlship` program, built lazily: only the invoked subcommand's module (and what it imports) is loaded;
// every other command is a name and a description for --help. test/cli/commands.test.ts keeps each entry's
// `term` and `summary` equal to the real command's, so --help reads exactly as if every command were loaded.
import { Command, Help } from "commander";
import { badArgumentsExit2, example } from "./common.ts";

/** One subcommand: how --help lists it, and how to build it. */
export interface LazyCommand {
	/** The command's name as typed. */
	name: string;
	/** Its --help term: the name plus `[options]` and its arguments, as commander would print it. */
	term: string;
	/** Its one-paragraph description, as in its own module. */
	summary: string;
	/** Imports the command's module and builds the command. */
	load: () => Promise<Command>;
}

/** Every subcommand, in --help order. */
export const COMMANDS: readonly LazyCommand[] = [
	{
		name: "bundle",
		term: "bundle",
		summary: "Create and check model bundles (mlship.yaml + artifact)",
		load: async () => (await import("./bundle.ts")).bundleCommand(),
	},
	{
		name: "models",
		term: "models",
		summary:
			"Manage the model registry: register, list, show, alias, route, rm, restore",
		load: async () => (await import("./models.ts")).modelsCommand(),
	},
	{
		name: "experiments",
		term: "experiments",
		summary:
			"Experiments on aliases: list traffic policies, show one with live shadow comparison figures",
		load: async () => (await import("./experiments.ts")).experimentsCommand(),
	},
	{
		name: "rollout",
		term: "rollout",
		summary:
			"Progressive rollout of a new version on an alias, checked on live error rate and latency, with automatic rollback",
		load: async () => (await import("./rollout.ts")).rolloutCommand(),
	},
	{
		name: "predict",
		term: "predict [options]",
		summary:
			"Score a CSV, JSON-lines or Parquet file with a model; rows stream through in chunks",
		load: async () => (await import("./predict.ts")).predictCommand(),
	},
	{
		name: "batch",
		term: "batch",
		summary:
			"Batch prediction: score sources (files, DuckDB, SQLite, PostgreSQL) into sinks",
		load: async () => (await import("./batch.ts")).batchCommand(),
	},
	{
		name: "serve",
		term: "serve [options]",
		summary:
			"Serve models over the Open Inference Protocol v2 (REST and gRPC) with adaptive batching",
		load: async () => (await import("./serve.ts")).serveCommand(),
	},
	{
		name: "tune",
		term: "tune [options]",
		summary:
			"Find batching and executor settings for a model: load it in-process, drive it with closed-loop clients at each concurrency, sweep workers × intra-op threads, max_batch_size and max_queue_delay_us, and write the best (highest throughput with p99 within the target at every level) into the bundle's mlship.yaml",
		load: async () => (await import("./tune.ts")).tuneCommand(),
	},
	{
		name: "sql",
		term: "sql [options] <query>",
		summary:
			"Run a DuckDB SQL query where models are functions: predict(model, features...) → number, predict_label → class name, predict_proba → probabilities, predict_output(model, 'output', ...) → any output, explain(model, features...) → the prediction's feature contributions as JSON (trees runtime). Files are tables: FROM 'x.parquet'. A NULL feature gives a NULL prediction. Subcommand: sql compile writes a tree or linear model as plain SQL (a function or view) for PostgreSQL, DuckDB, SQLite or BigQuery.",
		load: async () => (await import("./sql.ts")).sqlCommand(),
	},
	{
		name: "pg",
		term: "pg",
		summary:
			"Models inside PostgreSQL: a trigger queues new or changed rows and a worker fills a prediction column",
		load: async () => (await import("./pg.ts")).pgCommand(),
	},
	{
		name: "stream",
		term: "stream [options]",
		summary:
			"Score a stream: read requests from --from, produce results to --to (at least once), bad messages to --dlq",
		load: async () => (await import("./stream.ts")).streamCommand(),
	},
	{
		name: "tokens",
		term: "tokens",
		summary:
			"API tokens for mlship serve: create (shown once), list, revoke; scopes predict, read, admin",
		load: async () => (await import("./tokens.ts")).tokensCommand(),
	},
	{
		name: "audit",
		term: "audit [options]",
		summary:
			"Show the audit log: who (token id or local:USER) did what (register, alias moves, load, unload, tokens…), when and from where",
		load: async () => (await import("./audit.ts")).auditCommand(),
	},
	{
		name: "monitor",
		term: "monitor",
		summary:
			"Drift monitoring: reports of the windows serve and stream write with --monitor-window",
		load: async () => (await import("./monitor.ts")).monitorCommand(),
	},
	{
		name: "logs",
		term: "logs",
		summary:
			"Read the payload log that serve, stream and batch run write with --log-payloads",
		load: async () => (await import("./logs.ts")).logsCommand(),
	},
	{
		name: "ui",
		term: "ui [options]",
		summary:
			"Web dashboard: models, versions, aliases, live latency and traffic per version, experiments, servers",
		load: async () => (await import("./ui.ts")).uiCommand(),
	},
	{
		name: "quickstart",
		term: "quickstart [options]",
		summary:
			"Register the bundled iris model in the local registry and score examples/iris.csv with it",
		load: async () => (await import("./quickstart.ts")).quickstartCommand(),
	},
];

/** The subcommand `argv` (arguments after the program name) invokes, if any: `serve …` or `help serve`. */
export function invokedCommand(argv: readonly string[]): string | undefined {
	const words = argv.filter((a) => !a.startsWith("-"));
	return words[0] === "help" ? words[1] : words[0];
}

/**
 * Builds the program for `argv`: the invoked subcommand for real, every other one as a --help entry.
 * @example await (await buildProgram(process.argv.slice(2))).parseAsync(process.argv);
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
	const program = new Command("mlship")
		.description(
			"Deploy a trained ML model in every pattern from one bundle and one registry.",
		)
		.version("0.1.0")
		.showHelpAfterError()
		// A subcommand's options are its own: `mlship stream replay --from …` is replay's --from, not stream's.
		.enablePositionalOptions();
	example(
		program,
		"mlship bundle init model.onnx            # write mlship.yaml next to a model",
		"mlship models register ./my-bundle --alias production",
		"mlship predict --model my-model@production --input rows.parquet --output predictions.parquet",
		"mlship batch run -m my-model@production -s 'postgres://app@db/prod?table=features' -o scores.parquet --keep id",
		`mlship sql "SELECT id, predict('my-model@production', age, income) AS p FROM 'customers.parquet'"`,
	);
	const invoked = invokedCommand(argv);
	const terms = new Map<Command, string>();
	for (const c of COMMANDS) {
		if (c.name === invoked) {
			program.addCommand(await c.load());
			continue;
		}
		const entry = new Command(c.name).description(c.summary);
		terms.set(entry, c.term);
		program.addCommand(entry);
	}
	const help = new Help();
	program.configureHelp({
		subcommandTerm: (cmd) => terms.get(cmd) ?? help.subcommandTerm(cmd),
	});
	badArgumentsExit2(program);
	return program;
}
