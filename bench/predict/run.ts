// bench/predict: rows/s of `mlship predict` on a Parquet file vs the raw onnxruntime-node bound, same model, same rows;
// beside them the `trees` runtime (the same model.onnx read into the tree representation): its own raw loop, and
// `mlship predict` with a copy of the bundle that says `runtime: trees`.
//
//   node bench/predict/run.ts [--rows 1000000] [--runs 3] [--batch 8192] [--no-results] [--cli src/cli/main.ts]
//
// --cli runs another copy of the CLI entry (e.g. a patched checkout) to A/B a change to the predict path.
//
// Each contender runs as its own child process (under /usr/bin/time -v when present, for peak RSS), alternately,
// `--runs` times; the table shows medians. Results go to stdout and to the "## predict" section of bench/RESULTS.md.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { DuckDBInstance } from "@duckdb/node-api";
import { readTreeModel } from "../../src/trees/read/index.ts";
import {
	countRows,
	ensureData,
	featureNames,
	fmtInt,
	MODEL_DIR,
	machine,
	measure,
	median,
	medianOrNull,
	OUT,
	positiveInt,
	readMatrix,
	treesBundle,
	writeResults,
} from "../common.ts";
import { createRawSession, scoreAll } from "./raw.ts";
import { scoreAllTrees } from "./trees.ts";

const { values: args } = parseArgs({
	options: {
		rows: { type: "string", default: "1000000" },
		runs: { type: "string", default: "3" },
		batch: { type: "string", default: "8192" },
		"no-results": { type: "boolean", default: false },
		/** Also write the medians as JSON here (bench/check reads it). */
		"json-out": { type: "string" },
		child: { type: "string" },
		input: { type: "string" },
		cli: { type: "string", default: "src/cli/main.ts" },
	},
});
const ROWS = positiveInt("--rows", args.rows);
const RUNS = positiveInt("--runs", args.runs);
const BATCH = positiveInt("--batch", args.batch);

// ---------------------------------------------------------------- data

// ---------------------------------------------------------------- children (the raw bound)

interface RawResult {
	rows: number;
	positives: number;
	loop_ms: number;
	rows_per_second: number;
	/** CPU seconds of the whole process (every thread) during the timed loop (process.cpuUsage). */
	cpu_s: number;
}

/** CPU seconds the process (every thread) has used so far. */
function cpuSeconds(): number {
	const c = process.cpuUsage();
	return (c.user + c.system) / 1e6;
}

/** `--child raw1`: one session, one loop over all rows on the main thread. */
async function rawSingle(
	input: string,
	features: string[],
): Promise<RawResult> {
	const model = await readFile(join(MODEL_DIR, "model.onnx"));
	const data = await readMatrix(input, features);
	const session = await createRawSession(model);
	const cpu = cpuSeconds();
	const started = performance.now();
	const r = await scoreAll(session, data, features.length, BATCH);
	const ms = performance.now() - started;
	const cpu_s = cpuSeconds() - cpu;
	await session.release();
	return {
		rows: r.rows,
		positives: r.positives,
		loop_ms: ms,
		rows_per_second: r.rows / (ms / 1000),
		cpu_s,
	};
}

/** `--child trees1`: the model.onnx read by the trees runtime's reader, one predictTree loop on the main thread. */
async function treesSingle(
	input: string,
	features: string[],
): Promise<RawResult> {
	const model = readTreeModel(
		new Uint8Array(await readFile(join(MODEL_DIR, "model.onnx"))),
		"model.onnx",
	);
	const data = await readMatrix(input, features);
	const cpu = cpuSeconds();
	const started = performance.now();
	const r = scoreAllTrees(model, data, features.length, BATCH);
	const ms = performance.now() - started;
	return {
		rows: r.rows,
		positives: r.positives,
		loop_ms: ms,
		rows_per_second: r.rows / (ms / 1000),
		cpu_s: cpuSeconds() - cpu,
	};
}

