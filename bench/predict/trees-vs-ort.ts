// bench/predict trees vs onnxruntime: the `trees` runtime's evaluation (predictTree) against raw onnxruntime-node
// (one session, 1 intra-op thread, mlship's options) on the same GBDT model files, in one process, same rows.
//
//   node bench/predict/trees-vs-ort.ts [--rows 200000] [--rounds 5] [--batch 8192] [--models a,b] [--no-results]
//
// For each ONNX GBDT fixture (scikit-learn, XGBoost, LightGBM): `--rows` rows (the golden records cycled, each value
// times 1 ± up to 0.1% deterministic jitter, as Float32) preloaded, then `--rounds` alternating rounds of
// "score every row with onnxruntime" and "score every row with predictTree", in batches of `--batch` rows. Each
// round is measured by process CPU time (process.cpuUsage: user + system, every thread: it survives a loaded
// machine better than wall time) and wall time; the table shows medians and the in-run ratio of CPU per row
// (onnxruntime ÷ trees: above 1 the trees runtime is faster). Both answers are compared row by row.
// Results go to stdout and to the "## predict: trees vs onnxruntime" section of bench/RESULTS.md.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import ort from "onnxruntime-node";
import type { Tensor } from "../../src/protocol/types.ts";
import { predictTree } from "../../src/trees/eval.ts";
import { readTreeModel } from "../../src/trees/read/index.ts";
import {
	fmtInt,
	machine,
	median,
	positiveInt,
	ROOT,
	writeResults,
} from "../common.ts";
import { createRawSession } from "./raw.ts";

const { values: args } = parseArgs({
	options: {
		rows: { type: "string", default: "200000" },
		rounds: { type: "string", default: "5" },
		batch: { type: "string", default: "8192" },
		models: {
			type: "string",
			default: "breast-cancer-gbdt,wine-xgb,diabetes-lgbm",
		},
		"no-results": { type: "boolean", default: false },
	},
});
const ROWS = positiveInt("--rows", args.rows);
const ROUNDS = positiveInt("--rounds", args.rounds);
const BATCH = positiveInt("--batch", args.batch);
const MODELS = (args.models as string).split(",").filter(Boolean);

/** What trained each fixture (for the table). */
const TRAINED_BY: Record<string, string> = {
	"breast-cancer-gbdt": "scikit-learn GradientBoostingClassifier",
	"wine-xgb": "XGBoost XGBClassifier (3 classes)",
	"diabetes-lgbm": "LightGBM LGBMRegressor",
};

interface Fixture {
	name: string;
	onnx: Uint8Array;
	input: string;
	width: number;
	outputs: string[];
	data: Float32Array;
	trees: number;
	nodes: number;
}

