// What bench/stream/profile.ts and cpu.ts share: the model, its golden records as message payloads, flag checks.
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const MODEL = join(ROOT, "test/fixtures/models/breast-cancer-gbdt");

/** Whole-number flags, each 1..1,000,000, or an error naming the flag. */
export function wholeNumbers(
	flags: Record<string, string | undefined>,
): number[] {
	return Object.entries(flags).map(([flag, text]) => {
		const v = Number(text);
		if (!Number.isInteger(v) || v < 1 || v > 1_000_000)
			throw new Error(`--${flag}: expected a whole number 1..1000000`);
		return v;
	});
}

/** The model's golden records (breast_cancer: 30 numeric features each). */
export async function goldenRecords(): Promise<object[]> {
	return (
		JSON.parse(await readFile(join(MODEL, "golden.json"), "utf8")) as {
			records: object[];
		}
	).records;
}

/** Message i's payload: one record (r = 1) or a JSON list of r of them, taken from `records` in turn. */
export function payloadOf(
	records: readonly object[],
	i: number,
	r: number,
): string {
	return r === 1
		? JSON.stringify(records[i % records.length])
		: JSON.stringify(
				Array.from(
					{ length: r },
					(_, j) => records[(i * r + j) % records.length],
				),
			);
}

/** Message i's payload of r golden records. */
export async function payloads(r: number): Promise<(i: number) => string> {
	const records = await goldenRecords();
	return (i) => payloadOf(records, i, r);
}
