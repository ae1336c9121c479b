// `mlship predict` as a real process: golden outputs for every fixture and format, and bad files reported by row.
import assert from "node:assert/strict";
import {
	copyFile,
	mkdir,
	mkdtemp,
	readFile,
	rm,
	writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mlship, readTable, toCsv, writeTable } from "../helpers/files.ts";
import {
	assertOutputMatches,
	bundleDir,
	FIXTURES,
	golden,
} from "../helpers/fixtures.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-predict-test-"));
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

const FORMATS = ["parquet", "csv", "jsonl"] as const;

describe("mlship predict matches the original library", () => {
	FIXTURES.forEach((name, i) => {
		// Each fixture goes through a different input/output format pair; all pairs are covered.
		const inFmt = FORMATS[i % 3] as string;
		const outFmt = FORMATS[(i + 1) % 3] as string;
		it(`${name}: ${inFmt} → ${outFmt}`, async () => {
			const g = golden(name);
			const rows = g.records.map((r, k) => ({ row_id: k, ...r }));
			const input = join(dir, `${name}.in.${inFmt}`);
			const output = join(dir, `${name}.out.${outFmt}`);
			await writeTable(input, rows);
			const r = await mlship([
				"predict",
				"-m",
				bundleDir(name),
				"-i",
				input,
				"-o",
				output,
				"--keep",
				"row_id",
				"--json",
			]);
			assert.equal(r.code, 0, r.stderr);
			const summary = JSON.parse(r.stdout);
			assert.equal(summary.rows_in, rows.length);
			assert.equal(summary.rows_scored, rows.length);
			assert.equal(summary.rows_rejected, 0);
			const out = await readTable(output);
			assert.equal(out.length, rows.length);
			assert.deepEqual(
				out.map((o) => Number(o.row_id)),
				rows.map((x) => x.row_id),
				"row order and ids kept",
			);
			const manifest = (
				await readFile(join(bundleDir(name), "mlship.yaml"), "utf8")
			).match(/^labels: \[(.*)\]$/m);
			const labels = manifest?.[1]
				?.split(",")
				.map((s) => s.trim().replace(/^"|"$/g, ""));
			for (const [outName, want] of Object.entries(g.expected)) {
				if (outName === "label") {
					assert.ok(labels, "classifiers have labels");
					assert.deepEqual(
						out.map((o) => String(o.label)),
						(want as number[]).map((k) => labels[k]),
					);
					continue;
				}
				const width = Array.isArray(want[0]) ? (want[0] as number[]).length : 1;
				const cols =
					width === 1
						? [outName]
						: (labels ?? []).map((l) => `${outName}_${l}`);
				const got = out.flatMap((o) => cols.map((c) => Number(o[c])));
				assertOutputMatches(name, outName, got, want);
			}
		});
	});
});

describe("mlship predict reports bad rows with their row number", () => {
	const iris = () => golden("iris-logreg").records.slice(0, 6);
	const predictIris = (input: string, output: string, ...extra: string[]) =>
		mlship([
			"predict",
			"-m",
			bundleDir("iris-logreg"),
			"-i",
			input,
			"-o",
			output,
			...extra,
		]);

	it("a ragged CSV row fails the run with its line number and writes no output", async () => {
		const csv = toCsv(iris()).split("\n");
		csv[3] = "5.0,3.4,1.5"; // data row 3 = line 4 loses a column
		const input = join(dir, "ragged.csv");
		await writeFile(input, csv.join("\n"));
		const output = join(dir, "ragged.out.csv");
		const r = await predictIris(input, output);
		assert.equal(r.code, 2);
		assert.match(
			r.stderr,
			/ragged\.csv: line 4: Expected Number of Columns: 4 Found: 3/,
		);
		await assert.rejects(readFile(output), /ENOENT/);
	});

	it("--on-error skip: ragged row and wrong-typed value land in the error file, the rest is scored", async () => {
		const rows = iris();
		const csv = toCsv(rows).split("\n");
		csv[2] = "4.9,3.0,1.4,0.2,9.9"; // line 3: one column too many
		csv[5] = csv[5]?.replace(/^[^,]+/, "abc") ?? ""; // line 6: "abc" for a float
		const input = join(dir, "mixed.csv");
		await writeFile(input, csv.join("\n"));
		const output = join(dir, "mixed.out.parquet");
		const r = await predictIris(input, output, "--on-error", "skip", "--json");
		assert.equal(r.code, 0, r.stderr);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_in, 6);
		assert.equal(s.rows_scored, 4);
		assert.equal(s.rows_rejected, 2);
		const errors = (await readFile(s.errors_file, "utf8"))
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		assert.equal(errors.length, 2);
		const byLine = Object.fromEntries(errors.map((e) => [e.line, e]));
		assert.match(byLine[3].error, /Expected Number of Columns: 4 Found: 5/);
		assert.equal(byLine[6].column, "sepal_length");
		assert.match(byLine[6].error, /expected a number \(FP32\), got "abc"/);
		assert.equal((await readTable(output)).length, 4);
	});

	it("'abc' for a float fails the run by default, naming row, column and line", async () => {
		const rows = iris();
		(rows[4] as Record<string, unknown>).petal_width = "abc";
		const input = join(dir, "abc.csv");
		await writeTable(input, rows);
		const r = await predictIris(input, join(dir, "abc.out.csv"));
		assert.equal(r.code, 2);
		assert.match(
			r.stderr,
			/row 5, column 'petal_width': expected a number \(FP32\), got "abc" \(line 6\)/,
		);
	});

	it("a missing feature column is named, with what the model reads", async () => {
		const rows = iris().map(({ petal_width: _, ...rest }) => rest);
		const input = join(dir, "missing.parquet");
		await writeTable(input, rows);
		const r = await predictIris(input, join(dir, "m.out.csv"), "--json");
		assert.equal(r.code, 2);
		const e = JSON.parse(r.stdout);
		assert.equal(e.code, "MLSHIP_INVALID_INPUT");
		assert.match(
			e.error,
			/has no column 'petal_width' \(the model reads: sepal_length, sepal_width, petal_length, petal_width/,
		);
	});

	it("a null in a JSON-lines file is refused with its row number", async () => {
		const input = join(dir, "nan.jsonl");
		await writeFile(
			input,
			`${iris()
				.map((r, k) =>
					JSON.stringify(k === 2 ? { ...r, sepal_width: null } : r),
				)
				.join("\n")}\n`,
		);
		const r = await predictIris(input, join(dir, "nan.out.csv"));
		assert.equal(r.code, 2);
		assert.match(r.stderr, /row 3, column 'sepal_width': value is missing/);
	});

	it("an empty file is an error, not an empty success", async () => {
		const input = join(dir, "empty.csv");
		await writeFile(
			input,
			"sepal_length,sepal_width,petal_length,petal_width\n",
		);
		const r = await predictIris(input, join(dir, "e.out.csv"));
		assert.equal(r.code, 2);
		assert.match(r.stderr, /has no rows to predict/);
	});

	it("an unknown model exits 3", async () => {
		const r = await mlship([
			"predict",
			"-m",
			"nope@production",
			"-i",
			"x.csv",
			"-o",
			"y.csv",
			"--registry",
			`sqlite:${join(dir, "r.db")}`,
		]);
		assert.equal(r.code, 3);
		assert.match(r.stderr, /nope/);
	});

	it("--help shows an example", async () => {
		const r = await mlship(["predict", "--help"]);
		assert.equal(r.code, 0);
		assert.match(r.stdout, /Examples:\n\s+\$ mlship predict/);
	});
});

