// `mlship predict`: offline prediction over a CSV, JSON-lines or Parquet file.
import { Command, Option } from "commander";
import { predictFile } from "../batch/predict-file.ts";
import { action, example, output } from "./common.ts";
import { scoringOptions, withScoringModel } from "./scoring.ts";

interface PredictOpts {
	model: string;
	input: string;
	output: string;
	registry?: string;
	onError: "fail" | "skip";
	errors?: string;
	keep?: string[];
	chunkRows: number;
	workers?: number;
	inputFormat?: string;
	outputFormat?: string;
	json?: boolean;
}

export function predictCommand(): Command {
	const cmd = new Command("predict");
	scoringOptions(cmd)
		.description(
			"Score a CSV, JSON-lines or Parquet file with a model; rows stream through in chunks",
		)
		.requiredOption(
			"-m, --model <ref>",
			"bundle directory, .onnx file, or registered model (name, name@3, name@production)",
		)
		.requiredOption(
			"-i, --input <file>",
			"rows to score (.csv, .jsonl, .parquet)",
		)
		.requiredOption(
			"-o, --output <file>",
			"where predictions go (.csv, .jsonl, .parquet)",
		)
		.addOption(
			new Option(
				"--on-error <mode>",
				"a bad row fails the run (no output written) or is skipped to the error file",
			)
				.choices(["fail", "skip"])
				.default("fail"),
		)
		.option(
			"--errors <file>",
			"error file for skipped rows (default: <output>.errors.jsonl)",
		)
		.option(
			"--keep <cols>",
			"input columns to copy beside the predictions ('*' = all), e.g. --keep id",
			(s: string) => s.split(",").map((x) => x.trim()),
		)
		.option(
			"--input-format <fmt>",
			"csv | jsonl | parquet (default: from the extension)",
		)
		.option(
			"--output-format <fmt>",
			"csv | jsonl | parquet (default: from the extension)",
		)
		.option(
			"--json",
			"print a JSON summary (rows in, scored, rejected, duration)",
		)
		.action(
			action((opts: PredictOpts) =>
				withScoringModel("predict", opts, async (model, progress) => {
					const summary = await predictFile(model, {
						input: opts.input,
						output: opts.output,
						onError: opts.onError,
						chunkRows: opts.chunkRows,
						...(opts.errors ? { errorsPath: opts.errors } : {}),
						...(opts.keep ? { keep: opts.keep } : {}),
						...(opts.inputFormat ? { inputFormat: opts.inputFormat } : {}),
						...(opts.outputFormat ? { outputFormat: opts.outputFormat } : {}),
						onProgress: (rows, total) => progress.update(rows, total),
					});
					progress.done(summary.rows_in - summary.rows_rejected);
					output(Boolean(opts.json), summary, () => {
						let s = `${summary.rows_scored.toLocaleString("en-US")} rows scored with ${summary.model}${summary.version ? `@${summary.version}` : ""} → ${summary.output} in ${(summary.duration_ms / 1000).toFixed(2)} s (${summary.rows_per_second.toLocaleString("en-US")} rows/s)`;
						if (summary.rows_rejected > 0)
							s += `\n${summary.rows_rejected} row(s) rejected → ${summary.errors_file}`;
						return s;
					});
				}),
			),
		);
	return example(
		cmd,
		"mlship predict --model examples/iris --input examples/iris.csv --output predictions.csv",
		"mlship predict -m churn@production -i customers.parquet -o scores.parquet --keep customer_id --on-error skip --json",
	);
}
