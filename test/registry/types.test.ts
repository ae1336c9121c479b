// Model references: parsing and formatting of name, name@version and name@alias.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatRef, parseRef } from "../../src/registry/types.ts";

describe("parseRef", () => {
	it("reads a bare name, a version and an alias", () => {
		assert.deepEqual(parseRef("churn"), { name: "churn" });
		assert.deepEqual(parseRef("churn@3"), { name: "churn", version: 3 });
		assert.deepEqual(parseRef("churn@012"), { name: "churn", version: 12 });
		assert.deepEqual(parseRef("churn@production"), {
			name: "churn",
			alias: "production",
		});
		assert.deepEqual(parseRef("my.model_v2-x@v2"), {
			name: "my.model_v2-x",
			alias: "v2",
		});
	});

	it("rejects malformed references with MLSHIP_INVALID_ARGUMENT", () => {
		for (const bad of [
			"",
			"@",
			"@prod",
			"churn@",
			"churn@0",
			"churn@a@b",
			"ch urn",
			"_churn",
			"churn@.x",
			"churn/1",
		])
			assert.throws(
				() => parseRef(bad),
				(err: Error & { code?: string }) =>
					err.code === "MLSHIP_INVALID_ARGUMENT" &&
					err.message.includes(`'${bad}'`),
				bad,
			);
	});

	it("validates ModelRef objects", () => {
		assert.deepEqual(parseRef({ name: "a", version: 2 }), {
			name: "a",
			version: 2,
		});
		assert.throws(
			() => parseRef({ name: "a", version: 1.5 }),
			/invalid version/,
		);
		assert.throws(() => parseRef({ name: "a", alias: "12" }), /invalid alias/);
		assert.throws(
			() => parseRef({ name: "a", version: 1, alias: "p" }),
			/both/,
		);
		assert.throws(() => parseRef({ name: "a b" }), /invalid model name/);
	});

	it("formats back to the string form", () => {
		for (const s of ["churn", "churn@3", "churn@production"])
			assert.equal(formatRef(parseRef(s)), s);
	});
});