/** `--child raw2`: two worker threads, each with its own session, half of the rows each. */
async function rawParallel(
	input: string,
	features: string[],
): Promise<RawResult> {
	const model = new Uint8Array(await readFile(join(MODEL_DIR, "model.onnx")));
	const data = await readMatrix(input, features);
	const w = features.length;
	const rows = data.length / w;
	const half = Math.ceil(rows / 2);
	const parts = [
		data.slice(0, half * w),
		data.slice(half * w), // each half in its own buffer, transferred (not copied) to its worker
	];
	const workers = parts.map(
		() =>
			new Worker(new URL("./raw-worker.ts", import.meta.url), {
				workerData: { model, width: w, batch: BATCH },
			}),
	);
	try {
		await Promise.all(
			workers.map(
				(wk) =>
					new Promise<void>((res, rej) => {
						wk.once("message", () => res());
						wk.once("error", rej);
					}),
			),
		);
		const cpu = cpuSeconds();
		const started = performance.now();
		const results = await Promise.all(
			workers.map(
				(wk, i) =>
					new Promise<{ rows: number; positives: number }>((res, rej) => {
						wk.once("message", res);
						wk.once("error", rej);
						const part = parts[i] as Float32Array;
						wk.postMessage({ rows: part }, [part.buffer as ArrayBuffer]);
					}),
			),
		);
		const ms = performance.now() - started;
		const cpu_s = cpuSeconds() - cpu;
		const total = results.reduce((a, r) => a + r.rows, 0);
		return {
			rows: total,
			positives: results.reduce((a, r) => a + r.positives, 0),
			loop_ms: ms,
			rows_per_second: total / (ms / 1000),
			cpu_s,
		};
	} finally {
		await Promise.all(workers.map((wk) => wk.terminate()));
	}
}

// ---------------------------------------------------------------- parent

interface Run {
	rowsScored: number;
	rowsPerSecond: number;
	wallS: number;
	peakRssMb: number | null;
	positives: number;
}

async function runMlship(
	input: string,
	tag: string,
	model = MODEL_DIR,
): Promise<Run> {
	const output = join(OUT, "pred.parquet");
	await rm(output, { force: true });
	const m = await measure(
		[
			args.cli as string,
			"predict",
			"--model",
			model,
			"--input",
			input,
			"--output",
			output,
			"--json",
		],
		tag,
	);
	const summary = JSON.parse(m.stdout) as {
		rows_scored: number;
		duration_ms: number;
		rows_per_second: number;
	};
	// A short count is recorded and flagged in the table rather than thrown: it is a finding, not a bench bug.
	const db = await DuckDBInstance.create(":memory:", { threads: "1" });
	const conn = await db.connect();
	let positives: number;
	try {
		const n = await countRows(conn, output);
		if (n !== summary.rows_scored)
			throw new Error(
				`mlship reported ${summary.rows_scored} rows scored but ${output} has ${n}`,
			);
		positives = await countRows(conn, output, "WHERE label = 'benign'");
	} finally {
		conn.closeSync();
		db.closeSync();
	}
	return {
		rowsScored: summary.rows_scored,
		rowsPerSecond: summary.rows_per_second,
		wallS: m.wallMs / 1000,
		peakRssMb: m.peakRssMb,
		positives,
	};
}

async function runRaw(
	input: string,
	kind: "raw1" | "raw2" | "trees1",
	tag: string,
): Promise<Run> {
	const m = await measure(
		[
			fileURLToPath(import.meta.url),
			"--child",
			kind,
			"--input",
			input,
			"--batch",
			String(BATCH),
		],
		tag,
	);
	const r = JSON.parse(m.stdout) as RawResult;
	if (r.rows !== ROWS)
		throw new Error(`${kind} scored ${r.rows} rows, expected ${ROWS}`);
	return {
		rowsScored: r.rows,
		rowsPerSecond: r.rows_per_second,
		wallS: m.wallMs / 1000,
		peakRssMb: m.peakRssMb,
		positives: r.positives,
	};
}

