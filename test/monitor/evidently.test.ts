// mlship's drift decisions held against Evidently's default preset (goldens from tools/drift/generate.py, Evidently
// 0.7.23): the same reference and windows, profiled the way serve profiles traffic, must agree on ≥ 95% of
// feature×window cases. Every disagreement is listed (and explained in docs/monitoring.md).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { columnDrift, type DriftMethod } from "../../src/monitor/drift.ts";
import {
	addValue,
	layoutOf,
	ProfileAccumulator,
	type ReferenceColumn,
	referenceProfile,
} from "../../src/monitor/profile/build.ts";
import type { Profile } from "../../src/monitor/profile/format.ts";
import { REPO } from "../helpers/fixtures.ts";

const DIR = join(REPO, "test/monitor/evidently");

interface GoldenFeature {
	method: string;
	threshold: number;
	statistic: number;
	drifted: boolean;
}
interface Golden {
	numerical_columns: string[];
	categorical_columns: string[];
	windows: {
		id: string;
		reference: string;
		shift: string;
		rows: number;
		features: Record<string, GoldenFeature>;
	}[];
}

const METHODS: Record<string, DriftMethod> = {
	"K-S p_value": "ks",
	"chi-square p_value": "chisquare",
	"Z-test p_value": "z",
	"Wasserstein distance (normed)": "wasserstein",
	"Jensen-Shannon distance": "jensenshannon",
};

async function readParts(): Promise<Map<string, Record<string, unknown[]>>> {
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		const r = await conn.runAndReadAll(
			`SELECT * FROM read_parquet('${join(DIR, "data.parquet")}')`,
		);
		const cols = r.getColumnsObjectJS() as Record<string, unknown[]>;
		const parts = new Map<string, Record<string, unknown[]>>();
		const part = cols.part as string[];
		for (let i = 0; i < part.length; i++) {
			const id = part[i] as string;
			let p = parts.get(id);
			if (!p) {
				p = Object.fromEntries(Object.keys(cols).map((k) => [k, []]));
				parts.set(id, p);
			}
			for (const k of Object.keys(cols)) (p[k] as unknown[]).push(cols[k]?.[i]);
		}
		return parts;
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

test("drift decisions agree with Evidently's default preset on ≥ 95% of feature×window cases", async () => {
	const golden = JSON.parse(
		readFileSync(join(DIR, "golden.json"), "utf8"),
	) as Golden;
	const parts = await readParts();
	const kinds = new Map<string, "numeric" | "categorical">([
		...golden.numerical_columns.map((c) => [c, "numeric"] as const),
		...golden.categorical_columns.map((c) => [c, "categorical"] as const),
	]);
	const references = new Map<string, Profile>();
	const refOf = (id: string): Profile => {
		let p = references.get(id);
		if (!p) {
			const data = parts.get(id);
			assert.ok(data, `reference ${id} in data.parquet`);
			const cols: ReferenceColumn[] = [...kinds].map(([name, kind]) => ({
				name,
				kind,
				values: data[name] as unknown[],
			}));
			p = referenceProfile((data.part as unknown[]).length, cols, []);
			references.set(id, p);
		}
		return p;
	};
	let cases = 0;
	let agree = 0;
	let sameMethod = 0;
	const disagreements: string[] = [];
	/** Relative difference of mlship's statistic from Evidently's, per method (how close the profile-based tests are). */
	const gaps = new Map<string, number[]>();
	for (const w of golden.windows) {
		const ref = refOf(w.reference);
		const data = parts.get(w.id);
		assert.ok(data, `window ${w.id} in data.parquet`);
		// Profiled as the serve hook does: accumulators on the reference's layout.
		const acc = new ProfileAccumulator(layoutOf(ref));
		for (const [name, a] of acc.features)
			for (const v of data[name] as unknown[]) addValue(a, v);
		const cur = acc.profile();
		for (const [name, g] of Object.entries(w.features)) {
			const r = ref.features[name];
			const c = cur.features[name];
			assert.ok(r && c, name);
			const d = columnDrift(r, c);
			cases++;
			if (d.method === METHODS[g.method]) sameMethod++;
			if (d.statistic !== null) {
				const list = gaps.get(d.method) ?? [];
				list.push(
					Math.abs(d.statistic - g.statistic) /
						Math.max(Math.abs(g.statistic), 1e-12),
				);
				gaps.set(d.method, list);
			}
			if (d.drifted === g.drifted) agree++;
			else
				disagreements.push(
					`${w.id} ${name}: evidently ${g.method} ${g.statistic.toPrecision(4)} → ${g.drifted ? "drift" : "no drift"}; mlship ${d.method} ${d.statistic?.toPrecision(4)} → ${d.drifted ? "drift" : "no drift"}`,
				);
		}
	}
	const share = agree / cases;
	console.log(
		`evidently agreement: ${agree}/${cases} = ${(100 * share).toFixed(1)}% (same test chosen in ${sameMethod}/${cases})`,
	);
	for (const d of disagreements) console.log(`  disagreement: ${d}`);
	for (const [method, list] of gaps) {
		const sorted = [...list].sort((x, y) => x - y);
		const q = (p: number) =>
			((sorted[Math.floor(p * (sorted.length - 1))] ?? 0) * 100).toFixed(2);
		console.log(
			`  ${method}: ${list.length} cases, relative difference from Evidently's statistic: median ${q(0.5)}%, p90 ${q(0.9)}%, max ${q(1)}%`,
		);
	}
	assert.equal(sameMethod, cases, "the same test is chosen for every case");
	assert.ok(cases >= 250, `cases: ${cases}`);
	assert.ok(
		share >= 0.95,
		`agreement ${(100 * share).toFixed(1)}% < 95%:\n${disagreements.join("\n")}`,
	);
});
