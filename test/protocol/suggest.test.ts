// Nearest-name suggestions: typos within a few edits are suggested, unrelated names are not.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { didYouMean, nearest } from "../../src/protocol/suggest.ts";

describe("nearest", () => {
	const models = [
		"iris-logreg",
		"breast-cancer-gbdt",
		"wine-xgb",
		"diabetes-rf",
	];
	it("suggests the closest name for a typo", () => {
		assert.equal(nearest("iris-logref", models), "iris-logreg");
		assert.equal(nearest("wine-xbg", models), "wine-xgb");
		assert.equal(nearest("IRIS-LOGREG", models), "iris-logreg");
		assert.equal(nearest("prodution", ["production", "staging"]), "production");
		assert.equal(
			nearest("sepal_lenght", ["sepal_length", "petal_length"]),
			"sepal_length",
		);
		assert.equal(nearest("sex", ["age", "sex_", "bmi"]), "sex_");
	});
	it("suggests nothing when nothing is near, or for the name itself", () => {
		assert.equal(nearest("churn", models), undefined);
		assert.equal(nearest("ab", ["xy"]), undefined);
		assert.equal(nearest("abc", ["xyc"]), undefined);
		assert.equal(nearest("irsi", ["iris", "wine"]), "iris");
		assert.equal(nearest("a", []), undefined);
		assert.equal(nearest("staging", ["staging"]), undefined);
	});
	it("didYouMean formats a suffix for an error message", () => {
		assert.equal(didYouMean("wine-xbg", models), "; did you mean 'wine-xgb'?");
		assert.equal(didYouMean("churn", models), "");
	});
});
