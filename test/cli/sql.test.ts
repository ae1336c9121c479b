// `mlship sql` as a real process: models from the registry as SQL functions over a file, golden outputs, exit codes.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mlship, readTable, writeTable } from "../helpers/files.ts";
import { assertOutputMatches, bundleDir, golden } from "../helpers/fixtures.ts";

let dir: string;
let registry: string;
let input: string;
const g = golden("iris-logreg");
const FEATURES = "sepal_length, sepal_width, petal_length, petal_width";
const LABELS = ["setosa", "versicolor", "virginica"];

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-sql-cli-"));
	registry = `sqlite:${join(dir, "registry.db")}`;
	input = join(dir, "iris.csv");
	await writeTable(
		input,
		g.records.map((r, k) => ({ id: k, ...r })),
	);
	const r = await mlship([
		"models",
		"register",
		bundleDir("iris-logreg"),
		"--alias",
		"production",
		"--registry",
		registry,
	]);
	assert.equal(r.code, 0, r.stderr);
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

describe("mlship sql", () => {
	it("scores a file with a registered model and prints JSON rows", async () => {
		const r = await mlship([
			"sql",
			`SELECT id, predict_label('iris-logreg@production', ${FEATURES}) AS species, predict_proba('iris-logreg@production', ${FEATURES}) AS p FROM '${input}' ORDER BY id`,
			"--registry",
			registry,
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr);
		const rows = JSON.parse(r.stdout) as {
			id: number;
			species: string;
			p: number[];
		}[];
		assert.deepEqual(
			rows.map((x) => x.species),
			(g.expected.label as number[]).map((k) => LABELS[k]),
		);
		assertOutputMatches(
			"iris-logreg",
			"probabilities",
			rows.flatMap((x) => x.p),
			g.expected.probabilities as number[][],
		);
	});

	it("writes the result to a file with --output", async () => {
		const out = join(dir, "scored.parquet");
		const r = await mlship([
			"sql",
			`SELECT id, predict('iris-logreg@production', ${FEATURES}) AS label FROM '${input}' ORDER BY id`,
			"--registry",
			registry,
			"-o",
			out,
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr);
		assert.equal(JSON.parse(r.stdout).rows, g.records.length);
		const rows = await readTable(out);
		assert.deepEqual(
			rows.map((x) => Number(x.label)),
			g.expected.label,
		);
	});

	it("prints a table for people, with NULL for a NULL feature", async () => {
		const r = await mlship([
			"sql",
			`SELECT predict_label('iris-logreg@production', NULL, 1, 2, 3) AS species`,
			"--registry",
			registry,
		]);
		assert.equal(r.code, 0, r.stderr);
		assert.match(r.stdout, /species\n-+\nNULL\n\(1 row\)/);
	});

	it("exits 3 for an unknown model and 2 for a bad value, naming the feature", async () => {
		const missing = await mlship([
			"sql",
			"SELECT predict('nope@production', 1)",
			"--registry",
			registry,
		]);
		assert.equal(missing.code, 3, missing.stderr);
		assert.match(missing.stderr, /nope/);
		const bad = await mlship([
			"sql",
			`SELECT predict('iris-logreg@production', 'x', 1, 2, 3)`,
			"--registry",
			registry,
			"--json",
		]);
		assert.equal(bad.code, 2);
		assert.match(
			JSON.parse(bad.stdout).error,
			/feature 'sepal_length' \(argument 2\)/,
		);
	});

	it("has --help with an example", async () => {
		const r = await mlship(["sql", "--help"]);
		assert.equal(r.code, 0);
		assert.match(r.stdout, /Examples:\n\s+\$ mlship sql "SELECT/);
	});
});
