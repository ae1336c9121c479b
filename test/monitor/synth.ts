// Synthetic rows for the diabetes-cats-ridge fixture (its features' training means and spreads), with shifts, and a
// bundle copy with a reference profile made from them.
import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBundle } from "../../src/cli/bundle.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { prng } from "../helpers/random.ts";

export type Row = Record<string, string | number>;

/** How current data differs from the reference: numeric mean shifts (in stds), a category share change. */
export interface Shift {
	/** feature → shift of the mean, in standard deviations. */
	mean?: Record<string, number>;
	/** Share of rows whose sex is "male" (reference 0.46). */
	male?: number;
	/** Share of rows in age band "60+" (reference 0.24); the others share the rest. */
	old?: number;
}

const NUMERIC: Record<string, [number, number, number]> = {
	// mean, std, decimals
	bmi: [25.7, 4.5, 1],
	s1: [188, 33, 0],
	s2: [115, 29, 1],
	s3: [50, 13, 0],
	s4: [4, 1.2, 2],
	s5: [4.6, 0.5, 4],
	s6: [89, 11, 0],
};
const AGES = ["under-30", "30s", "40s", "50s", "60+"];

function normal(rand: () => number): number {
	const u = Math.max(rand(), 1e-12);
	return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** `n` rows from seed `seed`, shifted by `shift`. */
export function rows(n: number, seed: number, shift: Shift = {}): Row[] {
	const rand = prng(seed);
	const out: Row[] = [];
	for (let i = 0; i < n; i++) {
		const r: Row = {};
		r.sex = rand() < (shift.male ?? 0.46) ? "male" : "female";
		const old = shift.old ?? 0.24;
		r.age_band =
			rand() < old ? "60+" : (AGES[Math.floor(rand() * 4)] as string);
		const u = rand();
		r.bp_band = u < 0.15 ? 3 : u < 0.68 ? 4 : u < 0.97 ? 5 : 6;
		for (const [f, [m, sd, dec]] of Object.entries(NUMERIC)) {
			const x = m + sd * (normal(rand) + (shift.mean?.[f] ?? 0));
			r[f] = Number(Math.max(0.01, x).toFixed(dec));
		}
		out.push(r);
	}
	return out;
}

/** Rows as CSV text. */
export function csv(data: Row[]): string {
	const cols = Object.keys(data[0] as Row);
	return `${cols.join(",")}\n${data.map((r) => cols.map((c) => r[c]).join(",")).join("\n")}\n`;
}

/** A copy of diabetes-cats-ridge in a temp dir whose reference profile is `reference` (plus the target, ignored). */
export async function bundleWithReference(
	reference: Row[],
): Promise<{ dir: string; csvPath: string }> {
	const root = await mkdtemp(join(tmpdir(), "mlship-drift-"));
	const dir = join(root, "diabetes");
	await cp(bundleDir("diabetes-cats-ridge"), dir, { recursive: true });
	const csvPath = join(root, "reference.csv");
	await writeFile(
		csvPath,
		csv(reference.map((r, i) => ({ ...r, target: 100 + (i % 50) }))),
	);
	await initBundle(dir, { reference: csvPath });
	return { dir, csvPath };
}
