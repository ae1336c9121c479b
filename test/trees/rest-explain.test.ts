// REST POST /v2/models/{m}/explain: records in; per row and target, shap's contributions and the top-k out;
// bad top is a 400, a model that cannot be explained a 422 saying why.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { type RestHarness, startRest } from "../helpers/server.ts";

const F = "trees/diabetes-xgb-cat";

describe("POST /v2/models/{m}/explain", () => {
	let srv: RestHarness;
	before(async () => {
		srv = await startRest({ [F]: "diabetes", "wine-xgb": "wine-onnx" });
	});
	after(() => srv.close());
	const post = (path: string, body: unknown) =>
		fetch(`${srv.url}${path}`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
		});

	it("gives shap's values for every column and the top-k, per row", async () => {
		const rows = golden(F).records.slice(0, 3);
		const res = await post("/v2/models/diabetes/explain", {
			instances: rows,
			top: 3,
		});
		assert.equal(res.status, 200);
		const body = (await res.json()) as {
			model_name: string;
			method: string;
			explanations: {
				target: string;
				base: number;
				output: number;
				values: Record<string, number>;
				top: { feature: string; value: number }[];
			}[][];
		};
		assert.equal(body.model_name, "diabetes");
		assert.equal(body.method, "tree_path_dependent");
		const want = JSON.parse(
			readFileSync(`${bundleDir(F)}/shap.json`, "utf8"),
		) as { base: number[]; values: number[][][] };
		const names = Object.keys(rows[0] as object);
		body.explanations.forEach((row, r) => {
			const e = row[0];
			assert.ok(e);
			assert.equal(e.target, "variable");
			assert.ok(Math.abs(e.base - (want.base[0] as number)) <= 1e-4);
			names.forEach((n, j) => {
				assert.ok(
					Math.abs(
						(e.values[n] as number) - (want.values[r]?.[0]?.[j] as number),
					) <= 1e-4,
					`${r}/${n}`,
				);
			});
			assert.equal(e.top.length, 3);
			assert.equal(
				(golden(F).expected.variable as number[])[r] !== undefined,
				true,
			);
			assert.ok(
				Math.abs(
					e.output - ((golden(F).expected.variable as number[])[r] as number),
				) <= 1e-3,
			);
		});
	});

	it("a bad top is a 400; a model on the onnx runtime is a 422 that names the runtime to use", async () => {
		const bad = await post("/v2/models/diabetes/explain", {
			instances: golden(F).records.slice(0, 1),
			top: 0,
		});
		assert.equal(bad.status, 400);
		assert.match(
			JSON.stringify(await bad.json()),
			/top must be an integer from 1 to 1000/,
		);
		const onnx = await post("/v2/models/wine-onnx/explain", {
			instances: golden("wine-xgb").records.slice(0, 1),
		});
		assert.equal(onnx.status, 422);
		assert.match(JSON.stringify(await onnx.json()), /runtime: trees/);
	});
});
