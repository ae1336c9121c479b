// Node covers from reference data: `mlship bundle init --reference` counts the training rows reaching each node of a
// tree model whose file carries none (ONNX from skl2onnx, PMML from sklearn2pmml), keeps them in covers.json (sha256
// in the manifest), and TreeSHAP then gives shap.TreeExplainer's values on the ORIGINAL scikit-learn model, inline and
// on the worker pool. Stale or tampered covers are refused saying what to run.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { readBundle } from "../../src/bundle/bundle.ts";
import { artifactBytes } from "../../src/bundle/types.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import { loadBundle, loadModel } from "../../src/model.ts";
import { openRegistry } from "../../src/registry/open.ts";
import {
	CoverCounter,
	type CoversFile,
	withCovers,
} from "../../src/trees/covers.ts";
import { readTreeModel } from "../../src/trees/read/index.ts";
import { mlship } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { fixtureCopy as copy } from "../helpers/reference-bundle.ts";

/** `mlship bundle init DIR --reference FILE [more]`. */
const init = (dir: string, file: string, ...more: string[]) =>
	mlship(["bundle", "init", dir, "--reference", file, ...more]);

interface Shap {
	base: number[];
	values: number[][][];
}

/** Our explanations of the golden rows equal shap.json (rows × targets × the records' columns) to 1e-4. */
async function assertShap(
	dir: string,
	fixture: string,
	mode: "inline" | "pool",
): Promise<void> {
	const want = JSON.parse(
		readFileSync(`${bundleDir(fixture)}/shap.json`, "utf8"),
	) as Shap;
	const records = golden(fixture).records;
	const names = Object.keys(records[0] as object);
	const m = await loadModel(dir, {
		mode,
		...(mode === "pool" ? { workers: 1 } : {}),
	});
	try {
		const e = await m.explain(records);
		assert.equal(e.method, "tree_path_dependent");
		assert.equal(e.explanations.length, want.values.length);
		e.explanations.forEach((row, r) => {
			// a binary classifier explains its positive class: shap's one column, or its second
			const shift = (want.values[r]?.length ?? 0) - row.length;
			row.forEach((t, k) => {
				const wk = k + shift;
				assert.ok(
					Math.abs(t.base - (want.base[wk] as number)) <= 1e-4,
					`${fixture}: base ${t.base} vs shap ${want.base[wk]}`,
				);
				names.forEach((n, j) => {
					const got = t.values[n] ?? 0;
					const exp = want.values[r]?.[wk]?.[j] as number;
					assert.ok(
						Math.abs(got - exp) <= 1e-4,
						`${fixture} (${mode}): row ${r} target ${k} ${n}: ${got} vs shap ${exp}`,
					);
				});
				const sum = Object.values(t.values).reduce((a, b) => a + b, t.base);
				assert.ok(Math.abs(sum - t.output) <= 1e-6);
			});
		});
	} finally {
		await m.close();
	}
}

const readCovers = (dir: string) =>
	JSON.parse(readFileSync(join(dir, "covers.json"), "utf8")) as CoversFile;

