// File jobs with --resume: kill -9 mid-job, run again, and the output holds every row exactly once, equal to an uninterrupted run.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import {
	cp,
	mkdir,
	mkdtemp,
	readdir,
	readFile,
	rm,
	writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import {
	mlship,
	readTable,
	startMlship,
	writeTable,
} from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

/** Tests that wait for processes fail after this instead of hanging the suite. */
const BOUNDED = { timeout: 180_000 };

const MODEL = "breast-cancer-gbdt";
const FEATURES = Object.keys(golden(MODEL).records[0] as object);
const N = 400_000;

let dir: string;
let input: string;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-resume-test-"));
	input = join(dir, "rows.parquet");
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	await conn.run(
		`COPY (SELECT i AS id, ${FEATURES.map((f, k) => `((i * ${k + 7}) % 1000) / 10.0 AS "${f}"`).join(", ")} FROM range(${N}) t(i)) TO '${input}' (FORMAT parquet)`,
	);
	conn.closeSync();
	db.closeSync();
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

const job = (
	output: string,
	extra: string[] = [],
	model = bundleDir(MODEL),
) => [
	"batch",
	"run",
	"-m",
	model,
	"-s",
	input,
	"-o",
	output,
	"--keep",
	"id",
	"--chunk-rows",
	"4096",
	"--workers",
	"1",
	"--json",
	...extra,
];

