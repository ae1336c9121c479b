// The README's first command works on a fresh directory and its output carries the golden labels.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { mlship, readTable } from "../helpers/files.ts";
import { golden } from "../helpers/fixtures.ts";

it("mlship quickstart registers iris-logreg@production and scores examples/iris.csv", async () => {
	const dir = await mkdtemp(join(tmpdir(), "mlship-quickstart-"));
	try {
		const r = await mlship(["quickstart", "--json"], dir);
		assert.equal(r.code, 0, r.stderr);
		const s = JSON.parse(r.stdout);
		assert.equal(s.registered, "iris-logreg@1");
		assert.equal(s.rows_scored, 38);
		const out = await readTable(join(dir, "iris-predictions.csv"));
		const labels = ["setosa", "versicolor", "virginica"];
		assert.deepEqual(
			out.map((o) => o.label),
			(golden("iris-logreg").expected.label as number[]).map((k) => labels[k]),
		);
		const list = await mlship(["models", "list", "--json"], dir);
		assert.equal(list.code, 0, list.stderr);
		assert.deepEqual(JSON.parse(list.stdout)[0].aliases, ["production"]);
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
});
