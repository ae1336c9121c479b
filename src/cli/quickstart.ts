// `mlship quickstart`: the README's first command — register the bundled iris model and score the bundled CSV.

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { predictFile } from "../batch/predict-file.ts";
import { readBundle } from "../bundle/bundle.ts";
import { loadModel } from "../model.ts";
import { openRegistry } from "../registry/open.ts";
import { action, example, output } from "./common.ts";

const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));

export function quickstartCommand(): Command {
	const cmd = new Command("quickstart")
		.description(
			"Register the bundled iris model in the local registry and score examples/iris.csv with it",
		)
		.option(
			"--registry <uri>",
			"registry (default: MLSHIP_REGISTRY or sqlite:.mlship/registry.db)",
		)
		.option("--output <file>", "where predictions go", "iris-predictions.csv")
		.option("--json", "print a JSON summary")
		.action(
			action(
				async (opts: { registry?: string; output: string; json?: boolean }) => {
					const store = await openRegistry(opts.registry);
					try {
						const v = await store.register(
							await readBundle(`${EXAMPLES}iris`),
							{ aliases: ["production"] },
						);
						const model = await loadModel("iris-logreg@production", {
							registry: store,
							mode: "inline",
						});
						try {
							const summary = await predictFile(model, {
								input: `${EXAMPLES}iris.csv`,
								output: opts.output,
								keep: ["*"],
							});
							const head = (await readFile(summary.output, "utf8"))
								.split("\n")
								.slice(0, 6)
								.join("\n");
							output(
								Boolean(opts.json),
								{ registered: `${v.name}@${v.version}`, ...summary },
								() =>
									[
										`registered ${v.name}@${v.version} as ${v.name}@production`,
										`scored ${summary.rows_scored} rows → ${summary.output}:`,
										head,
										"…",
										"next: mlship models list · mlship predict --help",
									].join("\n"),
							);
						} finally {
							await model.close();
						}
					} finally {
						await store.close();
					}
				},
			),
		);
	return example(cmd, "mlship quickstart", "npm run quickstart");
}
