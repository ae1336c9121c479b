// Bad command-line arguments across commands: a clear message naming the option, and exit code 2.
import assert from "node:assert/strict";
import { it } from "node:test";
import { mlship } from "../helpers/files.ts";

it("a number option that is not a whole number ≥ 1 is refused with exit code 2 and the option's name, before any work", async () => {
	for (const args of [
		[
			"batch",
			"run",
			"-m",
			"x",
			"-s",
			"in.csv",
			"-o",
			"out.csv",
			"--chunk-rows",
			"abc",
		],
		[
			"batch",
			"work",
			"-m",
			"x",
			"-t",
			"postgres://h/d?table=t",
			"-o",
			"postgres://h/d?table=s",
			"--chunk-rows",
			"0",
		],
		[
			"pg",
			"worker",
			"--db",
			"postgres://h/d",
			"--table",
			"t",
			"--column",
			"c",
			"--chunk-rows",
			"-3",
		],
		["stream", "-m", "x", "--from", "-", "--to", "-", "--batch-size", "1.5"],
		["models", "register-entities", "price", "--dir", ".", "--batch", "none"],
		["predict", "-m", "x", "-i", "in.csv", "-o", "out.csv", "--workers", "0"],
	]) {
		const r = await mlship(args);
		assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
		assert.match(
			r.stderr,
			/option '--[a-z-]+ <n>' argument '.*' is invalid\. expected a whole number ≥ 1\./,
			args.join(" "),
		);
	}
});

it("a bad settings value is named as the flag given, with the value: serve --http-port abc", async () => {
	const r = await mlship(["serve", "--http-port", "abc"]);
	assert.equal(r.code, 2, r.stderr);
	assert.match(r.stderr, /--http-port: not a port number: abc/);
});
