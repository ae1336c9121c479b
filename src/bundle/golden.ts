// golden.json next to a bundle (written by the Python SDK and tools/fixtures): held-out rows and the original library's outputs.
import { MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";

export const GOLDEN_FILE = "golden.json";
/** The fixtures' tolerance, model (float32) vs original library (float64): |d| ≤ REL·|library| + ABS. */
export const GOLDEN_REL = 1e-4;
export const GOLDEN_ABS = 1e-6;

export interface Golden {
	model: string;
	produced_by: string;
	records: Record<string, unknown>[];
	expected: Record<string, unknown[]>;
}

/** Parses golden.json text, naming what is missing. */
export function parseGolden(text: string, where: string): Golden {
	let g: unknown;
	try {
		g = JSON.parse(text);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is not valid JSON: ${(err as Error).message}`,
		);
	}
	const o = g as Partial<Golden> | null;
	if (
		typeof o !== "object" ||
		o === null ||
		!Array.isArray(o.records) ||
		typeof o.expected !== "object" ||
		o.expected === null
	)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} must hold "records" (a list of rows) and "expected" (outputs by name)`,
		);
	for (const [k, v] of Object.entries(o.expected))
		if (!Array.isArray(v) || v.length !== o.records.length)
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`${where}: expected.${k} must be a list of ${o.records.length} values (one per record)`,
			);
	return o as Golden;
}

/** One golden row the model answers differently. */
export interface GoldenMismatch {
	output: string;
	row: number;
	expected: unknown;
	got: unknown;
}

/**
 * Compares the model's outputs on the golden records with the library's: labels (and any non-numeric value)
 * exactly, numbers within |d| ≤ 1e-4·|library| + 1e-6. Returns the mismatches (at most `limit`) and the count.
 */
export function compareGolden(
	g: Golden,
	outputs: readonly Tensor[],
	limit = 5,
): { checked: string[]; mismatches: GoldenMismatch[]; bad: number } {
	const mismatches: GoldenMismatch[] = [];
	let bad = 0;
	const checked: string[] = [];
	for (const [name, want] of Object.entries(g.expected)) {
		const t = outputs.find((o) => o.name === name);
		if (!t)
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`golden.json has expected values for output '${name}' but the model has outputs ${outputs.map((o) => o.name).join(", ")}`,
			);
		checked.push(name);
		const data = t.data as ArrayLike<unknown>;
		const width = data.length / Math.max(1, want.length);
		for (let r = 0; r < want.length; r++) {
			const row = [want[r]].flat() as unknown[];
			let ok = row.length === width;
			for (let j = 0; ok && j < row.length; j++) {
				const e = row[j];
				const v = data[r * width + j];
				if (typeof e === "number") {
					const n = typeof v === "bigint" ? Number(v) : Number(v);
					ok =
						name === "label"
							? n === e
							: Math.abs(n - e) <= GOLDEN_REL * Math.abs(e) + GOLDEN_ABS;
				} else ok = String(v) === String(e);
			}
			if (!ok) {
				bad += 1;
				if (mismatches.length < limit)
					mismatches.push({
						output: name,
						row: r,
						expected: want[r],
						got: Array.from({ length: width }, (_, j) => {
							const v = data[r * width + j];
							return typeof v === "bigint" ? Number(v) : v;
						}),
					});
			}
		}
	}
	return { checked, mismatches, bad };
}
