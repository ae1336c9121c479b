// bench/sdk: how long the Python SDK takes to save each fixture model (mlship.save: convert, check against the
// library on the held-out rows, write), and `mlship bundle verify` from Node on the result (a fresh process: start,
// schema, sha256, load, golden.json re-checked). Medians of N runs. Needs python/.venv (bash python/setup.sh).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine, median, positiveInt, ROOT, writeResults } from "../common.ts";

const { values: flags } = parseArgs({
	options: {
		runs: { type: "string", default: "3" },
		"no-results": { type: "boolean", default: false },
	},
});
const RUNS = positiveInt("--runs", flags.runs);
const PY = join(ROOT, "python/.venv/bin/python");
if (!existsSync(PY)) {
	process.stderr.write(
		"bench/sdk: python/.venv is missing; run 'bash python/setup.sh' first\n",
	);
	process.exit(1);
}
const CLI = join(ROOT, "bin/mlship.js");
const dir = await mkdtemp(join(tmpdir(), "mlship-bench-sdk-"));
try {
	const env = {
		...process.env,
		OMP_NUM_THREADS: "1",
		OPENBLAS_NUM_THREADS: "1",
		MKL_NUM_THREADS: "1",
		PYTHONHASHSEED: "0",
	};
	const saved = JSON.parse(
		execFileSync(
			PY,
			[
				join(ROOT, "bench/sdk/save_fixtures.py"),
				"--out",
				dir,
				"--runs",
				String(RUNS),
			],
			{ env, encoding: "utf8", maxBuffer: 1 << 24 },
		),
	) as { runs: Record<string, number>[]; out: string };
	const models = Object.keys(saved.runs[0] ?? {});
	const rows: string[] = [];
	for (const m of models) {
		const save = median(saved.runs.map((r) => (r[m] ?? Number.NaN) * 1000));
		const verify: number[] = [];
		let goldenRows = 0;
		for (let i = 0; i < RUNS; i++) {
			const t = performance.now();
			const r = spawnSync(
				process.execPath,
				[CLI, "bundle", "verify", join(saved.out, m), "--json"],
				{ encoding: "utf8" },
			);
			verify.push(performance.now() - t);
			if (r.status !== 0)
				throw new Error(`bundle verify ${m} failed: ${r.stderr}`);
			goldenRows = (JSON.parse(r.stdout) as { golden: { rows: number } }).golden
				.rows;
		}
		rows.push(
			`| ${m} | ${goldenRows} | ${save.toFixed(0)} | ${median(verify).toFixed(0)} |`,
		);
		process.stdout.write(`${rows.at(-1)}\n`);
	}
	const section = `## sdk

Time to save each fixture model with the Python SDK and to verify the bundle from Node. \`mlship.save\`
(python/src) on the model \`tools/fixtures/train.py\` trains, with its held-out rows as the sample: convert to ONNX,
run it with onnxruntime (one thread) on every sample row and compare with the library's predict/predict_proba,
write model.onnx, mlship.yaml and golden.json (training not timed). \`mlship bundle verify --json\`: a fresh Node
process (\`bin/mlship.js\` on the TypeScript sources) that checks the manifest and sha256, loads the model and scores
golden.json's rows against the library's outputs. Medians of ${RUNS} runs.

- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${machine("shared with other work while measured: figures are upper bounds")}
- command: \`node bench/sdk/run.ts --runs ${RUNS}\`

| model | golden rows | mlship.save ms (median) | bundle verify ms (median, whole process) |
|---|---:|---:|---:|
${rows.join("\n")}
`;
	if (!flags["no-results"]) await writeResults("sdk", section);
	process.stdout.write(section);
} finally {
	await rm(dir, { recursive: true, force: true });
}
