// The trees runtime through the normal core: `mlship bundle init model.pmml` and bare .json/.txt files, then
// predict (CLI), serve (REST) and batch run (CLI) give the original libraries' golden outputs.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { readBundle } from "../../src/bundle/bundle.ts";
import { loadModel } from "../../src/model.ts";
import { mlship, readTable, writeTable } from "../helpers/files.ts";
import { assertClose, bundleDir, golden } from "../helpers/fixtures.ts";
import { startRest } from "../helpers/server.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-trees-"));
});
after(() => rm(dir, { recursive: true, force: true }));

function assertColumn(fixture: string, output: string, got: number[]): void {
	const want = (
		golden(fixture).expected[output] as (number | number[])[]
	).flat();
	assert.equal(got.length, want.length);
	got.forEach((g, i) => {
		assertClose(g, want[i] as number, `${fixture}/${output}[${i}]`);
	});
}

describe("trees runtime through the core", () => {
	it("mlship bundle init model.pmml writes a trees bundle; mlship predict scores it like JPMML-Evaluator", async () => {
		const f = "trees/diabetes-rf-pmml";
		const b = join(dir, "rf");
		await mlship(["--help"]); // warm the TypeScript loader once (no assertion)
		await import("node:fs/promises").then((fs) => fs.mkdir(b));
		await copyFile(join(bundleDir(f), "model.pmml"), join(b, "model.pmml"));
		const init = await mlship([
			"bundle",
			"init",
			join(b, "model.pmml"),
			"--json",
		]);
		assert.equal(init.code, 0, init.stderr);
		const manifest = parseYaml(
			await readFile(join(b, "mlship.yaml"), "utf8"),
		) as {
			runtime: string;
			signature: { inputs: { name: string }[] };
		};
		assert.equal(manifest.runtime, "trees");
		assert.deepEqual(
			manifest.signature.inputs.map((i) => i.name),
			Object.keys(golden(f).records[0] as object).filter((k) =>
				manifest.signature.inputs.some((i) => i.name === k),
			),
		);
		const input = join(dir, "rf.csv");
		await writeTable(input, golden(f).records);
		const output = join(dir, "rf.out.csv");
		const r = await mlship(["predict", "-m", b, "-i", input, "-o", output]);
		assert.equal(r.code, 0, r.stderr);
		const rows = await readTable(output);
		assertColumn(
			f,
			"variable",
			rows.map((x) => Number(x.variable)),
		);
	});

	// Doubles go in even where the signature says FP32: XGBoost compares in single precision, so the reader
	// rounds its features to float32 (without that, wine row 33 lands on the other side of a split).
	it("bare XGBoost .json and LightGBM .txt files load as trees models with their own signatures", async () => {
		for (const [f, file] of [
			["trees/wine-xgb-json", "model.json"],
			["trees/iris-lgbm-cat", "model.txt"],
		] as const) {
			const bare = await readBundle(join(bundleDir(f), file));
			assert.equal(bare.manifest.runtime, "trees");
			const m = await loadModel(join(bundleDir(f), file), { mode: "inline" });
			try {
				const rows = golden(f).records.map((r) => Object.values(r as object));
				const width = rows[0]?.length ?? 0;
				const out = await m.predict([
					{
						name: "float_input",
						datatype: bare.manifest.signature.inputs[0]?.datatype ?? "FP32",
						shape: [rows.length, width],
						data: Float64Array.from(
							rows.flat() as number[],
						) as unknown as Float32Array,
					},
				]);
				const p = out.find((t) => t.name === "probabilities");
				assertColumn(f, "probabilities", Array.from(p?.data as Float32Array));
			} finally {
				await m.close();
			}
		}
	});

	it("mlship serve (REST /predict) answers with XGBoost's probabilities", async () => {
		const f = "trees/breast-cancer-xgb-missing";
		const srv = await startRest({ [f]: "cancer" });
		try {
			const res = await fetch(`${srv.url}/v2/models/cancer/predict`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ instances: golden(f).records }),
			});
			assert.equal(res.status, 200);
			const body = (await res.json()) as {
				predictions: { probabilities: number[] }[];
			};
			assertColumn(
				f,
				"probabilities",
				body.predictions.flatMap((p) => p.probabilities),
			);
		} finally {
			await srv.close();
		}
	});

	it("mlship batch run scores a file with a LightGBM text model like LightGBM", async () => {
		const f = "trees/diabetes-lgbm-txt";
		const input = join(dir, "lgbm.jsonl");
		await writeTable(input, golden(f).records);
		const output = join(dir, "lgbm.out.parquet");
		const r = await mlship([
			"batch",
			"run",
			"-m",
			bundleDir(f),
			"-s",
			input,
			"-o",
			output,
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const rows = await readTable(output);
		assertColumn(
			f,
			"variable",
			rows.map((x) => Number(x.variable)),
		);
	});
});

