#!/usr/bin/env node
// The `mlship` command: one file per subcommand, wired together here.
import { Command } from "commander";
import { batchCommand } from "./batch.ts";
import { bundleCommand } from "./bundle.ts";
import { badArgumentsExit2, example } from "./common.ts";
import { modelsCommand } from "./models.ts";
import { pgCommand } from "./pg.ts";
import { predictCommand } from "./predict.ts";
import { quickstartCommand } from "./quickstart.ts";
import { serveCommand } from "./serve.ts";
import { sqlCommand } from "./sql.ts";
import { streamCommand } from "./stream.ts";

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
program.addCommand(bundleCommand());
program.addCommand(modelsCommand());
program.addCommand(predictCommand());
program.addCommand(batchCommand());
program.addCommand(serveCommand());
program.addCommand(sqlCommand());
program.addCommand(pgCommand());
program.addCommand(streamCommand());
program.addCommand(quickstartCommand());
badArgumentsExit2(program);
await program.parseAsync(process.argv);
