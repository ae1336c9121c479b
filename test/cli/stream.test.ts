// `mlship stream` as a real process with the JSON-lines connector: stdin → stdout, files, dead letters, --help, bad URIs.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { mlship } from "../helpers/files.ts";
import { assertClose, bundleDir, golden } from "../helpers/fixtures.ts";

const g = golden("iris-logreg");
const LABELS = ["setosa", "versicolor", "virginica"];
let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-stream-cli-"));
});
after(() => rm(dir, { recursive: true, force: true }));

interface Result {
	id: string;
	model_name: string;
	model_version: string;
	predictions: { label: string; probabilities: number[] }[];
}

it("scores JSON lines from stdin to stdout with the golden outputs; bad lines go to the --dlq file; --json counts", async () => {
	const dlq = join(dir, "dead.jsonl");
	const lines = [
		...g.records.map((r) => JSON.stringify(r)),
		"{oops",
		JSON.stringify({ records: g.records.slice(0, 2) }),
	];
	const r = await mlship(
		[
			"stream",
			"-m",
			bundleDir("iris-logreg"),
			"--from",
			"-",
			"--to",
			"-",
			"--dlq",
			dlq,
			"--json",
		],
		undefined,
		{},
		`${lines.join("\n")}\n`,
	);
	assert.equal(r.code, 0, r.stderr);
	const results = r.stdout
		.trim()
		.split("\n")
		.map((l) => JSON.parse(l) as Result);
	assert.equal(results.length, g.records.length + 1);
	const byId = new Map(results.map((x) => [x.id, x]));
	for (let i = 0; i < g.records.length; i++) {
		const x = byId.get(`line:${i + 1}`);
		assert.ok(x, `result of line ${i + 1}`);
		assert.equal(x.model_name, "iris-logreg");
		assert.equal(
			x.predictions[0]?.label,
			LABELS[g.expected.label?.[i] as number],
		);
		const want = g.expected.probabilities?.[i] as number[];
		for (const [j, v] of (x.predictions[0]?.probabilities ?? []).entries())
			assertClose(v, want[j] as number, `line ${i + 1}`);
	}
	assert.equal(
		byId.get(`line:${g.records.length + 2}`)?.predictions.length,
		2,
		"a {records: [...]} message gets one prediction per record",
	);
	const dead = (await readFile(dlq, "utf8"))
		.trim()
		.split("\n")
		.map((l) => JSON.parse(l) as Record<string, string>);
	assert.equal(dead.length, 1);
	assert.equal(dead[0]?.payload, "{oops");
	assert.match(dead[0]?.error ?? "", /not JSON/);
	const stats = JSON.parse(r.stderr.trim().split("\n").pop() ?? "") as Record<
		string,
		number
	>;
	assert.equal(stats.consumed, g.records.length + 2);
	assert.equal(stats.produced, g.records.length + 1);
	assert.equal(stats.dead, 1);
});

it("reads and writes JSON-lines files, and prints the counters on stdout with --json", async () => {
	const input = join(dir, "in.jsonl");
	const output = join(dir, "out.jsonl");
	await writeFile(input, g.records.map((r) => JSON.stringify(r)).join("\n"));
	const r = await mlship([
		"stream",
		"-m",
		bundleDir("iris-logreg"),
		"--from",
		input,
		"--to",
		`file:${output}`,
		"--json",
	]);
	assert.equal(r.code, 0, r.stderr);
	assert.equal(JSON.parse(r.stdout).produced, g.records.length);
	assert.equal(
		(await readFile(output, "utf8")).trim().split("\n").length,
		g.records.length,
	);
});

it("--help shows an example; an unknown connector is refused with exit code 2 and what to use", async () => {
	const help = await mlship(["stream", "--help"]);
	assert.equal(help.code, 0);
	assert.match(help.stdout, /Examples:[\s\S]*mlship stream --model/);
	assert.match(help.stdout, /--dlq/);
	const bad = await mlship([
		"stream",
		"-m",
		bundleDir("iris-logreg"),
		"--from",
		"amqp://x/q",
		"--to",
		"-",
	]);
	assert.equal(bad.code, 2);
	assert.match(bad.stderr, /unknown connector 'amqp:\/\/'.*kafka:\/\//);
	const noConsumer = await mlship([
		"stream",
		"-m",
		bundleDir("iris-logreg"),
		"--from",
		"kafka://127.0.0.1:1/in",
		"--to",
		"kafka://127.0.0.1:1/out",
		"--exactly-once",
	]);
	assert.equal(noConsumer.code, 2);
	assert.match(
		noConsumer.stderr,
		/--exactly-once needs a stable --consumer name/,
	);
});
