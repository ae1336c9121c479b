// The JSON-lines connector (files; stdio is exercised by the CLI tests) against the connector contract, and runStream on files.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { runStream } from "../../src/stream/index.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { runContract } from "./connector.contract.ts";

const dir = await mkdtemp(join(tmpdir(), "mlship-jsonl-"));
after(() => rm(dir, { recursive: true, force: true }));
let n = 0;
runContract("jsonl file", {
	fresh: async () => join(dir, `m${++n}.jsonl`),
	metadata: false,
	groups: false,
});

it("runStream (embedded API) scores a JSON-lines file into another and resolves done with the counters", async () => {
	const g = golden("iris-logreg");
	const input = join(dir, "embedded-in.jsonl");
	const output = join(dir, "embedded-out.jsonl");
	await writeFile(
		input,
		`${g.records.map((r) => JSON.stringify(r)).join("\n")}\n`,
	);
	const s = await runStream({
		model: bundleDir("iris-logreg"),
		from: input,
		to: output,
	});
	assert.equal(s.model, "iris-logreg");
	const stats = await s.done;
	assert.equal(stats.produced, g.records.length);
	const lines = (await readFile(output, "utf8")).trim().split("\n");
	assert.equal(lines.length, g.records.length);
	const labels = ["setosa", "versicolor", "virginica"];
	lines.forEach((l, i) => {
		const r = JSON.parse(l) as { id: string; predictions: { label: string }[] };
		assert.equal(r.id, `line:${i + 1}`);
		assert.equal(
			r.predictions[0]?.label,
			labels[g.expected.label?.[i] as number],
		);
	});
});