describe("a bare .onnx and a file with named columns", () => {
	it("the error says to run bundle init --features-from the file, and doing so makes the run work", async () => {
		const g = golden("iris-logreg");
		const rows = join(dir, "named.csv");
		await writeTable(
			rows,
			g.records.map((r, k) => ({ id: k, ...r })),
		);
		const bare = join(dir, "bare-iris");
		await mkdir(bare);
		await copyFile(
			join(bundleDir("iris-logreg"), "model.onnx"),
			join(bare, "model.onnx"),
		);
		const out = join(dir, "bare.out.csv");
		const r = await mlship([
			"predict",
			"-m",
			join(bare, "model.onnx"),
			"-i",
			rows,
			"-o",
			out,
		]);
		assert.equal(r.code, 2, r.stderr);
		assert.match(r.stderr, /has no columns 'float_input_0', /);
		assert.match(
			r.stderr,
			new RegExp(
				`run 'mlship bundle init model\\.onnx --features-from ${rows.replaceAll(".", "\\.")}' \\(add --exclude for columns that are not features`,
			),
		);
		// Following the advice: name the features from the file, then score with the bundle.
		const init = await mlship([
			"bundle",
			"init",
			join(bare, "model.onnx"),
			"--features-from",
			rows,
			"--exclude",
			"id",
		]);
		assert.equal(init.code, 0, init.stderr);
		const ok = await mlship([
			"predict",
			"-m",
			bare,
			"-i",
			rows,
			"-o",
			out,
			"--keep",
			"id",
		]);
		assert.equal(ok.code, 0, ok.stderr);
		assert.equal((await readTable(out)).length, g.records.length);
	});
});

describe("mlship predict on files of many chunks", () => {
	it("scores every row of a 10,350-row Parquet file in order, and reports a bad row deep in the file", async () => {
		const g = golden("digits-mlp");
		const rows: Record<string, unknown>[] = [];
		for (let k = 0; k < 23; k++)
			for (const r of g.records) rows.push({ row_id: rows.length, ...r });
		(rows[9000] as Record<string, unknown>).pixel_3_4 = null;
		const input = join(dir, "big.parquet");
		await writeTable(input, rows);
		const output = join(dir, "big.out.parquet");
		const r = await mlship([
			"predict",
			"-m",
			bundleDir("digits-mlp"),
			"-i",
			input,
			"-o",
			output,
			"--keep",
			"row_id",
			"--chunk-rows",
			"2048",
			"--on-error",
			"skip",
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_in, rows.length);
		assert.equal(s.rows_scored, rows.length - 1);
		const errors = (await readFile(s.errors_file, "utf8"))
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		assert.deepEqual(
			errors.map((e) => [e.row, e.column, e.values.row_id]),
			[[9001, "pixel_3_4", 9000]],
		);
		const out = await readTable(output);
		assert.equal(out.length, rows.length - 1);
		const want = g.expected.label as number[];
		out.forEach((o, k) => {
			const id = k < 9000 ? k : k + 1;
			assert.equal(Number(o.row_id), id);
			assert.equal(String(o.label), String(want[id % g.records.length]));
		});
	});
});
