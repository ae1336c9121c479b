// `mlship sql compile`: a tree ensemble or linear model as plain SQL (a function or a view) for a database with no
// mlship and no extension.
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { resolveBundle } from "../model.ts";
import { MlshipError } from "../protocol/errors.ts";
import { compileBundle, DEFAULT_MAX_NODES } from "../sql/compile/compile.ts";
import { DIALECTS } from "../sql/compile/dialect.ts";
import { action, example, output, wholeNumber } from "./common.ts";

interface CompileOpts {
	dialect: string;
	output?: string;
	name?: string;
	as: "function" | "view";
	from?: string;
	keep?: string;
	maxNodes: number;
	registry?: string;
	json?: boolean;
}

export function sqlCompileCommand(): Command {
	const cmd = new Command("compile")
		.description(
			"Compile a tree ensemble or linear model (XGBoost, LightGBM, PMML, ONNX tree/linear) to plain SQL: a function, or a view over a table, that runs in the database with no extension",
		)
		.argument(
			"<model>",
			"bundle directory, model file, or registered model (name, name@3, name@production)",
		)
		.addOption(
			new Option("--dialect <dialect>", "the database")
				.choices(DIALECTS)
				.makeOptionMandatory(),
		)
		.option("-o, --output <file>", "write the SQL to a file (default: stdout)")
		.option(
			"--name <name>",
			"name of the function or view, dot-qualified allowed (default: the model's name)",
		)
		.addOption(
			new Option(
				"--as <kind>",
				"function: called per row with the input columns; view: every row of --from with the outputs",
			)
				.choices(["function", "view"])
				.default("function"),
		)
		.option("--from <table>", "the table a view reads (with --as view)")
		.option(
			"--keep <columns>",
			"comma-separated table columns a view carries besides the model inputs (an id, a timestamp)",
		)
		.option(
			"--max-nodes <n>",
			"refuse models with more tree nodes than this",
			wholeNumber(),
			DEFAULT_MAX_NODES,
		)
		.option(
			"--registry <uri>",
			"registry for model names (default: MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
		)
		.option(
			"--json",
			"print what was compiled (columns, outputs, size; and the SQL when there is no --output) as JSON",
		)
		.action(
			action(async (ref: string, _own: CompileOpts, self: Command) => {
				// `sql` itself has --registry, -o and --json, and commander gives them to it when they follow
				// `compile`: read both levels.
				const opts = self.optsWithGlobals<CompileOpts>();
				if (opts.from && opts.as !== "view")
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						"--from names the table of a view: add --as view (a function takes the input columns as arguments)",
					);
				const r = await resolveBundle(ref, opts.registry);
				const name = opts.name ?? r.name ?? r.bundle.manifest.name;
				const c = compileBundle(r.bundle, {
					dialect: opts.dialect,
					name,
					as: opts.as,
					...(opts.from ? { from: opts.from } : {}),
					...(opts.keep
						? {
								keep: opts.keep
									.split(",")
									.map((s) => s.trim())
									.filter(Boolean),
							}
						: {}),
					maxNodes: opts.maxNodes,
				});
				const info = {
					model: ref,
					...(r.version !== undefined ? { version: r.version } : {}),
					dialect: opts.dialect,
					as: opts.as,
					name,
					columns: c.columns,
					outputs: c.outputs,
					trees: c.trees,
					nodes: c.nodes,
					depth: c.depth,
					bytes: Buffer.byteLength(c.sql),
				};
				if (opts.output) {
					const file = resolve(opts.output);
					await writeFile(file, c.sql);
					output(
						Boolean(opts.json),
						{ ...info, output: file },
						() =>
							`${opts.as} ${name} (${opts.dialect}, ${c.trees > 0 ? `${c.trees} trees, ${c.nodes} nodes` : `linear, ${c.nodes} coefficients`}) → ${file}`,
					);
					return;
				}
				if (opts.json) output(true, { ...info, sql: c.sql }, () => "");
				else process.stdout.write(c.sql);
			}),
		);
	return example(
		cmd,
		"mlship sql compile churn@production --dialect postgres > churn.sql && psql -f churn.sql",
		"mlship sql compile ./bundle --dialect duckdb --name churn -o churn.sql",
		"mlship sql compile churn@production --dialect sqlite --as view --from customers --keep id --name scored",
		"mlship sql compile model.json --dialect bigquery --name analytics.churn --json",
	);
}
