// Test helpers: the committed model fixtures, their golden outputs, and the tolerance they are held to.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const MODELS_DIR = fileURLToPath(
	new URL("../fixtures/models/", import.meta.url),
);
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = fileURLToPath(
	new URL("../../src/cli/main.ts", import.meta.url),
);

export interface Golden {
	model: string;
	records: Record<string, unknown>[];
	expected: Record<string, (number | number[])[]>;
}

/** Names of every fixture bundle. */
export const FIXTURES: string[] = readdirSync(MODELS_DIR).sort();

/** The `trees` runtime's native-format fixtures (XGBoost JSON, LightGBM text, PMML), named "trees/<name>". */
export const TREE_FIXTURES: string[] = readdirSync(
	fileURLToPath(new URL("../fixtures/trees/", import.meta.url)),
)
	.sort()
	.map((n) => `trees/${n}`);

/** ONNX fixtures holding one tree ensemble or linear model, which the tree/linear reader understands (not digits-mlp). */
export const ONNX_TREE_FIXTURES: string[] = [
	"breast-cancer-gbdt",
	"diabetes-cats-ridge",
	"diabetes-lgbm",
	"diabetes-rf",
	"diabetes-sex-ridge",
	"iris-logreg",
	"wine-xgb",
];

export function golden(name: string): Golden {
	return JSON.parse(
		readFileSync(`${bundleDir(name)}/golden.json`, "utf8"),
	) as Golden;
}

/** A fixture's directory: "name" is test/fixtures/models/name, "trees/name" is test/fixtures/trees/name. */
export function bundleDir(name: string): string {
	return name.includes("/")
		? fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
		: `${MODELS_DIR}${name}`;
}

/**
 * The bound every numeric prediction is held to against the original library:
 * |got − expected| ≤ 1e-5·|expected| + 1e-6 (relative 1e-5; the absolute 1e-6 covers FP32 rounding of
 * probabilities near 0, e.g. 1 − p computed in float32 inside a binary GBDT graph).
 */
export const REL = 1e-5;
export const ABS = 1e-6;

export function assertClose(got: number, want: number, where: string): void {
	const bound = REL * Math.abs(want) + ABS;
	assert.ok(
		Number.isFinite(got) && Math.abs(got - want) <= bound,
		`${where}: got ${got}, want ${want} (bound ${bound.toExponential(2)})`,
	);
}

/** Compares a model output (flat or nested numbers) with the golden values of that output. */
export function assertOutputMatches(
	name: string,
	output: string,
	got: ArrayLike<unknown>,
	want: (number | number[])[],
): void {
	const flat = want.flat();
	assert.equal(got.length, flat.length, `${name}/${output}: length`);
	const integral = output === "label";
	for (let i = 0; i < flat.length; i++) {
		const g = Number(got[i]);
		if (integral) assert.equal(g, flat[i], `${name}/${output}[${i}]`);
		else assertClose(g, flat[i] as number, `${name}/${output}[${i}]`);
	}
}

/** Checks every output tensor of a fixture against its golden values. */
export function assertTensorsMatch(
	name: string,
	outs: readonly { name: string; data: unknown }[],
): void {
	const g = golden(name);
	for (const o of outs)
		assertOutputMatches(
			name,
			o.name,
			o.data as ArrayLike<unknown>,
			g.expected[o.name] as number[],
		);
}