/** Feature names in input-column order from mlship.yaml (the `- {name: x, input: ...}` lines of `features:`). */
function featureOrder(dir: string): string[] {
	const yaml = readFileSync(join(dir, "mlship.yaml"), "utf8");
	const section = yaml.split(/^features:\s*$/m)[1]?.split(/^\S/m)[0] ?? "";
	return [...section.matchAll(/-\s*\{\s*name:\s*([\w.-]+)/g)].map(
		(m) => m[1] as string,
	);
}

function load(name: string): Fixture {
	const dir = join(ROOT, "test/fixtures/models", name);
	const onnx = new Uint8Array(readFileSync(join(dir, "model.onnx")));
	const model = readTreeModel(onnx, `${name}/model.onnx`);
	if (model.body.kind !== "ensemble")
		throw new Error(`${name} is not a tree ensemble`);
	const features = featureOrder(dir);
	const width = features.length;
	const golden = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as {
		records: Record<string, number>[];
	};
	const data = new Float32Array(ROWS * width);
	// Deterministic jitter (a 32-bit LCG): rows are not byte-identical, values stay realistic.
	let seed = 12345;
	for (let r = 0; r < ROWS; r++) {
		const rec = golden.records[r % golden.records.length] as Record<
			string,
			number
		>;
		for (let c = 0; c < width; c++) {
			seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
			const jitter = 1 + ((seed / 2 ** 32) * 2 - 1) * 0.001;
			data[r * width + c] = (rec[features[c] as string] as number) * jitter;
		}
	}
	const input = model.signature.inputs[0]?.name ?? "float_input";
	return {
		name,
		onnx,
		input,
		width,
		outputs: model.signature.outputs.map((o) => o.name),
		data,
		trees: model.body.trees.length,
		nodes: model.body.trees.reduce((a, t) => a + t.feature.length, 0),
	};
}

/** The last output (probabilities or variable) of every row, as float64, for the agreement check. */
type Scores = Float64Array;

async function runOrt(
	session: ort.InferenceSession,
	fx: Fixture,
	keep: Scores,
): Promise<void> {
	const total = fx.data.length / fx.width;
	const last = fx.outputs[fx.outputs.length - 1] as string;
	for (let start = 0; start < total; start += BATCH) {
		const n = Math.min(BATCH, total - start);
		const view = fx.data.subarray(start * fx.width, (start + n) * fx.width);
		const out = await session.run(
			{ [fx.input]: new ort.Tensor("float32", view, [n, fx.width]) },
			fx.outputs,
		);
		const d = out[last]?.data as Float32Array;
		keep.set(d, (start * d.length) / n);
	}
}

function runTrees(
	model: ReturnType<typeof readTreeModel>,
	fx: Fixture,
	keep: Scores,
): void {
	const total = fx.data.length / fx.width;
	for (let start = 0; start < total; start += BATCH) {
		const n = Math.min(BATCH, total - start);
		const input: Tensor = {
			name: fx.input,
			datatype: "FP32",
			shape: [n, fx.width],
			data: fx.data.subarray(start * fx.width, (start + n) * fx.width),
		};
		const out = predictTree(model, [input], fx.outputs);
		const d = out[out.length - 1]?.data as Float32Array;
		keep.set(d, (start * d.length) / n);
	}
}

interface Round {
	cpuUs: number;
	wallMs: number;
}

async function timed(f: () => Promise<void> | void): Promise<Round> {
	const c0 = process.cpuUsage();
	const w0 = performance.now();
	await f();
	const wallMs = performance.now() - w0;
	const c = process.cpuUsage(c0);
	return { cpuUs: c.user + c.system, wallMs };
}

interface Row {
	name: string;
	trees: number;
	nodes: number;
	ortNsRow: number;
	treesNsRow: number;
	ratio: number;
	ratios: number[];
	ortWallRows: number;
	treesWallRows: number;
	maxDiff: number;
}

async function bench(name: string): Promise<Row> {
	const fx = load(name);
	const session = await createRawSession(fx.onnx);
	const model = readTreeModel(fx.onnx, `${name}/model.onnx`);
	const rows = fx.data.length / fx.width;
	const probe = predictTree(
		model,
		[
			{
				name: fx.input,
				datatype: "FP32",
				shape: [1, fx.width],
				data: fx.data.subarray(0, fx.width),
			},
		],
		fx.outputs,
	);
	const perRow =
		(probe[probe.length - 1]?.data as Float32Array | undefined)?.length ?? 0;
	const a = new Float64Array(rows * perRow);
	const b = new Float64Array(rows * perRow);
	// Warm-up: one round each (JIT, ORT arenas), not measured.
	await runOrt(session, fx, a);
	runTrees(model, fx, b);
	const ortRounds: Round[] = [];
	const treeRounds: Round[] = [];
	const ratios: number[] = [];
	for (let i = 0; i < ROUNDS; i++) {
		const o = await timed(() => runOrt(session, fx, a));
		const t = await timed(() => runTrees(model, fx, b));
		ortRounds.push(o);
		treeRounds.push(t);
		ratios.push(o.cpuUs / t.cpuUs);
	}
	await session.release();
	let maxDiff = 0;
	for (let i = 0; i < a.length; i++)
		maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (b[i] as number)));
	const ortCpu = median(ortRounds.map((r) => r.cpuUs));
	const treeCpu = median(treeRounds.map((r) => r.cpuUs));
	return {
		name,
		trees: fx.trees,
		nodes: fx.nodes,
		ortNsRow: (ortCpu * 1000) / rows,
		treesNsRow: (treeCpu * 1000) / rows,
		ratio: median(ratios),
		ratios,
		ortWallRows: rows / (median(ortRounds.map((r) => r.wallMs)) / 1000),
		treesWallRows: rows / (median(treeRounds.map((r) => r.wallMs)) / 1000),
		maxDiff,
	};
}

