// TreeSHAP on the tree representation equals shap.TreeExplainer's path-dependent values (golden shap.json) to 1e-4,
// and base + contributions add up to the raw margin to 1e-4, for every native tree fixture. Fixtures whose file
// carries no node counts (ONNX, sklearn2pmml) have reference.csv, the training rows: their covers are counted from it,
// and shap.json is shap on the original scikit-learn model (whose covers are those rows' counts).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { artifactBytes } from "../../src/bundle/types.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import { loadTreeModel, nameFeatures } from "../../src/runtime/trees/load.ts";
import {
	CoverCounter,
	lacksCovers,
	withCovers,
} from "../../src/trees/covers.ts";
import { batchRows, featureMatrix, rawScores } from "../../src/trees/eval.ts";
import { explainTree } from "../../src/trees/explain.ts";
import { bundleDir, golden, TREE_FIXTURES } from "../helpers/fixtures.ts";

interface ShapGolden {
	base: number[];
	values: number[][][];
}

const TOL = 1e-4;

/** The rows of a numeric CSV file (as pandas writes it: a header, then one row per line). */
export function readCsv(path: string): Record<string, number>[] {
	const [head, ...lines] = readFileSync(path, "utf8").trim().split("\n");
	const cols = (head as string).split(",");
	return lines.map((l) =>
		Object.fromEntries(l.split(",").map((v, j) => [cols[j], Number(v)])),
	);
}
const explained = TREE_FIXTURES.filter((f) =>
	existsSync(`${bundleDir(f)}/shap.json`),
);

describe("TreeSHAP matches shap.TreeExplainer (tree_path_dependent)", () => {
	it("covers the native tree fixtures", () => {
		assert.ok(
			explained.length >= 5,
			`fixtures with shap.json: ${explained.join(", ")}`,
		);
	});
	for (const f of explained)
		it(f, async () => {
			const b = await readBundle(bundleDir(f));
			let model = nameFeatures(
				loadTreeModel(artifactBytes(b), f, b.manifest.signature),
				b.manifest,
			);
			const plan = planTable(b.manifest);
			const reference = `${bundleDir(f)}/reference.csv`;
			if (existsSync(reference)) {
				assert.ok(lacksCovers(model), `${f}: the file carries covers`);
				const counter = new CoverCounter(model);
				counter.add(encodeRecords(plan, readCsv(reference)).tensors);
				const sha = b.manifest.artifact.sha256;
				model = withCovers(
					model,
					new TextEncoder().encode(JSON.stringify(counter.file(sha))),
					sha,
					f,
				);
			}
			const { tensors } = encodeRecords(plan, golden(f).records);
			const e = explainTree(model, tensors);
			const want = JSON.parse(
				readFileSync(`${bundleDir(f)}/shap.json`, "utf8"),
			) as ShapGolden;
			const T = e.targets;
			const nf = e.features.length;
			assert.equal(e.rows, want.values.length);
			// shap.json's columns are the golden records' (sklearn2pmml leaves out fields no tree splits on: 0 there)
			const columns = Object.keys(golden(f).records[0] as object);
			const col = e.features.map((n) => columns.indexOf(n));
			assert.ok(
				col.every((k) => k >= 0),
				`${f}: features ${e.features.join(", ")}`,
			);
			for (const [k, name] of columns.entries())
				if (!e.features.includes(name))
					for (const row of want.values)
						for (const v of row) assert.equal(v[k], 0, `${f}: ${name}`);
			for (let t = 0; t < T; t++)
				assert.ok(
					Math.abs((e.base[t] as number) - (want.base[t] as number)) <= TOL,
					`${f}: base[${t}] ${e.base[t]} vs shap ${want.base[t]}`,
				);
			const rows = batchRows(tensors);
			const raw = rawScores(model, featureMatrix(model, tensors), rows);
			for (let r = 0; r < rows; r++)
				for (let t = 0; t < T; t++) {
					let sum = e.base[t] as number;
					for (let j = 0; j < nf; j++) {
						const got = e.values[(r * T + t) * nf + j] as number;
						const exp = want.values[r]?.[t]?.[col[j] as number] as number;
						assert.ok(
							Math.abs(got - exp) <= TOL,
							`${f}: row ${r} target ${t} feature ${j}: ${got} vs shap ${exp}`,
						);
						sum += got;
					}
					const margin = raw[r * T + t] as number;
					assert.ok(
						Math.abs(sum - margin) <= TOL,
						`${f}: row ${r} target ${t}: base + Σφ = ${sum}, margin ${margin}`,
					);
				}
		});
});
