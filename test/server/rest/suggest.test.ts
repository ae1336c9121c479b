// REST errors name the nearest model and record key for a typo (from the data plane and the records codec).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { golden } from "../../helpers/fixtures.ts";
import { type RestHarness, startRest } from "../../helpers/server.ts";

let s: RestHarness;
before(async () => {
	s = await startRest({ "iris-logreg": "iris", "wine-xgb": "wine" });
});
after(() => s.close());

const post = (path: string, body: unknown) =>
	fetch(`${s.url}${path}`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify(body),
	});

describe("did you mean", () => {
	const [first] = golden("iris-logreg").records;
	it("an unknown model is a 404 naming the nearest served model and listing them", async () => {
		const r = await post("/v2/models/irsi/predict", { instances: [first] });
		assert.equal(r.status, 404);
		assert.equal(
			((await r.json()) as { error: string }).error,
			"unknown model 'irsi'; did you mean 'iris'? (serving: 'iris', 'wine')",
		);
		const far = await fetch(`${s.url}/v2/models/churn`);
		assert.equal(far.status, 404);
		assert.equal(
			((await far.json()) as { error: string }).error,
			"unknown model 'churn' (serving: 'iris', 'wine')",
		);
	});

	it("a record key that is a typo of a missing feature is named", async () => {
		const { sepal_length, ...rest } = first as Record<string, unknown>;
		const r = await post("/v2/models/iris/predict", {
			instances: [{ ...rest, sepal_lenght: sepal_length }],
		});
		assert.equal(r.status, 400);
		assert.match(
			((await r.json()) as { error: string }).error,
			/row 1, column 'sepal_length': missing feature 'sepal_length'; did you mean 'sepal_lenght'\?/,
		);
		// another feature's key is never offered
		const { petal_length: _, ...fewer } = first as Record<string, unknown>;
		const r2 = await post("/v2/models/iris/predict", { instances: [fewer] });
		assert.doesNotMatch(
			((await r2.json()) as { error: string }).error,
			/did you mean/,
		);
	});

	it("a column name that is a typo is named (columns input)", async () => {
		const cols: Record<string, unknown[]> = {};
		for (const [k, v] of Object.entries(first as Record<string, unknown>))
			cols[k === "petal_width" ? "petal_widht" : k] = [v];
		const r = await post("/v2/models/iris/predict", { columns: cols });
		assert.equal(r.status, 400);
		assert.match(
			((await r.json()) as { error: string }).error,
			/missing feature column 'petal_width'; did you mean 'petal_widht'\? \(the model needs/,
		);
	});
});
