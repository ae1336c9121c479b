// Profiles: merge(a, b) = profile(a ∪ b), the published format, and the reference profile in a bundle.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { initBundle } from "../../src/cli/bundle.ts";
import { loadModel } from "../../src/model.ts";
import {
	addValue,
	layoutOf,
	mergeProfiles,
	ProfileAccumulator,
	quantileOf,
	type ReferenceColumn,
	referenceProfile,
} from "../../src/monitor/profile/build.ts";
import {
	parseProfile,
	profileJsonSchema,
	stringifyProfile,
} from "../../src/monitor/profile/format.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { CLI, REPO } from "../helpers/fixtures.ts";
import { bundleWithReference, csv, rows } from "./synth.ts";

const NUMERIC = ["bmi", "s1", "s2", "s3", "s4", "s5", "s6"];

function columnsOf(data: Record<string, unknown>[]): ReferenceColumn[] {
	const names = Object.keys(data[0] ?? {});
	return names.map((name) => ({
		name,
		kind: NUMERIC.includes(name) ? "numeric" : "categorical",
		values: data.map((r) => r[name]),
	}));
}

/** A live profile of `data` on `reference`'s layout (what the monitor hook builds). */
function live(
	reference: ReturnType<typeof referenceProfile>,
	data: Record<string, unknown>[],
) {
	const acc = new ProfileAccumulator(layoutOf(reference));
	for (const r of data) {
		for (const [k, a] of acc.features) addValue(a, r[k]);
		acc.rows++;
	}
	return acc.profile();
}

test("merging two live profiles equals profiling the union (counts, histograms, categories); the sketch stays within 1%", () => {
	const reference = referenceProfile(800, columnsOf(rows(800, 1)), []);
	const a = rows(300, 2, { mean: { bmi: 0.5 } });
	const b = rows(500, 3, { male: 0.8 });
	const ab = live(reference, [...a, ...b]);
	const merged = mergeProfiles(live(reference, a), live(reference, b));
	assert.equal(merged.rows, 800);
	for (const [name, col] of Object.entries(ab.features)) {
		const m = merged.features[name];
		assert.ok(m, name);
		if (col.kind === "numeric" && m.kind === "numeric") {
			assert.deepEqual(m.histogram, col.histogram, name);
			assert.equal(m.count, col.count);
			assert.equal(m.min, col.min);
			assert.equal(m.max, col.max);
			assert.ok(Math.abs(m.sum - col.sum) < 1e-6 * Math.abs(col.sum));
			for (const q of [0.1, 0.5, 0.9]) {
				const x = quantileOf(m, q) as number;
				const y = quantileOf(col, q) as number;
				assert.ok(
					Math.abs(x - y) <= 0.02 * Math.abs(y),
					`${name} q${q}: ${x} vs ${y}`,
				);
			}
		} else assert.deepEqual(m, col, name);
	}
	// The sketch's median is within its 1% relative accuracy of the exact median.
	const bmi = [...a, ...b].map((r) => r.bmi as number).sort((x, y) => x - y);
	const exact = bmi[Math.floor(0.5 * (bmi.length - 1))] as number;
	const col = merged.features.bmi;
	assert.ok(col?.kind === "numeric");
	assert.ok(
		Math.abs((quantileOf(col, 0.5) as number) - exact) <= 0.011 * exact,
	);
});

test("a profile round-trips through JSON; an inconsistent one is refused naming the field", () => {
	const p = referenceProfile(200, columnsOf(rows(200, 4)), []);
	assert.deepEqual(parseProfile(stringifyProfile(p)), p);
	const bad = JSON.parse(stringifyProfile(p));
	bad.features.bmi.histogram.counts.pop();
	assert.throws(
		() => parseProfile(JSON.stringify(bad), "p.json"),
		/p\.json is inconsistent:[\s\S]*features\.bmi\.histogram/,
	);
	assert.throws(
		() => parseProfile('{"format":"other"}', "p.json"),
		/MLSHIP|not a profile/,
	);
	assert.throws(() => parseProfile("{", "p.json"), /not valid JSON/);
});

test("docs/profile.schema.json is the schema the code validates with", async () => {
	const published = JSON.parse(
		await readFile(join(REPO, "docs/profile.schema.json"), "utf8"),
	);
	assert.deepEqual(
		published,
		profileJsonSchema(),
		"regenerate: node scripts/profile-schema.ts",
	);
});

