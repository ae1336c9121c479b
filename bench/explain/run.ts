// bench/explain: rows/s of mlship's TreeSHAP (explainTree, path-dependent, one thread) beside shap.TreeExplainer
// (path-dependent, one library thread) on the same model files and the same rows, in one run.
//
//   bash bench/explain/setup.sh      # once: the pinned venv that made the shap goldens (tools/fixtures/.venv)
//   node bench/explain/run.ts [--rows 10000] [--rounds 3] [--models a,b] [--no-results]
//
// For each native tree fixture shap can load (XGBoost JSON, LightGBM text): `--rows` rows (the golden records
// cycled, non-integer values times 1 ± up to 0.1% deterministic jitter, missing values kept missing) written once
// as float64 for Python. mlship explains them `--rounds` times in this process, then a Python child
// (bench/explain/shap_bench.py) explains them `--rounds` times after a warm-up call; each call is timed by process
// CPU time (it survives a loaded machine better than wall time) and wall time. The ratio is shap's median CPU per
// row ÷ mlship's (above 1 mlship is faster). Both answers are compared value by value.
// Results go to stdout and to the "## explain" section of bench/RESULTS.md.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readBundle } from "../../src/bundle/bundle.ts";
import { artifactBytes } from "../../src/bundle/types.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { loadTreeModel } from "../../src/runtime/trees/load.ts";
import { featureMatrix } from "../../src/trees/eval.ts";
import { explainTree } from "../../src/trees/explain.ts";
import { treeDepth } from "../../src/trees/ir.ts";
import {
	fmtInt,
	machine,
	median,
	OUT,
	positiveInt,
	ROOT,
	writeResults,
} from "../common.ts";

const { values: args } = parseArgs({
	options: {
		rows: { type: "string", default: "10000" },
		rounds: { type: "string", default: "3" },
		models: {
			type: "string",
			default:
				"breast-cancer-xgb-missing,wine-xgb-json,diabetes-lgbm-txt,iris-lgbm-cat",
		},
		"no-results": { type: "boolean", default: false },
	},
});
const ROWS = positiveInt("--rows", args.rows);
const ROUNDS = positiveInt("--rounds", args.rounds);
const MODELS = (args.models as string).split(",").filter(Boolean);
const PYTHON = join(ROOT, "tools/fixtures/.venv/bin/python");
const SCRIPT = join(ROOT, "bench/explain/shap_bench.py");

/** What trained each fixture (for the table). */
const TRAINED_BY: Record<string, string> = {
	"breast-cancer-xgb-missing": "XGBoost, binary, missing values",
	"wine-xgb-json": "XGBoost, 3 classes",
	"diabetes-lgbm-txt": "LightGBM, regression, missing values",
	"iris-lgbm-cat": "LightGBM, 3 classes, a categorical feature",
};

interface ShapRun {
	shap: string;
	library: string;
	cpu_s: number[];
	wall_s: number[];
	base: number[];
}

function python(argv: string[]): Promise<string> {
	return new Promise((res, rej) => {
		const child = spawn(PYTHON, argv, {
			cwd: ROOT,
			stdio: ["ignore", "pipe", "pipe"],
		});
		let out = "";
		let err = "";
		child.stdout.on("data", (d: Buffer) => {
			out += d.toString();
		});
		child.stderr.on("data", (d: Buffer) => {
			err += d.toString();
		});
		child.once("error", rej);
		child.once("close", (code) =>
			code === 0
				? res(out)
				: rej(new Error(`shap_bench.py exited with ${code}\n${err}`)),
		);
	});
}

interface Row {
	name: string;
	format: string;
	trees: number;
	depth: number;
	features: number;
	targets: number;
	oursRowsCpu: number;
	shapRowsCpu: number;
	ratio: number;
	oursRowsWall: number;
	shapRowsWall: number;
	maxDiff: number;
	shap: string;
	library: string;
}