describe("mlship batch run --resume", () => {
	it(
		"kill -9 mid-job, then --resume: every row exactly once, equal to an uninterrupted run",
		BOUNDED,
		async (t) => {
			const output = join(dir, "scored.parquet");
			const checkpoint = join(`${output}.checkpoint`, "checkpoint.json");
			// The file sink's spill directory goes to TMPDIR: a directory of this test's own.
			const tmp = join(dir, "tmp");
			await mkdir(tmp);
			const env = { TMPDIR: tmp };
			const spills = async () =>
				(await readdir(tmp)).filter((n) => n.startsWith("mlship-sink-"));
			const first = startMlship(job(output, ["--resume"]), undefined, env);
			let done = 0;
			while (done === 0) {
				await new Promise((r) => setTimeout(r, 10));
				if (existsSync(checkpoint))
					done = JSON.parse(await readFile(checkpoint, "utf8")).rows_done;
			}
			first.process.kill("SIGKILL");
			assert.equal((await first.done).signal, "SIGKILL");
			const saved = JSON.parse(await readFile(checkpoint, "utf8"));
			assert.ok(
				saved.rows_done > 0 && saved.rows_done < N,
				`killed mid-job at ${saved.rows_done} rows`,
			);
			assert.equal(existsSync(output), false, "no partial output file");
			t.diagnostic(`killed with ${saved.rows_done} of ${N} rows checkpointed`);
			assert.equal((await spills()).length, 1, "the killed run left its spill");

			// The same model with another artifact (an unknown protobuf field appended: same predictions, new
			// sha256) must not resume the checkpoint: the output would mix two models.
			const edited = join(dir, "edited-bundle");
			await cp(bundleDir(MODEL), edited, { recursive: true });
			const onnx = await readFile(join(edited, "model.onnx"));
			const bytes = Buffer.concat([onnx, Buffer.from([0xc0, 0x3e, 0x01])]);
			await writeFile(join(edited, "model.onnx"), bytes);
			const oldSha = createHash("sha256").update(onnx).digest("hex");
			const newSha = createHash("sha256").update(bytes).digest("hex");
			const yaml = await readFile(join(edited, "mlship.yaml"), "utf8");
			await writeFile(
				join(edited, "mlship.yaml"),
				yaml.replace(oldSha, newSha),
			);
			const other = await mlship(
				job(output, ["--resume"], edited),
				undefined,
				env,
			);
			assert.equal(other.code, 2, other.stderr + other.stdout);
			const why = JSON.parse(other.stdout).error as string;
			assert.match(
				why,
				new RegExp(`was written by ${MODEL} \\(sha256 ${oldSha}\\)`),
			);
			assert.match(
				why,
				new RegExp(`this run's model is ${MODEL} \\(sha256 ${newSha}\\)`),
			);
			assert.deepEqual(
				JSON.parse(await readFile(checkpoint, "utf8")),
				saved,
				"the refused run left the checkpoint as it was",
			);

			const again = await mlship(job(output, ["--resume"]), undefined, env);
			assert.equal(again.code, 0, again.stderr + again.stdout);
			const s = JSON.parse(again.stdout);
			assert.equal(s.rows_resumed, saved.rows_done);
			assert.equal(s.rows_in, N);
			assert.equal(s.rows_scored, N);
			assert.equal(
				existsSync(`${output}.checkpoint`),
				false,
				"checkpoint removed after success",
			);
			assert.deepEqual(await spills(), [], "the stale spill was removed");

			const reference = join(dir, "reference.parquet");
			const ref = await mlship(job(reference));
			assert.equal(ref.code, 0, ref.stderr);
			const db = await DuckDBInstance.create(":memory:");
			const conn = await db.connect();
			const q = async (sql: string) =>
				(await conn.runAndReadAll(sql)).getRows()[0];
			assert.deepEqual(
				await q(
					`SELECT count(*), count(DISTINCT id), min(id), max(id) FROM '${output}'`,
				),
				[BigInt(N), BigInt(N), 0n, BigInt(N - 1)],
			);
			// Same rows in the same order with the same predictions as the uninterrupted run.
			assert.deepEqual(
				await q(
					`SELECT count(*) FROM (SELECT row_number() OVER () AS k, * FROM '${output}') a FULL JOIN (SELECT row_number() OVER () AS k, * FROM '${reference}') b USING (k) WHERE a.id IS DISTINCT FROM b.id OR a.label IS DISTINCT FROM b.label OR a.probabilities_benign IS DISTINCT FROM b.probabilities_benign`,
				),
				[0n],
			);
			conn.closeSync();
			db.closeSync();
		},
	);

	it("reports bad rows with --resume like without, and refuses table sinks", async () => {
		const small = join(dir, "small.jsonl");
		const recs = golden(MODEL)
			.records.slice(0, 5)
			.map((r, k) => ({ id: k, ...r })) as Record<string, unknown>[];
		(recs[3] as Record<string, unknown>)[FEATURES[0] as string] = "x";
		await writeTable(small, recs);
		const out = join(dir, "small.csv");
		const smallJob = (sink: string, ...extra: string[]) =>
			mlship([
				"batch",
				"run",
				"-m",
				bundleDir(MODEL),
				"-s",
				small,
				"-o",
				sink,
				"--resume",
				"--json",
				...extra,
			]);
		const r = await smallJob(out, "--keep", "id", "--on-error", "skip");
		assert.equal(r.code, 0, r.stderr + r.stdout);
		assert.equal(JSON.parse(r.stdout).rows_rejected, 1);
		assert.deepEqual(
			(await readTable(out)).map((x) => Number(x.id)),
			[0, 1, 2, 4],
		);
		const errs = (await readFile(`${out}.errors.jsonl`, "utf8"))
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		assert.deepEqual(
			errs.map((e) => [e.row, e.column]),
			[[4, FEATURES[0]]],
		);
		const table = await smallJob(`sqlite:${join(dir, "x.db")}?table=s`);
		assert.equal(table.code, 2);
		assert.match(
			JSON.parse(table.stdout).error,
			/--resume works with file sinks/,
		);
	});

	it("a run that failed after its last chunk resumes from the checkpoint alone, and reports no rate rather than 0 rows/s", async () => {
		const small = join(dir, "five.jsonl");
		await writeTable(
			small,
			golden(MODEL)
				.records.slice(0, 5)
				.map((r, k) => ({ id: k, ...r })),
		);
		const out = join(dir, "five.csv");
		// A directory where the output file goes: every chunk is checkpointed, then the final write fails.
		await mkdir(out);
		const run = () =>
			mlship([
				"batch",
				"run",
				"-m",
				bundleDir(MODEL),
				"-s",
				small,
				"-o",
				out,
				"--keep",
				"id",
				"--resume",
				"--json",
			]);
		const failed = await run();
		assert.notEqual(failed.code, 0, failed.stdout);
		assert.equal(
			JSON.parse(
				await readFile(join(`${out}.checkpoint`, "checkpoint.json"), "utf8"),
			).rows_done,
			5,
		);
		await rm(out, { recursive: true });
		const r = await run();
		assert.equal(r.code, 0, r.stderr + r.stdout);
		const s = JSON.parse(r.stdout);
		assert.equal(s.rows_resumed, 5);
		assert.equal(s.rows_scored, 5);
		assert.equal(s.rows_per_second, null);
		assert.deepEqual(
			(await readTable(out)).map((x) => Number(x.id)),
			[0, 1, 2, 3, 4],
		);
	});
});