test("bundle init --reference: profile.json with its sha256 in the manifest, features and the model's outputs; registered and read back verified", async () => {
	const { dir } = await bundleWithReference(rows(400, 5));
	const b = await readBundle(dir);
	assert.equal(b.manifest.profile?.path, "profile.json");
	const p = parseProfile(b.files.get("profile.json") as Uint8Array);
	assert.equal(p.rows, 400);
	assert.deepEqual(Object.keys(p.features).sort(), [
		"age_band",
		"bmi",
		"bp_band",
		"s1",
		"s2",
		"s3",
		"s4",
		"s5",
		"s6",
		"sex",
	]);
	assert.equal(p.features.sex?.kind, "categorical");
	assert.equal(p.features.bp_band?.kind, "categorical"); // integer with listed categories
	assert.equal(p.features.bmi?.kind, "numeric");
	assert.equal(p.outputs.variable?.kind, "numeric");
	assert.equal(p.outputs.variable?.count, 400);
	const store = await openRegistry("sqlite::memory:");
	try {
		const v = await store.register(b);
		const back = await store.openBundle(v);
		assert.deepEqual(
			back.files.get("profile.json"),
			b.files.get("profile.json"),
		);
	} finally {
		await store.close();
	}
	// The model loads with it (the instance carries the parsed reference for the monitor hook).
	const m = await loadModel(dir);
	assert.equal(m.reference?.rows, 400);
	await m.close();
});

test("a corrupted profile is an integrity error when the bundle is opened; a reference without the features is an error naming them", async () => {
	const { dir, csvPath } = await bundleWithReference(rows(100, 6));
	const path = join(dir, "profile.json");
	const text = await readFile(path, "utf8");
	await writeFile(path, text.replace('"rows":100', '"rows":101'));
	await assert.rejects(readBundle(dir), (e: Error & { code?: string }) => {
		assert.equal(e.code, "MLSHIP_INTEGRITY");
		assert.match(e.message, /sha256 of 'profile\.json'/);
		return true;
	});
	const partial = join(dir, "..", "partial.csv");
	await writeFile(
		partial,
		csv(rows(10, 7).map(({ bmi: _b, s5: _s, ...r }) => r)),
	);
	await assert.rejects(
		initBundle(dir, { reference: partial }),
		/no columns 'bmi', 's5' for the model's features/,
	);
	assert.ok(csvPath);
});

test("models show summarizes the reference profile (text and --json); a profile corrupted in the registry is an integrity error", async () => {
	const { dir } = await bundleWithReference(rows(300, 8));
	const db = join(dir, "..", "registry.db");
	const cli = (...args: string[]) =>
		spawnSync(
			process.execPath,
			[CLI, "models", ...args, "--registry", `sqlite:${db}`],
			{ encoding: "utf8" },
		);
	assert.equal(cli("register", dir).status, 0);
	const text = cli("show", "diabetes-cats-ridge");
	assert.equal(text.status, 0, text.stderr);
	assert.match(text.stdout, /reference profile: 300 rows/);
	assert.match(
		text.stdout,
		/bmi {2}numeric {2}300 {2}min [\d.]+ · p50 [\d.]+ · max [\d.]+/,
	);
	assert.match(text.stdout, /sex {2}categorical {2}300 {2}(female|male) \d+/);
	const json = JSON.parse(
		cli("show", "diabetes-cats-ridge", "--json").stdout,
	) as {
		profile_summary: { rows: number; outputs: { name: string }[] };
	};
	assert.equal(json.profile_summary.rows, 300);
	assert.deepEqual(
		json.profile_summary.outputs.map((o) => o.name),
		["variable"],
	);
	const sql = new DatabaseSync(db);
	// The stored profile.json (files are stored once per sha256; the manifest names its digest).
	const { manifest } = sql
		.prepare("SELECT manifest FROM versions WHERE name = 'diabetes-cats-ridge'")
		.get() as { manifest: string };
	const digest = (JSON.parse(manifest) as { profile: { sha256: string } })
		.profile.sha256;
	sql
		.prepare("UPDATE blobs SET bytes = CAST('{}' AS BLOB) WHERE sha256 = ?")
		.run(digest);
	sql.close();
	const bad = cli("show", "diabetes-cats-ridge");
	assert.notEqual(bad.status, 0);
	assert.match(bad.stderr, /sha256 of 'profile\.json'/);
});