describe("mlship batch run --explain K", () => {
	it("adds the top-K contributions of the predicted class as columns, equal to shap's", async () => {
		const f = "trees/wine-xgb-json";
		const input = join(dir, "wine.jsonl");
		await writeTable(input, golden(f).records);
		const output = join(dir, "wine.out.parquet");
		const r = await mlship([
			"batch",
			"run",
			"-m",
			bundleDir(f),
			"-s",
			input,
			"-o",
			output,
			"--explain",
			"2",
		]);
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const rows = await readTable(output);
		const shap = JSON.parse(
			await readFile(join(bundleDir(f), "shap.json"), "utf8"),
		) as { values: number[][][] };
		const names = Object.keys(golden(f).records[0] as object);
		const labels = golden(f).expected.label as number[];
		assert.equal(rows.length, labels.length);
		rows.forEach((row, i) => {
			const phi = shap.values[i]?.[labels[i] as number] as number[];
			const order = phi
				.map((_, j) => j)
				.sort(
					(a, b) => Math.abs(phi[b] as number) - Math.abs(phi[a] as number),
				);
			for (const k of [0, 1]) {
				const j = order[k] as number;
				assert.equal(
					row[`explain_${k + 1}_feature`],
					names[j],
					`row ${i} rank ${k + 1}`,
				);
				assert.ok(
					Math.abs(
						Number(row[`explain_${k + 1}_value`]) - (phi[j] as number),
					) <= 1e-4,
				);
			}
			assert.equal(row.explain_3_feature, undefined);
		});
	});

	it("a model its runtime cannot explain fails the job before writing, saying what to do", async () => {
		const input = join(dir, "iris.csv");
		await writeTable(input, golden("iris-logreg").records);
		const output = join(dir, "iris.out.csv");
		const r = await mlship([
			"batch",
			"run",
			"-m",
			bundleDir("iris-logreg"),
			"-s",
			input,
			"-o",
			output,
			"--explain",
			"1",
		]);
		assert.notEqual(r.code, 0);
		assert.match(r.stderr, /cannot explain predictions; set 'runtime: trees'/);
		await assert.rejects(readFile(output), /ENOENT/);
	});
});

describe("mlship sql with a trees bundle", () => {
	it("predict() in DuckDB gives LightGBM's values (the trees runtime answers synchronously)", async () => {
		const f = "trees/diabetes-lgbm-txt";
		const rows = golden(f).records.filter((r) =>
			Object.values(r as object).every((v) => v !== null),
		);
		const input = join(dir, "sql.jsonl");
		await writeTable(input, rows);
		const names = Object.keys(rows[0] as object);
		const r = await mlship([
			"sql",
			`SELECT predict('${bundleDir(f)}', ${names.join(", ")}) AS p FROM read_json('${input}')`,
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr);
		const got = (JSON.parse(r.stdout) as { p: number }[]).map((x) => x.p);
		const all = golden(f).records;
		const want = (golden(f).expected.variable as number[]).filter((_, i) =>
			Object.values(all[i] as object).every((v) => v !== null),
		);
		assert.equal(got.length, want.length);
		got.forEach((g, i) => {
			assertClose(g, want[i] as number, `sql row ${i}`);
		});
	});
});
