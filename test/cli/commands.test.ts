// The lazily built CLI (src/cli/commands.ts): --help lists every command exactly as its own module defines it,
// and only the invoked command is built for real.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Help } from "commander";
import {
	buildProgram,
	COMMANDS,
	invokedCommand,
} from "../../src/cli/commands.ts";

test("each --help entry (term and description) is the real command's", async () => {
	const help = new Help();
	for (const c of COMMANDS) {
		const real = await c.load();
		assert.equal(real.name(), c.name);
		assert.equal(c.term, help.subcommandTerm(real), `${c.name}: term`);
		assert.equal(c.summary, real.description(), `${c.name}: description`);
	}
});

test("--help lists every command with its term and description from the table", async () => {
	const lazy = await buildProgram(["--help"]);
	const help = lazy.createHelp();
	const listed = help
		.visibleCommands(lazy)
		.map((c) => [help.subcommandTerm(c), help.subcommandDescription(c)]);
	assert.deepEqual(
		listed.slice(0, COMMANDS.length),
		COMMANDS.map((c) => [c.term, c.summary]),
	);
});

test("only the invoked command is built: its options exist, the others are bare entries", async () => {
	const program = await buildProgram(["serve", "--http-port", "0"]);
	const serve = program.commands.find((c) => c.name() === "serve");
	assert.ok(serve?.options.some((o) => o.long === "--http-port"));
	const predict = program.commands.find((c) => c.name() === "predict");
	assert.equal(predict?.options.length, 0);
	assert.equal(invokedCommand(["help", "predict"]), "predict");
	assert.equal(invokedCommand(["-h"]), undefined);
	assert.equal(invokedCommand(["models", "list", "--json"]), "models");
});
