// `mlship batch run --challenger`: one pass scores every row with the champion and the challenger, each with its
// version, checked against both models' golden outputs; a challenger that reads other features is refused.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { mlship, readTable, writeTable } from "../helpers/files.ts";
import { assertOutputMatches, bundleDir, golden } from "../helpers/fixtures.ts";

const lgbm = golden("diabetes-lgbm");
const rf = golden("diabetes-rf");
const rows = lgbm.records.map((r, k) => ({ id: k + 1, ...r }));
let dir: string;
let registry: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-challenger-"));
	registry = `sqlite:${join(dir, "registry.db")}`;
	for (const [fixture, alias] of [
		["diabetes-lgbm", "production"],
		["diabetes-rf", "challenger"],
	] as const) {
		const r = await mlship([
			"models",
			"register",
			bundleDir(fixture),
			"--name",
			"diabetes",
			"--alias",
			alias,
			"--registry",
			registry,
		]);
		assert.equal(r.code, 0, r.stderr);
	}
	const iris = await mlship([
		"models",
		"register",
		bundleDir("iris-logreg"),
		"--registry",
		registry,
	]);
	assert.equal(iris.code, 0, iris.stderr);
	await writeTable(join(dir, "in.parquet"), rows);
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

it("writes both predictions with both versions in one pass (the documented column names)", async () => {
	const out = join(dir, "both.parquet");
	const r = await mlship([
		"batch",
		"run",
		"-m",
		"diabetes@production",
		"--challenger",
		"diabetes@2",
		"-s",
		join(dir, "in.parquet"),
		"-o",
		out,
		"--keep",
		"id",
		"--chunk-rows",
		"40",
		"--registry",
		registry,
		"--json",
	]);
	assert.equal(r.code, 0, r.stderr);
	const summary = JSON.parse(r.stdout) as Record<string, unknown>;
	assert.equal(summary.model_version, 1);
	assert.equal(summary.challenger, "diabetes");
	assert.equal(summary.challenger_version, 2);
	assert.equal(summary.rows_scored, rows.length);
	const got = await readTable(out);
	assert.deepEqual(Object.keys(got[0] as object), [
		"id",
		"model",
		"model_version",
		"challenger_model",
		"challenger_model_version",
		"variable",
		"challenger_variable",
	]);
	assert.deepEqual(
		got.map((x) => Number(x.id)),
		rows.map((x) => x.id),
	);
	for (const x of got) {
		assert.equal(Number(x.model_version), 1);
		assert.equal(Number(x.challenger_model_version), 2);
	}
	assertOutputMatches(
		"diabetes-lgbm",
		"variable",
		got.map((x) => x.variable),
		lgbm.expected.variable as number[],
	);
	assertOutputMatches(
		"diabetes-rf",
		"challenger_variable",
		got.map((x) => x.challenger_variable),
		rf.expected.variable as number[],
	);
});

it("refuses a challenger that reads other features, and --challenger with --resume; nothing written", async () => {
	const out = join(dir, "never.parquet");
	const r = await mlship([
		"batch",
		"run",
		"-m",
		"diabetes@production",
		"--challenger",
		"iris-logreg",
		"-s",
		join(dir, "in.parquet"),
		"-o",
		out,
		"--registry",
		registry,
	]);
	assert.equal(r.code, 2, r.stderr);
	assert.match(r.stderr, /the challenger iris-logreg@1 reads other features/);
	const resume = await mlship([
		"batch",
		"run",
		"-m",
		"diabetes@production",
		"--challenger",
		"diabetes@2",
		"--resume",
		"-s",
		join(dir, "in.parquet"),
		"-o",
		out,
		"--registry",
		registry,
	]);
	assert.equal(resume.code, 2, resume.stderr);
	assert.match(resume.stderr, /cannot resume from a checkpoint/);
	await assert.rejects(readTable(out));
});
