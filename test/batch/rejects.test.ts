// Many bad rows from DuckDB file sources: every one reported with its row, values and (CSV) file and line, in time linear in the rows.
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { DuckDBSource } from "../../src/batch/sources/duckdb.ts";
import { rowsChunk } from "../../src/batch/sources/rows.ts";
import { mlship } from "../helpers/files.ts";
import { bundleDir } from "../helpers/fixtures.ts";

const MODEL = bundleDir("iris-logreg");
let dir: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-rejects-test-"));
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

async function duck(sql: string): Promise<unknown[][]> {
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		return (await conn.runAndReadAll(sql)).getRows();
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

describe("rejected rows at scale", () => {
	it("a chunk builds a column's values once, however often the scoring loop asks (once per bad row)", async () => {
		const input = join(dir, "small.parquet");
		await duck(
			`COPY (SELECT i AS id, i * 2 AS x FROM range(5000) t(i)) TO '${input}' (FORMAT parquet)`,
		);
		const source = DuckDBSource.file(input, "parquet");
		try {
			let first = true;
			for await (const chunk of source.chunks(["id", "x"])) {
				assert.equal(chunk.values(1), chunk.values(1));
				if (first) assert.equal(chunk.values(1)[3], 6n);
				first = false;
			}
		} finally {
			await source.close();
		}
		const rows = rowsChunk([{ a: 1 }, { a: 2 }], ["a"]);
		assert.equal(rows.values(0), rows.values(0));
		assert.deepEqual(rows.values(0), [1, 2]);
	});

	it("1M rows, every other one bad: 500,000 scored and 500,000 reported with row number and values", {
		timeout: 600_000,
	}, async (t) => {
		const N = 1_000_000;
		const input = join(dir, "half-bad.parquet");
		// Even ids have no petal_width (NULL): the model cannot score them.
		await duck(
			`COPY (SELECT i AS id, 5.0 + (i % 7) / 10 AS sepal_length, 3.0 AS sepal_width, 1.5 AS petal_length, CASE WHEN i % 2 = 0 THEN NULL ELSE 0.2 END AS petal_width FROM range(${N}) t(i)) TO '${input}' (FORMAT parquet)`,
		);
		const output = join(dir, "half-bad.out.parquet");
		const started = performance.now();
		const r = await mlship([
			"predict",
			"-m",
			MODEL,
			"-i",
			input,
			"-o",
			output,
			"--keep",
			"id",
			"--on-error",
			"skip",
			"--workers",
			"1",
			"--json",
		]);
		t.diagnostic(
			`predict with ${N / 2} bad rows: ${((performance.now() - started) / 1000).toFixed(1)} s`,
		);
		assert.equal(r.code, 0, r.stderr);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_in, N);
		assert.equal(s.rows_scored, N / 2);
		assert.equal(s.rows_rejected, N / 2);
		assert.deepEqual(
			await duck(
				`SELECT count(*), sum(id % 2), min(id), max(id) FROM '${output}'`,
			),
			[[BigInt(N / 2), BigInt(N / 2), 1n, BigInt(N - 1)]],
		);
		// Every rejected row, in order: row k+1 holds id k, its values, and the column at fault.
		let k = 0;
		const lines = createInterface({
			input: createReadStream(s.errors_file),
		});
		for await (const line of lines) {
			const e = JSON.parse(line);
			assert.equal(e.row, 2 * k + 1);
			assert.equal(e.column, "petal_width");
			assert.equal(e.values.id, 2 * k);
			assert.equal(e.values.petal_width, null);
			assert.equal(e.values.sepal_length, 5 + ((2 * k) % 7) / 10);
			k++;
		}
		assert.equal(k, N / 2);
	});
});

describe("a glob of CSV files", () => {
	it("reports each bad row and refused line with its own file and line, not a count run on across files", async () => {
		const d = join(dir, "csvs");
		await mkdir(d);
		const header = "id,sepal_length,sepal_width,petal_length,petal_width";
		const row = (id: number, pw = "0.2") => `${id},5.1,3.5,1.4,${pw}`;
		// a.csv: line 3 has a field too many. b.csv: line 3 has a field too few, line 5 a bad value.
		await writeFile(
			join(d, "a.csv"),
			[header, row(1), `${row(2)},9`, row(3), row(4), ""].join("\n"),
		);
		await writeFile(
			join(d, "b.csv"),
			[header, row(5), "6,5.1", row(7), row(8, "abc"), row(9), ""].join("\n"),
		);
		const run = (...extra: string[]) =>
			mlship([
				"batch",
				"run",
				"-m",
				MODEL,
				"-s",
				join(d, "*.csv"),
				"-o",
				join(dir, "glob.parquet"),
				"--keep",
				"id",
				"--json",
				...extra,
			]);
		const skip = await run("--on-error", "skip");
		assert.equal(skip.code, 0, skip.stderr + skip.stdout);
		const s = JSON.parse(skip.stdout);
		assert.equal(s.rows_in, 9);
		assert.equal(s.rows_rejected, 3);
		const errors = (await readFile(s.errors, "utf8"))
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		assert.deepEqual(
			errors.map((e) => [e.file, e.line, e.row ?? null, e.column ?? null]),
			[
				[join(d, "a.csv"), 3, null, null],
				[join(d, "b.csv"), 3, null, null],
				[join(d, "b.csv"), 5, 6, "petal_width"],
			],
		);
		const fail = await run();
		assert.equal(fail.code, 2);
		assert.match(
			JSON.parse(fail.stdout).error,
			new RegExp(
				`row 6, column 'petal_width': .*got "abc" \\(${join(d, "b.csv")} line 5\\)`,
			),
		);
	});
});
