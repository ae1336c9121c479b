// The CLI suggests the nearest name: commands and options (commander's suggestions, kept on), file columns.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mlship, writeTable } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-suggest-cli-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("mlship suggests the nearest name", () => {
	it("for a mistyped option, with exit 2", async () => {
		const r = await mlship(["serve", "--mdoel", "iris"]);
		assert.equal(r.code, 2);
		assert.match(
			r.stderr,
			/unknown option '--mdoel'\n\(Did you mean --model\?\)/,
		);
	});

	it("for a mistyped command and subcommand", async () => {
		const top = await mlship(["serv"]);
		assert.equal(top.code, 2);
		assert.match(
			top.stderr,
			/unknown command 'serv'\n\(Did you mean serve\?\)/,
		);
		const sub = await mlship(["models", "regster"]);
		assert.equal(sub.code, 2);
		assert.match(sub.stderr, /\(Did you mean register\?\)/);
	});

	it("for a file column that is a typo of a feature", async () => {
		const rows = golden("iris-logreg")
			.records.slice(0, 3)
			.map(({ petal_width, ...rest }) => ({
				...rest,
				petal_widht: petal_width,
			}));
		const input = join(dir, "typo.csv");
		await writeTable(input, rows);
		const r = await mlship([
			"predict",
			"-m",
			bundleDir("iris-logreg"),
			"-i",
			input,
			"-o",
			join(dir, "out.csv"),
			"--json",
		]);
		assert.equal(r.code, 2, r.stderr);
		assert.match(
			JSON.parse(r.stdout).error,
			/has no column 'petal_width'; did you mean 'petal_widht' for 'petal_width'\? \(the model reads/,
		);
	});
});
