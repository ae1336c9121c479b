// bench/check: a regression guard for performance-sensitive changes. Runs a short version of the benches and turns
// each into a ratio of mlship against the raw bound measured in the same run (so a slower or busier machine moves
// both sides), then fails when a ratio falls more than 15% below bench/check/baseline.json. On demand only — never
// in `npm test`: timing flakes on shared machines.
//
//   node bench/check/run.ts                 # compare with the committed baseline; exit 1 on a regression
//   node bench/check/run.ts --update        # measure and write the baseline (commit it with the change that moved it)
//   node bench/check/run.ts --only serve    # one bench (predict, serve)
//
// Ratios (higher is better, 1.0 = as fast as the bound):
//   predict            mlship predict rows/s ÷ raw onnxruntime-node, one session (200k rows, bench/predict)
//   serve.<protocol>   (floor + raw call) CPU per request ÷ mlship's server CPU per request, breast_cancer GBDT,
//                      8 clients, REST JSON / REST binary / gRPC (bench/serve with http-floor and grpc-floor)
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine, OUT, ROOT } from "../common.ts";

const BASELINE = join(ROOT, "bench/check/baseline.json");
/** A ratio may fall this far below its baseline before the check fails. */
const TOLERANCE = 0.15;
const { values: args } = parseArgs({
	options: {
		update: { type: "boolean", default: false },
		only: { type: "string" },
		baseline: { type: "string", default: BASELINE },
	},
});
const BENCHES = ["predict", "serve"] as const;
type BenchName = (typeof BENCHES)[number];
const only = args.only?.split(",").map((s) => s.trim());
for (const o of only ?? [])
	if (!BENCHES.includes(o as BenchName))
		throw new Error(`--only: unknown bench '${o}' (${BENCHES.join(", ")})`);
const selected = BENCHES.filter((b) => !only || only.includes(b));

interface Baseline {
	date: string;
	machine: string;
	tolerance: number;
	ratios: Record<string, number>;
}

function run(argv: string[]): Promise<void> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, argv, {
			cwd: ROOT,
			stdio: ["ignore", "ignore", "inherit"],
		});
		child.once("error", reject);
		child.once("exit", (code) =>
			code === 0
				? resolve()
				: reject(new Error(`node ${argv.join(" ")} exited ${code}`)),
		);
	});
}

async function predictRatios(): Promise<Record<string, number>> {
	const out = join(OUT, "check-predict.json");
	await run([
		"bench/predict/run.ts",
		"--rows",
		"200000",
		"--runs",
		"1",
		"--no-results",
		"--json-out",
		out,
	]);
	const r = JSON.parse(await readFile(out, "utf8")) as {
		complete: boolean;
		agree: boolean;
		medians: Record<"mlship" | "raw1", { rowsPerSecond: number }>;
	};
	if (!r.complete || !r.agree)
		throw new Error(
			"bench/predict: mlship did not score every row, or the contenders disagree: a correctness problem, not a timing one",
		);
	return {
		predict: r.medians.mlship.rowsPerSecond / r.medians.raw1.rowsPerSecond,
	};
}

async function serveRatios(): Promise<Record<string, number>> {
	await run([
		"bench/serve/run.ts",
		"--models",
		"gbdt",
		"--levels",
		"8",
		"--seconds",
		"3",
		"--warmup",
		"1",
		"--contenders",
		"mlship,http-floor,grpc-floor",
		"--no-results",
	]);
	const r = JSON.parse(
		await readFile(join(OUT, "serve/results.json"), "utf8"),
	) as {
		rows: {
			contender: string;
			kind: string;
			protocol: string;
			cpu_us_per_req: number;
			errors: number;
		}[];
		raws: { cpu_us_per_call: number }[];
	};
	const raw = r.raws[0]?.cpu_us_per_call ?? 0;
	const ratios: Record<string, number> = {};
	for (const protocol of ["rest", "binary", "grpc"]) {
		const m = r.rows.find(
			(x) => x.contender === "mlship" && x.protocol === protocol,
		);
		const f = r.rows.find((x) => x.kind === "floor" && x.protocol === protocol);
		if (!m || !f) throw new Error(`bench/serve gave no ${protocol} rows`);
		if (m.errors > 0)
			throw new Error(`bench/serve: mlship ${protocol} had ${m.errors} errors`);
		ratios[`serve.${protocol}`] = (f.cpu_us_per_req + raw) / m.cpu_us_per_req;
	}
	return ratios;
}

const load = loadavg()[0] ?? 0;
if (load > 0.5)
	console.error(
		`bench/check: WARNING load average ${load.toFixed(2)}: other work on this machine moves the ratios; rerun on a quiet machine before trusting a failure`,
	);
await mkdir(OUT, { recursive: true });
const ratios: Record<string, number> = {};
for (const b of selected) {
	console.error(`bench/check: ${b} …`);
	Object.assign(
		ratios,
		b === "predict" ? await predictRatios() : await serveRatios(),
	);
}

const round = (x: number) => Math.round(x * 1000) / 1000;
if (args.update) {
	const old: Baseline | undefined = existsSync(args.baseline as string)
		? (JSON.parse(await readFile(args.baseline as string, "utf8")) as Baseline)
		: undefined;
	const next: Baseline = {
		date: new Date().toISOString().slice(0, 10),
		machine: machine(`load average ${load.toFixed(2)}`),
		tolerance: TOLERANCE,
		ratios: {
			...(old?.ratios ?? {}),
			...Object.fromEntries(
				Object.entries(ratios).map(([k, v]) => [k, round(v)]),
			),
		},
	};
	await writeFile(
		args.baseline as string,
		`${JSON.stringify(next, null, "\t")}\n`,
	);
	for (const [k, v] of Object.entries(ratios))
		console.log(`${k.padEnd(14)} ${round(v)}`);
	console.log(`wrote ${args.baseline}`);
} else {
	if (!existsSync(args.baseline as string))
		throw new Error(
			`no baseline at ${args.baseline}: run 'node bench/check/run.ts --update' on a quiet machine and commit it`,
		);
	const base = JSON.parse(
		await readFile(args.baseline as string, "utf8"),
	) as Baseline;
	let failed = 0;
	console.log("| ratio | baseline | now | now ÷ baseline | |");
	console.log("|---|---:|---:|---:|---|");
	for (const [k, v] of Object.entries(ratios)) {
		const b = base.ratios[k];
		if (b === undefined) {
			console.log(
				`| ${k} | — | ${round(v)} | — | no baseline (run --update) |`,
			);
			continue;
		}
		const bad = v < b * (1 - TOLERANCE);
		if (bad) failed++;
		console.log(
			`| ${k} | ${b} | ${round(v)} | ${(v / b).toFixed(2)} | ${bad ? `✗ more than ${TOLERANCE * 100}% below` : "✓"} |`,
		);
	}
	if (failed > 0) {
		console.error(
			`bench/check: ${failed} ratio(s) fell more than ${TOLERANCE * 100}% below the baseline (${base.date}, ${base.machine}). Profile the change (--cpu-prof), or rerun on a quiet machine if the load was high.`,
		);
		process.exitCode = 1;
	}
}