async function main(): Promise<void> {
	const features = featureNames();
	if (args.child) {
		const input = args.input;
		if (!input) throw new Error("--child needs --input");
		const r =
			args.child === "raw1"
				? await rawSingle(input, features)
				: args.child === "raw2"
					? await rawParallel(input, features)
					: args.child === "trees1"
						? await treesSingle(input, features)
						: undefined;
		if (!r) throw new Error(`unknown --child ${args.child}`);
		process.stdout.write(`${JSON.stringify(r)}\n`);
		return;
	}

	console.error(
		`bench/predict: ${fmtInt(ROWS)} rows, ${RUNS} runs, batch ${BATCH}`,
	);
	const t0 = performance.now();
	const input = await ensureData(ROWS, features);
	console.error(
		`data: ${input} (${((performance.now() - t0) / 1000).toFixed(1)} s to ensure)`,
	);

	const names = {
		mlship: `mlship predict (CLI \`${args.cli}\`, default worker pool)`,
		raw1: "raw onnxruntime-node, 1 session, 1 loop",
		raw2: "raw onnxruntime-node, 2 sessions on 2 worker threads",
		mlshipTrees: `mlship predict (CLI \`${args.cli}\`, default worker pool), bundle with \`runtime: trees\``,
		trees1: "raw trees runtime (predictTree on the same model.onnx), 1 loop",
	} as const;
	const treesDir = await treesBundle();
	const keys = Object.keys(names) as (keyof typeof names)[];
	const runs: Record<keyof typeof names, Run[]> = {
		mlship: [],
		raw1: [],
		raw2: [],
		mlshipTrees: [],
		trees1: [],
	};
	for (let i = 1; i <= RUNS; i++) {
		for (const k of keys) {
			const r =
				k === "mlship"
					? await runMlship(input, `${k}-${i}`)
					: k === "mlshipTrees"
						? await runMlship(input, `${k}-${i}`, treesDir)
						: await runRaw(input, k, `${k}-${i}`);
			runs[k].push(r);
			console.error(
				`run ${i}/${RUNS} ${k.padEnd(6)} ${fmtInt(r.rowsScored).padStart(9)} rows scored ${fmtInt(r.rowsPerSecond).padStart(11)} rows/s  wall ${r.wallS.toFixed(2)} s  peak RSS ${r.peakRssMb?.toFixed(0) ?? "?"} MB  benign ${r.positives}`,
			);
		}
	}

	const med = Object.fromEntries(
		keys.map((k) => [
			k,
			{
				rowsScored: Math.min(...runs[k].map((r) => r.rowsScored)),
				rowsPerSecond: median(runs[k].map((r) => r.rowsPerSecond)),
				wallS: median(runs[k].map((r) => r.wallS)),
				peakRssMb: medianOrNull(runs[k].map((r) => r.peakRssMb)),
			},
		]),
	) as Record<
		keyof typeof names,
		{
			rowsScored: number;
			rowsPerSecond: number;
			wallS: number;
			peakRssMb: number | null;
		}
	>;

	const complete =
		med.mlship.rowsScored === ROWS && med.mlshipTrees.rowsScored === ROWS;
	// Same rows scored the same way: the count of label 1 (benign) must agree everywhere.
	const checks = new Set(
		Object.values(runs).flatMap((rs) => rs.map((r) => r.positives)),
	);
	const agree = checks.size === 1;

	const best = Math.max(med.raw1.rowsPerSecond, med.raw2.rowsPerSecond);
	const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(0)}%`;
	const lines = [
		"| contender | rows scored | rows/s (median) | wall s (median, whole process) | peak RSS MB (median) | vs raw 1 session | vs best raw |",
		"|---|---:|---:|---:|---:|---:|---:|",
		...keys.map((k) => {
			const m = med[k];
			return `| ${names[k]} | ${fmtInt(m.rowsScored)} | ${fmtInt(m.rowsPerSecond)} | ${m.wallS.toFixed(2)} | ${m.peakRssMb === null ? "n/a" : m.peakRssMb.toFixed(0)} | ${pct(m.rowsPerSecond, med.raw1.rowsPerSecond)} | ${pct(m.rowsPerSecond, best)} |`;
		}),
	];
	const table = lines.join("\n");
	// The bound is the raw in-process loop (one session). Two raw sessions on two workers is a
	// stricter figure: it spends both cores on the model alone, while mlship also reads and writes files.
	const ratio = med.mlship.rowsPerSecond / med.raw1.rowsPerSecond;
	let conclusion = complete
		? `mlship predict reaches ${pct(med.mlship.rowsPerSecond, med.raw1.rowsPerSecond)} of the raw bound (one session, one in-process loop): ${ratio >= 0.7 ? "meets" : "misses"} the ≥ 70% target. Against two raw sessions on both cores, which score and nothing else, it reaches ${pct(med.mlship.rowsPerSecond, best)}.`
		: `INVALID: mlship predict exited 0 but scored only ${fmtInt(med.mlship.rowsScored)} of ${fmtInt(ROWS)} rows, so its rows/s is not comparable; fix the predict path and re-run.`;
	if (complete)
		conclusion += ` The trees runtime (same GBDT, read from the same model.onnx) scores ${(med.trees1.rowsPerSecond / med.raw1.rowsPerSecond).toFixed(2)}× raw onnxruntime's rows/s in the same single-thread loop (target ≥ 1×: ${med.trees1.rowsPerSecond >= med.raw1.rowsPerSecond ? "met" : "MISSED"}), and \`mlship predict\` with \`runtime: trees\` ${(med.mlshipTrees.rowsPerSecond / med.mlship.rowsPerSecond).toFixed(2)}× the onnx runtime's.`;
	if (complete)
		conclusion += agree
			? " All contenders agree on the number of rows labelled benign."
			: ` WARNING: the contenders disagree on the number of rows labelled benign (${[...checks].join(", ")}).`;
	console.log(`\n${table}\n\n${conclusion}`);
	if (args["json-out"])
		await writeFile(
			args["json-out"],
			`${JSON.stringify({ rows: ROWS, complete, agree, medians: med }, null, 2)}\n`,
		);

	if (args["no-results"]) return;
	const defaults =
		ROWS === 1_000_000 &&
		RUNS === 3 &&
		BATCH === 8192 &&
		args.cli === "src/cli/main.ts";
	const cmd = defaults
		? "npm run bench:predict"
		: `node bench/predict/run.ts --rows ${ROWS} --runs ${RUNS} --batch ${BATCH} --cli ${args.cli}`;
	const section = [
		"## predict",
		"",
		"Rows/s of `mlship predict` on a Parquet file with the breast_cancer GBDT (`test/fixtures/models/breast-cancer-gbdt`: 30 FP32 features, outputs `label` + `probabilities`), with the onnx runtime and with the `trees` runtime (a copy of the bundle saying `runtime: trees`: the same model.onnx read into mlship's tree representation and evaluated in TypeScript), beside the raw onnxruntime-node bound and the raw trees bound on the same model and the same rows: all rows preloaded (not timed) into one Float32Array, then one timed loop of `session.run` (or `predictTree`) over " +
			`${BATCH}-row subarray views. mlship's rows/s is its own \`--json\` summary (read + encode + score + write the output Parquet; process start and model load excluded); wall s is the whole child process, peak RSS from \`/usr/bin/time -v\`. Each contender runs ${RUNS} times, alternately, each in a fresh process; medians shown. "Vs raw 1 session" is the target ratio (the issue's bound); "vs best raw" is the stricter one against two sessions that use both cores for scoring alone.`,
		"",
		`- date: ${new Date().toISOString().slice(0, 10)}`,
		`- machine: ${machine()}`,
		`- data: ${fmtInt(ROWS)} rows × 30 DOUBLE columns (the 143 golden records cycled, ±0.1% deterministic jitter), generated once by DuckDB into bench/out/`,
		`- command: \`${cmd}\``,
		"",
		table,
		"",
		`Conclusion: ${conclusion}`,
		"",
	].join("\n");
	await writeResults("predict", section);
	console.error("bench/RESULTS.md: ## predict updated");
}

await main();
