// Drift tests on profiles: PSI as an option, the minimum window size, categories the reference never saw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { columnDrift, ksTest } from "../../src/monitor/drift.ts";
import {
	addValue,
	type ColumnKind,
	layoutOf,
	ProfileAccumulator,
	referenceProfile,
} from "../../src/monitor/profile/build.ts";
import type { ColumnProfile } from "../../src/monitor/profile/format.ts";
import { rows } from "./synth.ts";

const KINDS: Record<string, ColumnKind> = {
	bmi: "numeric",
	age_band: "categorical",
};

function profiles(
	ref: Record<string, unknown>[],
	cur: Record<string, unknown>[],
) {
	const reference = referenceProfile(
		ref.length,
		Object.entries(KINDS).map(([name, kind]) => ({
			name,
			kind,
			values: ref.map((r) => r[name]),
		})),
		[],
	);
	const acc = new ProfileAccumulator(layoutOf(reference));
	for (const r of cur) for (const [k, a] of acc.features) addValue(a, r[k]);
	const current = acc.profile();
	return (name: string): [ColumnProfile, ColumnProfile] => [
		reference.features[name] as ColumnProfile,
		current.features[name] as ColumnProfile,
	];
}

test("PSI, as an option, on reference deciles (numeric) and categories: small for the same distribution, ≥ 0.1 when shifted", () => {
	const ref = rows(3000, 71);
	const same = profiles(ref, rows(2000, 72));
	const shifted = profiles(
		ref,
		rows(2000, 73, { mean: { bmi: 0.6 }, old: 0.6 }),
	);
	for (const f of ["bmi", "age_band"]) {
		const a = columnDrift(...same(f), { method: "psi" });
		const b = columnDrift(...shifted(f), { method: "psi" });
		assert.equal(a.method, "psi");
		assert.equal(a.threshold, 0.1);
		assert.ok((a.statistic as number) < 0.02, `${f} same: ${a.statistic}`);
		assert.equal(a.drifted, false);
		assert.ok((b.statistic as number) >= 0.1, `${f} shifted: ${b.statistic}`);
		assert.equal(b.drifted, true);
	}
	// Evidently's default for the same (large) reference: distances, not p-values.
	assert.equal(columnDrift(...same("bmi")).method, "wasserstein");
	assert.equal(columnDrift(...same("age_band")).method, "jensenshannon");
	// Thresholds can be set per method.
	assert.equal(
		columnDrift(...shifted("bmi"), { thresholds: { wasserstein: 5 } }).drifted,
		false,
	);
});

test("below the minimum window size the verdict is 'not enough data', not a p-value on 8 rows", () => {
	const get = profiles(rows(500, 74), rows(8, 75, { mean: { bmi: 3 } }));
	const d = columnDrift(...get("bmi"));
	assert.deepEqual(
		{ drifted: d.drifted, statistic: d.statistic, reason: d.reason },
		{ drifted: null, statistic: null, reason: "not enough data: 8 of 50 rows" },
	);
	assert.equal(columnDrift(...get("bmi"), { minRows: 5 }).drifted, true);
});

test("a category the reference never saw makes chi-square drift (expected count 0: p = 0, as scipy)", () => {
	const ref = rows(400, 76).map((r) => ({
		...r,
		age_band: r.age_band === "60+" ? "50s" : r.age_band,
	}));
	const cur = rows(200, 77);
	const d = columnDrift(...profiles(ref, cur)("age_band"));
	assert.equal(d.method, "chisquare");
	assert.equal(d.statistic, 0);
	assert.equal(d.drifted, true);
});

test("KS and Wasserstein are exact when both profiles know every distinct value (integer-valued columns)", () => {
	const col = (values: number[]) => ({
		name: "x",
		kind: "numeric" as const,
		values,
	});
	const ref = referenceProfile(
		100,
		[col([...Array(50).fill(1), ...Array(50).fill(2)])],
		[],
	);
	const acc = new ProfileAccumulator(layoutOf(ref));
	const x = acc.features.get("x");
	assert.ok(x);
	for (let i = 0; i < 100; i++) addValue(x, 2);
	const cur = acc.profile();
	const [r, c] = [
		ref.features.x as ColumnProfile,
		cur.features.x as ColumnProfile,
	];
	// F_ref = (0.5 at 1, 1 at 2), F_cur = (0 at 1, 1 at 2): W = 0.5 · (2 − 1) = 0.5, KS D = 0.5; std of ref = 0.5.
	assert.equal(
		columnDrift(r, c, { method: "wasserstein", minRows: 1 }).statistic,
		1,
	);
	assert.ok(r.kind === "numeric" && c.kind === "numeric");
	assert.equal(ksTest(r, c).d, 0.5);
});
