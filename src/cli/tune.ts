// `mlship tune`: sweep batching and executor settings for a bundle under an in-process load and write the best.
import { Command, InvalidArgumentError } from "commander";
import { readBundle } from "../bundle/bundle.ts";
import { MlshipError } from "../protocol/errors.ts";
import {
	type TuneResult,
	type TuneTrial,
	tune,
	writeSettings,
} from "../tune/tune.ts";
import { action, example, output, textTable } from "./common.ts";

interface TuneOpts {
	model: string;
	targetP99Ms: number;
	clients: number[];
	seconds: number;
	dryRun?: boolean;
	json?: boolean;
}

function positiveNumber(text: string): number {
	const n = Number(text);
	if (!Number.isFinite(n) || n <= 0)
		throw new InvalidArgumentError(`expected a number above 0, got '${text}'`);
	return n;
}

function levels(text: string): number[] {
	const out = text.split(",").map((s) => Number(s.trim()));
	if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1))
		throw new InvalidArgumentError(
			`expected whole numbers ≥ 1 separated by commas (e.g. 1,8,64), got '${text}'`,
		);
	return out;
}

function table(r: TuneResult): string {
	const row = (t: TuneTrial, i: number) => [
		String(i + 1),
		String(t.settings.max_batch_size),
		String(t.settings.max_queue_delay_us),
		String(t.settings.workers),
		String(t.settings.intra_op_threads),
		...t.levels.map(
			(l) => `${l.rps}/s ${l.p99_ms}ms${l.errors ? ` ${l.errors}err` : ""}`,
		),
		String(t.score),
		t.meets_target ? "yes" : "no",
		t === r.best ? "best" : t === r.defaults ? "defaults" : "",
	];
	return textTable(
		[
			"#",
			"batch",
			"delay_us",
			"workers",
			"threads",
			...r.clients.map((c) => `${c} clients (req/s p99)`),
			"score",
			`p99≤${r.target_p99_ms}ms`,
			"",
		],
		r.trials.map(row),
		true,
	);
}

export function tuneCommand(): Command {
	const cmd = new Command("tune")
		.description(
			"Find batching and executor settings for a model: load it in-process, drive it with closed-loop clients at each concurrency, sweep workers × intra-op threads, max_batch_size and max_queue_delay_us, and write the best (highest throughput with p99 within the target at every level) into the bundle's mlship.yaml",
		)
		.requiredOption(
			"-m, --model <dir>",
			"bundle directory (its mlship.yaml gets the settings; a bare .onnx file needs --dry-run)",
		)
		.option(
			"--target-p99-ms <ms>",
			"p99 latency each level must stay within",
			positiveNumber,
			10,
		)
		.option(
			"--clients <list>",
			"concurrency levels, comma-separated",
			levels,
			[1, 8, 64],
		)
		.option(
			"--seconds <s>",
			"measured seconds per level per trial (about a dozen trials: the default takes ~40 s)",
			positiveNumber,
			1,
		)
		.option(
			"--dry-run",
			"print the table and the best settings; change nothing",
		)
		.option("--json", "print every trial and the choice as JSON")
		.action(
			action(async (opts: TuneOpts) => {
				const bundle = await readBundle(opts.model);
				if (!opts.dryRun && bundle.source.endsWith(".onnx"))
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`'${opts.model}' is a bare model file: run 'mlship bundle init' to make a bundle, or add --dry-run`,
					);
				const r = await tune(bundle, {
					targetP99Ms: opts.targetP99Ms,
					clients: opts.clients,
					seconds: opts.seconds,
					onProgress: (line) => process.stderr.write(`mlship tune: ${line}\n`),
				});
				const write = !opts.dryRun && r.improved;
				const written = write
					? await writeSettings(opts.model, r.best.settings)
					: undefined;
				const b = r.best.settings;
				const verdict = r.improved
					? `best: max_batch_size ${b.max_batch_size}, max_queue_delay_us ${b.max_queue_delay_us}, workers ${b.workers}, intra_op_threads ${b.intra_op_threads} (score ${r.best.score} vs ${r.defaults.score} for the current settings)`
					: "the current settings are best (no trial beat them by more than 5%)";
				const target = r.best.meets_target
					? ""
					: `\nno trial kept p99 within ${r.target_p99_ms} ms at every level: raise --target-p99-ms or lower --clients`;
				output(
					Boolean(opts.json),
					{ ...r, written: written ?? null },
					() =>
						`${table(r)}\n\n${verdict}${target}\n${written ? `written to ${written}` : opts.dryRun ? "--dry-run: nothing written" : "nothing written"}`,
				);
			}),
		);
	return example(
		cmd,
		"mlship tune --model ./digits-mlp",
		"mlship tune --model ./digits-mlp --target-p99-ms 5 --clients 1,8,64 --dry-run",
		"mlship tune --model ./digits-mlp --clients 8 --seconds 0.5 --json",
	);
}
