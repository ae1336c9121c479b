// Generated request ids: random version-4 UUIDs, distinct, and one flat string each (not a rope of pieces, which
// costs ~1 KB more per request and per id the feedback join keeps).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { newRequestId, requestIdOf } from "../../src/protocol/request-id.ts";

const UUID =
	/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("newRequestId", () => {
	it("gives version-4 UUIDs, all distinct, across several refills of its random pool", () => {
		const ids = new Set<string>();
		for (let i = 0; i < 1000; i++) {
			const id = newRequestId();
			assert.match(id, UUID);
			ids.add(id);
		}
		assert.equal(ids.size, 1000);
		// Every hex digit position varies (the bytes are random, not a counter).
		const fixed = [...Array(36).keys()].filter(
			(p) => new Set([...ids].map((id) => id[p])).size === 1,
		);
		assert.deepEqual(
			fixed,
			[8, 13, 14, 18, 23],
			"only dashes and the version digit are fixed",
		);
	});

	it("is what requestIdOf answers when the client gives no id", () => {
		assert.match(requestIdOf(undefined, undefined), UUID);
		assert.match(requestIdOf("", ""), UUID);
		assert.equal(requestIdOf(undefined, ["given", "x"]), "given");
	});

	it("returns one flat string, not a rope (V8's own description of it, in a child with natives syntax)", () => {
		const module = fileURLToPath(
			new URL("../../src/protocol/request-id.ts", import.meta.url),
		);
		const out = execFileSync(
			process.execPath,
			[
				"--allow-natives-syntax",
				"--input-type=module",
				"-e",
				`const { requestIdOf } = await import(${JSON.stringify(module)}); const id = requestIdOf(undefined, undefined); %DebugPrint(id);`,
			],
			{ encoding: "utf8" },
		);
		const type = /- type: (\w+)/.exec(out)?.[1];
		assert.ok(type, `V8 printed no type:\n${out.slice(0, 500)}`);
		assert.match(type, /STRING_TYPE$/);
		assert.doesNotMatch(type, /CONS|SLICED|THIN/);
	});
});