describe("covers from reference data: TreeSHAP for ONNX and sklearn2pmml trees", () => {
	for (const base of [
		"breast-cancer-gbdt-covers",
		"diabetes-rf-covers",
		"iris-tree-covers",
	])
		for (const format of ["onnx", "pmml"]) {
			const fixture = `trees/${base}-${format}`;
			it(`${fixture}: mlship bundle init --reference writes covers.json; explain equals shap on the scikit-learn model`, async () => {
				const dir = copy(fixture);
				const r = await init(
					join(dir, `model.${format}`),
					join(dir, "reference.csv"),
					"--json",
				);
				assert.equal(r.code, 0, r.stderr);
				const out = JSON.parse(r.stdout) as {
					reference: { rows: number; covers: { trees: number; nodes: number } };
				};
				const covers = readCovers(dir);
				assert.equal(out.reference.covers.trees, covers.trees.length);
				assert.equal(covers.rows, out.reference.rows);
				assert.equal(covers.weight, null);
				// the root of every tree counts every reference row
				for (const t of covers.trees) assert.equal(t[0], covers.rows);
				const manifest = parseYaml(
					readFileSync(join(dir, "mlship.yaml"), "utf8"),
				) as { covers: { path: string; sha256: string } };
				assert.equal(manifest.covers.path, "covers.json");
				const b = await readBundle(dir);
				assert.equal(b.manifest.covers?.sha256, manifest.covers.sha256);
				await assertShap(dir, fixture, "inline");
				if (base === "breast-cancer-gbdt-covers")
					await assertShap(dir, fixture, "pool");
			});
		}

	it("without covers the explanation is refused saying what to run; a file with its own covers gets none", async () => {
		const m = await loadModel(bundleDir("trees/diabetes-rf-covers-onnx"), {
			mode: "inline",
		});
		try {
			await assert.rejects(
				m.explain(golden("trees/diabetes-rf-covers-onnx").records.slice(0, 1)),
				(e: { code?: string; message: string }) =>
					e.code === "MLSHIP_UNSUPPORTED_MODEL" &&
					/carries no node weights/.test(e.message) &&
					/mlship bundle init DIR --reference TRAINING\.parquet/.test(
						e.message,
					),
			);
		} finally {
			await m.close();
		}
		// XGBoost JSON carries its covers (hessian sums): bundle init --reference writes only the profile
		const dir = copy("trees/wine-xgb-json");
		const ref = join(dir, "ref.csv");
		const rows = golden("trees/wine-xgb-json").records;
		const names = Object.keys(rows[0] as object);
		writeFileSync(
			ref,
			`${names.join(",")}\n${rows.map((x) => names.map((n) => x[n]).join(",")).join("\n")}\n`,
		);
		const r = await init(dir, ref);
		assert.equal(r.code, 0, r.stderr);
		assert.doesNotMatch(r.stdout, /node covers/);
		assert.equal((await readBundle(dir)).manifest.covers, undefined);
	});

	it("weights: --reference-weight counts a row of weight 2 as two rows", async () => {
		const fixture = "trees/iris-tree-covers-onnx";
		const dir = copy(fixture);
		const lines = readFileSync(join(dir, "reference.csv"), "utf8")
			.trim()
			.split("\n");
		const [head, ...body] = lines as [string, ...string[]];
		// weighted: every third row weighs 2; duplicated: those rows written twice
		writeFileSync(
			join(dir, "weighted.csv"),
			`${head},w\n${body.map((l, i) => `${l},${i % 3 === 0 ? 2 : 1}`).join("\n")}\n`,
		);
		writeFileSync(
			join(dir, "twice.csv"),
			`${head}\n${body.flatMap((l, i) => (i % 3 === 0 ? [l, l] : [l])).join("\n")}\n`,
		);
		let r = await init(
			dir,
			join(dir, "weighted.csv"),
			"--reference-weight",
			"w",
		);
		assert.equal(r.code, 0, r.stderr);
		const weighted = readCovers(dir);
		assert.equal(weighted.weight, "w");
		r = await init(dir, join(dir, "twice.csv"));
		assert.equal(r.code, 0, r.stderr);
		const twice = readCovers(dir);
		assert.deepEqual(weighted.trees, twice.trees);
		assert.equal(weighted.trees[0]?.[0], twice.rows);
		r = await init(dir, join(dir, "twice.csv"), "--reference-weight", "nope");
		assert.notEqual(r.code, 0);
		assert.match(r.stderr, /no weight column 'nope'/);
	});

	it("a hostile or mismatched covers.json is refused naming what is wrong and what to run", async () => {
		const b = await readBundle(bundleDir("trees/iris-tree-covers-onnx"));
		const model = readTreeModel(artifactBytes(b), "model.onnx");
		const sha = b.manifest.artifact.sha256;
		const counter = new CoverCounter(model);
		counter.add(
			encodeRecords(
				planTable(b.manifest),
				golden("trees/iris-tree-covers-onnx").records,
			).tensors,
		);
		const good = counter.file(sha);
		const refused = (v: unknown, pattern: RegExp) =>
			assert.throws(
				() =>
					withCovers(
						model,
						new TextEncoder().encode(
							typeof v === "string" ? v : JSON.stringify(v),
						),
						sha,
						"covers.json",
					),
				(e: { code?: string; message: string }) =>
					e.code === "MLSHIP_INVALID_BUNDLE" &&
					pattern.test(e.message) &&
					/mlship bundle init DIR --reference/.test(e.message),
			);
		refused("{", /covers\.json: not JSON/);
		refused({ ...good, format: "other" }, /not a covers file/);
		refused({ ...good, version: 2 }, /version 2/);
		refused(
			{ ...good, trees: [[1, -1, 0]] },
			/lists of finite numbers ≥ 0, one per node/,
		);
		refused({ ...good, trees: [[1, 2]] }, /number of trees or nodes differs/);
		refused(
			{ ...good, structure: "0".repeat(64) },
			/another reading of the trees/,
		);
		// the counts themselves: every test row reaches the root once
		const laid = withCovers(
			model,
			new TextEncoder().encode(JSON.stringify(good)),
			sha,
			"covers.json",
		);
		assert.equal(
			laid.body.kind === "ensemble" ? laid.body.trees[0]?.cover[0] : 0,
			golden("trees/iris-tree-covers-onnx").records.length,
		);
		assert.throws(
			() =>
				counter.add(
					encodeRecords(
						planTable(b.manifest),
						golden("trees/iris-tree-covers-onnx").records.slice(0, 1),
					).tensors,
					[-1],
				),
			/reference row \d+: weight -1 is not a finite number ≥ 0/,
		);
	});

	it("covers travel with the bundle through the registry: registered, read back verified, explained", async () => {
		const fixture = "trees/iris-tree-covers-pmml";
		const dir = copy(fixture);
		const r = await init(dir, join(dir, "reference.csv"));
		assert.equal(r.code, 0, r.stderr);
		const b = await readBundle(dir);
		const store = await openRegistry("sqlite::memory:");
		try {
			const v = await store.register(b);
			const back = await store.openBundle(v);
			assert.deepEqual(
				back.files.get("covers.json"),
				b.files.get("covers.json"),
			);
			const m = await loadBundle(back, { mode: "inline" });
			try {
				const e = await m.explain(golden(fixture).records.slice(0, 2));
				assert.equal(e.method, "tree_path_dependent");
			} finally {
				await m.close();
			}
		} finally {
			await store.close();
		}
	});

	it("tampered covers are an integrity error; covers of another model file are refused at explain, predict still works", async () => {
		const fixture = "trees/diabetes-rf-covers-pmml";
		const dir = copy(fixture);
		let r = await init(dir, join(dir, "reference.csv"));
		assert.equal(r.code, 0, r.stderr);
		assert.match(
			r.stdout,
			/node covers for TreeSHAP: \d+ nodes of 10 trees → covers\.json/,
		);
		r = await mlship(["bundle", "verify", dir]);
		assert.equal(r.code, 0, r.stderr);
		assert.match(
			r.stdout,
			/covers\.json: node covers of 331 reference rows fit the model's 10 trees/,
		);
		const good = readFileSync(join(dir, "covers.json"), "utf8");
		writeFileSync(join(dir, "covers.json"), good.replace("[331,", "[332,"));
		await assert.rejects(
			readBundle(dir),
			(e: { code?: string; message: string }) =>
				e.code === "MLSHIP_INTEGRITY" && /covers\.json/.test(e.message),
		);
		// covers.json of another artifact, its digest recorded as if it were right
		const c = JSON.parse(good) as CoversFile;
		c.artifact_sha256 = "0".repeat(64);
		const text = `${JSON.stringify(c)}\n`;
		writeFileSync(join(dir, "covers.json"), text);
		const { createHash } = await import("node:crypto");
		const manifest = readFileSync(join(dir, "mlship.yaml"), "utf8").replace(
			/(covers:\n\s+path: covers\.json\n\s+sha256: )[0-9a-f]+/,
			`$1${createHash("sha256").update(text).digest("hex")}`,
		);
		writeFileSync(join(dir, "mlship.yaml"), manifest);
		const m = await loadModel(dir, { mode: "inline" });
		try {
			const rows = golden(fixture).records.slice(0, 2);
			assert.equal((await m.predict(rows)).length, 2);
			await assert.rejects(
				m.explain(rows),
				(e: { code?: string; message: string }) =>
					e.code === "MLSHIP_INVALID_BUNDLE" &&
					/counted on another model file/.test(e.message) &&
					/bundle init DIR --reference/.test(e.message),
			);
		} finally {
			await m.close();
		}
		r = await mlship(["bundle", "verify", dir]);
		assert.notEqual(r.code, 0);
		assert.match(r.stderr, /covers\.json: counted on another model file/);
		assert.match(r.stderr, /mlship bundle init DIR --reference/);
	});
});