const results: Row[] = [];
for (const name of MODELS) {
	const r = await bench(name);
	results.push(r);
	console.log(
		`${name}: onnxruntime ${r.ortNsRow.toFixed(0)} ns/row CPU, trees ${r.treesNsRow.toFixed(0)} ns/row CPU, ratio ${r.ratio.toFixed(2)}× (rounds ${r.ratios.map((x) => x.toFixed(2)).join(" / ")}), max abs diff ${r.maxDiff.toExponential(1)}`,
	);
}

const table = [
	"| model (ONNX fixture) | trained by | trees / nodes | onnxruntime CPU ns/row | trees CPU ns/row | **trees speed ÷ onnxruntime** (CPU, median of rounds) | per round | onnxruntime rows/s (wall; see the load average above) | trees rows/s (wall; see the load average above) | max abs diff |",
	"|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
	...results.map(
		(r) =>
			`| ${r.name} | ${TRAINED_BY[r.name] ?? ""} | ${r.trees} / ${fmtInt(r.nodes)} | ${r.ortNsRow.toFixed(0)} | ${r.treesNsRow.toFixed(0)} | **${r.ratio.toFixed(2)}×** | ${r.ratios.map((x) => x.toFixed(2)).join(" / ")} | ${fmtInt(r.ortWallRows)} | ${fmtInt(r.treesWallRows)} | ${r.maxDiff.toExponential(1)} |`,
	),
].join("\n");
console.log(`\n${table}`);

if (!args["no-results"]) {
	const min = Math.min(...results.map((r) => r.ratio));
	await writeResults(
		"predict: trees vs onnxruntime",
		`## predict: trees vs onnxruntime

The \`trees\` runtime's evaluation (\`predictTree\`: features → raw scores → link → label and probabilities) against raw onnxruntime-node (one session, 1 intra-op thread, sequential, all graph optimisations: mlship's options) on the same ONNX GBDT files, in one process on the same Float32 rows (${fmtInt(ROWS)} rows: the golden records cycled with ±0.1% deterministic jitter), in batches of ${fmtInt(BATCH)} rows. ${ROUNDS} alternating rounds (onnxruntime, then trees) after one warm-up round each; each round is measured by process CPU time (\`process.cpuUsage\`, user + system, every thread), and the ratio is taken round by round (onnxruntime CPU ÷ trees CPU: above 1 the trees runtime is faster). Wall-clock rows/s depend on the load average on the machine line. Max abs diff compares the two runtimes' last output (probabilities, or the regression value) row by row: onnxruntime sums the trees in float32, mlship in float64.

- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${machine(
			`load average ${(await import("node:os"))
				.loadavg()
				.map((x) => x.toFixed(1))
				.join(" ")} at the end`,
		)}
- command: \`npm run bench:trees\` (\`node bench/predict/trees-vs-ort.ts\`; options \`--rows --rounds --batch --models\`)

${table}

Target ≥ 1× on every GBDT: ${min >= 1 ? "MET" : "MISSED"} (lowest ${min.toFixed(2)}×).
`,
	);
}
