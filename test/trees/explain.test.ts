// TreeSHAP on the tree representation equals shap.TreeExplainer's path-dependent values (golden shap.json) to 1e-4,
// and base + contributions add up to the raw margin to 1e-4, for every native tree fixture.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { batchRows, featureMatrix, rawScores } from "../../src/trees/eval.ts";
import { explainTree } from "../../src/trees/explain.ts";
import { bundleDir, TREE_FIXTURES } from "../helpers/fixtures.ts";
import { treeFixture } from "../helpers/trees.ts";

interface ShapGolden {
	base: number[];
	values: number[][][];
}

const TOL = 1e-4;
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
			const { model, tensors } = await treeFixture(f);
			const e = explainTree(model, tensors);
			const want = JSON.parse(
				readFileSync(`${bundleDir(f)}/shap.json`, "utf8"),
			) as ShapGolden;
			const T = e.targets;
			const nf = e.features.length;
			assert.equal(e.rows, want.values.length);
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
						const exp = want.values[r]?.[t]?.[j] as number;
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
