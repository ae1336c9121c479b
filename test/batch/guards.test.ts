// Jobs that would destroy data or silently do something else are refused before any work: an output that is the
// input, a URI scheme mlship does not read, job fields that would be ignored.
import assert from "node:assert/strict";
import {
	mkdir,
	mkdtemp,
	readFile,
	rm,
	symlink,
	writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseJob, readJob } from "../../src/batch/job.ts";
import { parseLocation } from "../../src/batch/uri.ts";
import { mlship, writeTable } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const MODEL = bundleDir("iris-logreg");
const g = golden("iris-logreg");
let dir: string;
let input: string;
let original: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-guards-test-"));
	input = join(dir, "rows.csv");
	await writeTable(
		input,
		g.records.map((r, k) => ({ id: k, ...r })),
	);
	original = await readFile(input, "utf8");
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

/** The input file is byte for byte what it was. */
async function inputKept(): Promise<void> {
	assert.equal(await readFile(input, "utf8"), original);
}

describe("an output that is the input is refused (exit 2), and the input is kept", () => {
	it("predict -i x.csv -o x.csv, also through a symlinked directory and as the --errors file", async () => {
		const link = join(dir, "link");
		await symlink(dir, link);
		for (const extra of [
			["-o", input],
			["-o", join(link, "rows.csv")],
			["-o", join(dir, "out.csv"), "--errors", join(link, "rows.csv")],
		]) {
			const r = await mlship(["predict", "-m", MODEL, "-i", input, ...extra]);
			assert.equal(r.code, 2, r.stderr);
			assert.match(
				r.stderr,
				/is the input file.*would overwrite the rows being scored/,
			);
			await inputKept();
		}
		const same = await mlship([
			"predict",
			"-m",
			MODEL,
			"-i",
			input,
			"-o",
			join(dir, "p.csv"),
			"--errors",
			join(dir, "p.csv"),
		]);
		assert.equal(same.code, 2, same.stderr);
		assert.match(same.stderr, /--errors '.*p\.csv' is also the --output file/);
	});

	it("batch run: a file sink or errors file that is the source, or matches the source glob", async () => {
		await mkdir(join(dir, "parts"));
		const part = join(dir, "parts", "a.csv");
		await writeTable(part, g.records.slice(0, 5));
		for (const [source, extra, want] of [
			[input, ["-o", input], /--sink '.*rows\.csv' is the input file/],
			[
				input,
				["-o", join(dir, "o.parquet"), "--errors", input],
				/--errors '.*rows\.csv' is the input file/,
			],
			[
				join(dir, "parts", "*.csv"),
				["-o", join(dir, "parts", "out.csv")],
				/--sink '.*out\.csv' matches the input glob/,
			],
		] as const) {
			const r = await mlship([
				"batch",
				"run",
				"-m",
				MODEL,
				"-s",
				source,
				...extra,
				"--json",
			]);
			assert.equal(r.code, 2, r.stderr + r.stdout);
			assert.match(JSON.parse(r.stdout).error, want);
			await inputKept();
		}
		assert.equal(await readFile(part, "utf8").then((t) => t.length > 0), true);
	});
});

describe("URIs with a scheme mlship does not read", () => {
	it("are refused as a sink, source or errors sink, listing the supported ones, never taken as a file path", async () => {
		assert.throws(
			() => parseLocation("mysql://u@h/db?table=x", "sink"),
			/sink 'mysql:\/\/u@h\/db\?table=x': unknown scheme 'mysql:'; a sink is a file path \(\.parquet \.csv \.jsonl\), sqlite:PATH\?table=T, postgres:\/\/USER@HOST\/DB\?table=T/,
		);
		assert.throws(
			() => parseLocation("s3://bucket/x.parquet", "source"),
			/unknown scheme 's3:'.*or duckdb:SELECT/,
		);
		// A password in the URI never reaches the message.
		assert.throws(
			() => parseLocation("mysql://u:hunter2@h/db?table=x", "sink"),
			(e: Error) =>
				!e.message.includes("hunter2") && e.message.includes("u:***@h"),
		);
		// Paths stay paths, including a Windows drive letter.
		assert.deepEqual(parseLocation("out/x.parquet", "sink"), {
			kind: "file",
			path: "out/x.parquet",
		});
		assert.deepEqual(parseLocation("C:\\data\\x.csv", "source"), {
			kind: "file",
			path: "C:\\data\\x.csv",
		});
		for (const extra of [
			["-o", "mysql://u@h/db?table=x"],
			["-o", join(dir, "s.parquet"), "--errors", "mysql://u@h/db?table=e"],
		]) {
			const r = await mlship(
				["batch", "run", "-m", MODEL, "-s", input, ...extra, "--json"],
				dir,
			);
			assert.equal(r.code, 2, r.stderr + r.stdout);
			assert.match(JSON.parse(r.stdout).error, /unknown scheme 'mysql:'/);
		}
		const src = await mlship(
			[
				"batch",
				"run",
				"-m",
				MODEL,
				"-s",
				"mysql://u@h/db?table=x",
				"-o",
				join(dir, "s.parquet"),
				"--json",
			],
			dir,
		);
		assert.equal(src.code, 2, src.stderr + src.stdout);
		assert.match(JSON.parse(src.stdout).error, /source .*unknown scheme/);
	});
});

describe("job files in the user's words", () => {
	it("a missing sink, a bad value and an unknown key are named with what was expected and what was given", async () => {
		const file = join(dir, "nosink.yaml");
		await writeFile(file, "model: m\nsource: a.csv\n");
		await assert.rejects(
			readJob(file),
			(e: Error) =>
				e.message ===
				`invalid job file ${file}:\n  sink: required — a file path or a table URI`,
		);
		assert.throws(
			() =>
				parseJob({
					model: "m",
					source: "a.csv",
					sink: "b.csv",
					on_error: "sometimes",
					chunk_rows: 0,
					workers: 1.5,
					bogus: 1,
				}),
			(e: Error) =>
				e.message ===
				[
					"invalid job:",
					"  on_error: must be one of fail, skip, got sometimes",
					"  chunk_rows: must be > 0, got 0",
					"  workers: not a whole number: 1.5",
					"  bogus: unknown field",
				].join("\n"),
		);
	});

	it("a pending-records job refuses max_rejected and resume (they would be ignored), naming the field", async () => {
		const pending = {
			model: "m",
			sink: "postgres://h/d?table=s",
			pending: { table: "postgres://h/d?table=t" },
		};
		assert.equal(parseJob(pending).pending?.table, "postgres://h/d?table=t");
		for (const [field, value] of [
			["max_rejected", 3],
			["resume", true],
		] as const)
			assert.throws(
				() => parseJob({ ...pending, [field]: value }),
				new RegExp(
					`\\n  ${field}: applies to a 'source' job only; .*remove '${field}'$`,
				),
			);
		// The same fields on a source job are fine.
		const run = parseJob({
			model: "m",
			source: "a.csv",
			sink: "b.parquet",
			max_rejected: 3,
			resume: true,
		});
		assert.equal(run.max_rejected, 3);
		// Through the command line too: batch run job.yaml --max-rejected 3 on a pending job exits 2 before any work.
		const file = join(dir, "pending.yaml");
		await writeFile(
			file,
			"model: m\nsink: postgres://h/d?table=s\npending: { table: 'postgres://h/d?table=t' }\n",
		);
		const r = await mlship(["batch", "run", file, "--max-rejected", "3"]);
		assert.equal(r.code, 2, r.stderr);
		assert.match(r.stderr, /max_rejected: applies to a 'source' job only/);
	});
});