async function bench(name: string): Promise<Row> {
	const dir = join(ROOT, "test/fixtures/trees", name);
	const b = await readBundle(dir);
	const model = loadTreeModel(artifactBytes(b), name, b.manifest.signature);
	if (model.body.kind !== "ensemble")
		throw new Error(`${name} is not a tree ensemble`);
	const kind =
		model.format === "xgboost" || model.format === "lightgbm"
			? model.format
			: undefined;
	if (!kind)
		throw new Error(`${name}: shap loads XGBoost and LightGBM files only`);
	const nf = model.features.length;
	const T = model.targets;
	const spec = model.signature.inputs[0];
	if (
		!spec ||
		model.signature.inputs.length !== 1 ||
		model.features.some((f, j) => f.input !== 0 || f.column !== j)
	)
		throw new Error(`${name}: one input whose columns are the features`);
	const golden = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as {
		records: Record<string, unknown>[];
	};
	const { tensors } = encodeRecords(planTable(b.manifest), golden.records);
	const base = featureMatrix(model, tensors);
	const nb = base.length / nf;
	// The rows in the input's own datatype (float32 for FP32 inputs), and the same values as float64 for Python.
	const X =
		spec.datatype === "FP32"
			? new Float32Array(ROWS * nf)
			: new Float64Array(ROWS * nf);
	let seed = 12345;
	for (let r = 0; r < ROWS; r++)
		for (let j = 0; j < nf; j++) {
			const v = base[(r % nb) * nf + j] as number;
			seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
			const jitter = 1 + ((seed / 2 ** 32) * 2 - 1) * 0.001;
			X[r * nf + j] = Number.isInteger(v) || Number.isNaN(v) ? v : v * jitter;
		}
	await mkdir(OUT, { recursive: true });
	const dataFile = join(OUT, `explain-${name}-${ROWS}.f64`);
	const valuesFile = join(OUT, `explain-${name}-${ROWS}.shap.f64`);
	await writeFile(dataFile, Float64Array.from(X));
	const input: Tensor = {
		name: spec.name,
		datatype: spec.datatype,
		shape: [ROWS, nf],
		data: X,
	};
	// Warm-up on a slice, then timed rounds.
	explainTree(model, [
		{
			...input,
			shape: [Math.min(100, ROWS), nf],
			data: X.subarray(0, Math.min(100, ROWS) * nf),
		},
	]);
	const cpu: number[] = [];
	const wall: number[] = [];
	let ours = explainTree(model, [input]);
	for (let i = 0; i < ROUNDS; i++) {
		const c0 = process.cpuUsage();
		const w0 = performance.now();
		ours = explainTree(model, [input]);
		wall.push((performance.now() - w0) / 1000);
		const c = process.cpuUsage(c0);
		cpu.push((c.user + c.system) / 1e6);
	}
	const out = await python([
		SCRIPT,
		"--model",
		join(dir, b.manifest.artifact.path),
		"--kind",
		kind,
		"--data",
		dataFile,
		"--rows",
		String(ROWS),
		"--features",
		String(nf),
		"--targets",
		String(T),
		"--rounds",
		String(ROUNDS),
		"--out",
		valuesFile,
	]);
	const s = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as ShapRun;
	const theirs = new Float64Array((await readFile(valuesFile)).buffer.slice(0));
	if (theirs.length !== ours.values.length)
		throw new Error(
			`${name}: shap gave ${theirs.length} values, mlship ${ours.values.length}`,
		);
	let maxDiff = 0;
	for (let i = 0; i < theirs.length; i++)
		maxDiff = Math.max(
			maxDiff,
			Math.abs((theirs[i] as number) - (ours.values[i] as number)),
		);
	for (let t = 0; t < T; t++)
		maxDiff = Math.max(
			maxDiff,
			Math.abs((s.base[t] as number) - (ours.base[t] as number)),
		);
	const oursCpu = median(cpu);
	const shapCpu = median(s.cpu_s);
	return {
		name,
		format: kind,
		trees: model.body.trees.length,
		depth: Math.max(...model.body.trees.map(treeDepth)),
		features: nf,
		targets: T,
		oursRowsCpu: ROWS / oursCpu,
		shapRowsCpu: ROWS / shapCpu,
		ratio: shapCpu / oursCpu,
		oursRowsWall: ROWS / median(wall),
		shapRowsWall: ROWS / median(s.wall_s),
		maxDiff,
		shap: s.shap,
		library: s.library,
	};
}

if (!existsSync(PYTHON)) {
	process.stderr.write(
		"bench/explain: tools/fixtures/.venv is missing; run 'bash bench/explain/setup.sh' first\n",
	);
	process.exit(2);
}

const results: Row[] = [];
for (const name of MODELS) {
	const r = await bench(name);
	results.push(r);
	console.log(
		`${name}: mlship ${fmtInt(r.oursRowsCpu)} rows/s CPU, shap.TreeExplainer (${r.library}) ${fmtInt(r.shapRowsCpu)} rows/s CPU, ratio ${r.ratio.toFixed(2)}×, max |diff| ${r.maxDiff.toExponential(1)}`,
	);
}

const table = [
	"| model (native fixture) | trained by | trees, max depth, features × targets | mlship TreeSHAP rows/s (CPU) | shap.TreeExplainer rows/s (CPU) | **mlship ÷ shap** (CPU per row) | mlship rows/s (wall; see the load average above) | shap rows/s (wall; see the load average above) | shap computed by | max abs diff (values, base) |",
	"|---|---|---|---:|---:|---:|---:|---:|---|---:|",
	...results.map(
		(r) =>
			`| ${r.name} | ${TRAINED_BY[r.name] ?? r.format} | ${r.trees}, ${r.depth}, ${r.features} × ${r.targets} | ${fmtInt(r.oursRowsCpu)} | ${fmtInt(r.shapRowsCpu)} | **${r.ratio.toFixed(2)}×** | ${fmtInt(r.oursRowsWall)} | ${fmtInt(r.shapRowsWall)} | shap ${r.shap} → ${r.library} | ${r.maxDiff.toExponential(1)} |`,
	),
].join("\n");
console.log(`\n${table}`);

if (!args["no-results"]) {
	const min = Math.min(...results.map((r) => r.ratio));
	await writeResults(
		"explain",
		`## explain

Rows/s of mlship's exact TreeSHAP (\`explainTree\`: path-dependent, raw margin, one thread, in process) beside
\`shap.TreeExplainer(model, feature_perturbation="tree_path_dependent").shap_values(X)\` (Python, the pinned
tools/fixtures venv that made the shap goldens, the library set to one thread) on the same model files and the same
${fmtInt(ROWS)} rows (the fixture's golden records cycled, non-integer values jittered by up to ±0.1%, missing values
kept). For XGBoost and LightGBM models shap hands path-dependent explanations to the library's own C++ TreeSHAP
(\`pred_contribs\` / \`pred_contrib\`), so the right-hand column is that C++ code. Each side explains all rows
${ROUNDS} times after a warm-up; each call is timed by process CPU time (the ratio) and wall time (its load average is on the machine line).
Max abs diff compares every SHAP value and the base values of the two.

- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${machine(
			`load average ${loadavg()
				.map((x) => x.toFixed(1))
				.join(" ")} at the end`,
		)}
- command: \`bash bench/explain/setup.sh && npm run bench:explain\` (\`node bench/explain/run.ts\`; options \`--rows --rounds --models\`)

${table}

mlship ≥ shap.TreeExplainer on every model: ${min >= 1 ? "yes" : "NO"} (lowest ${min.toFixed(2)}×).
`,
	);
}
