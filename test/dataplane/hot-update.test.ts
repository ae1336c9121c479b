// Hot updates from the registry: an alias move is served with no failed request, and a broken version never replaces a working one.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import {
	createDataPlane,
	type ModelEvent,
} from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let dir: string;
let store: ModelStore;
let dp: DataPlane;
const events: (ModelEvent & { t: number })[] = [];

async function until(
	cond: () => boolean,
	what: string,
	refresh?: () => Promise<void>,
): Promise<void> {
	for (let i = 0; i < 500; i++) {
		await refresh?.();
		if (cond()) return;
		await new Promise((r) => setTimeout(r, 10));
	}
	assert.fail(`timed out waiting for ${what}`);
}

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-hot-"));
	store = await openRegistry(`sqlite:${join(dir, "r.db")}`);
	const b = await readBundle(bundleDir("iris-logreg"));
	await store.register(b, { aliases: ["production"] }); // v1
	await store.register(b); // v2
	await store.register(b); // v3, corrupted below
	dp = await createDataPlane({
		models: [{ name: "iris", source: "iris-logreg@production" }],
		registry: store,
		processMetrics: false,
		onEvent: (e) => events.push({ ...e, t: performance.now() }),
	});
});
after(async () => {
	await dp?.close();
	await store?.close();
	await rm(dir, { recursive: true, force: true });
});

it("serves the alias's version, then follows 20 alias moves under load with zero failed requests", async () => {
	assert.equal(dp.modelMetadata("iris").version, "1");
	const records = golden("iris-logreg").records.slice(0, 4);
	const labels = ["setosa", "versicolor", "virginica"];
	const want = (golden("iris-logreg").expected.label as number[])
		.slice(0, 4)
		.map((k) => labels[k]);
	const served: { version: string; start: number; end: number }[] = [];
	const failures: string[] = [];
	let stop = false;
	const client = async () => {
		while (!stop) {
			const start = performance.now();
			try {
				const r = await dp.predict("iris", undefined, records);
				assert.deepEqual(
					r.predictions.map((p) => p.label),
					want,
				);
				served.push({
					version: r.model_version,
					start,
					end: performance.now(),
				});
			} catch (err) {
				failures.push(String(err));
			}
		}
	};
	const clients = Array.from({ length: 4 }, client);
	for (let i = 0; i < 20; i++) {
		const target = i % 2 === 0 ? 2 : 1;
		await store.setAlias("iris-logreg", "production", target);
		await until(
			() => dp.modelMetadata("iris").version === String(target),
			`version ${target}`,
		);
		await new Promise((r) => setTimeout(r, 15));
	}
	stop = true;
	await Promise.all(clients);
	assert.deepEqual(failures, []);
	assert.ok(served.length > 100, `only ${served.length} requests`);
	// Every response came from a version that was live during the request: the one served when it started
	// (the old version finishes its in-flight work), or one swapped in while it ran.
	const swaps = events.filter((e) => e.type === "updated");
	for (const s of served) {
		const atStart = [...swaps].reverse().find((e) => e.t <= s.start)?.to ?? "1";
		const during = swaps
			.filter((e) => e.t > s.start && e.t <= s.end)
			.map((e) => e.to);
		assert.ok(
			[atStart, ...during].includes(s.version),
			`response from v${s.version}; live: v${atStart}, swapped in: ${during}`,
		);
	}
	assert.ok(new Set(served.map((s) => s.version)).size === 2);
	assert.equal(events.filter((e) => e.type === "updated").length, 20);
	// The counter moves once the old version has drained, just after the swap: wait for it.
	let text = "";
	await until(
		() =>
			/mlship_model_updates_total\{model="iris",outcome="ok"\} 20\n/.test(text),
		"20 counted updates",
		async () => {
			text = (await dp.metrics()).body;
		},
	);
});

it("a version whose artifact is corrupted is refused; the working version keeps serving", async () => {
	const db = new DatabaseSync(join(dir, "r.db"));
	// The three versions share one stored file (same bytes): version 3 is made to name a file of its own, whose
	// stored bytes do not match its digest.
	const fake = "f".repeat(64);
	const { manifest } = db
		.prepare(
			"SELECT manifest FROM versions WHERE name = 'iris-logreg' AND version = 3",
		)
		.get() as { manifest: string };
	const m = JSON.parse(manifest) as { artifact: { sha256: string } };
	m.artifact.sha256 = fake;
	db.prepare(
		"UPDATE versions SET manifest = ?, sha256 = ? WHERE name = 'iris-logreg' AND version = 3",
	).run(JSON.stringify(m), fake);
	db.prepare("INSERT INTO blobs (sha256, bytes) VALUES (?, ?)").run(
		fake,
		new Uint8Array([1, 2, 3]),
	);
	db.close();
	const before = dp.modelMetadata("iris").version;
	await store.setAlias("iris-logreg", "production", 3);
	await until(
		() => events.some((e) => e.type === "update_failed" && e.to === "3"),
		"the failed update",
	);
	assert.equal(dp.modelMetadata("iris").version, before);
	const idx = dp.repositoryIndex().find((e) => e.name === "iris");
	assert.equal(idx?.state, "READY");
	assert.match(
		idx?.reason ?? "",
		/update to version 3 failed: .*sha256.*still serving version/,
	);
	const r = await dp.predict(
		"iris",
		undefined,
		golden("iris-logreg").records.slice(0, 1),
	);
	assert.equal(r.model_version, before);
	assert.match(
		(await dp.metrics()).body,
		/mlship_model_updates_total\{model="iris",outcome="failed"\} 1/,
	);
});

it("a version that loads but fails its warm-up is refused; the working version keeps serving", async () => {
	const good = await readBundle(bundleDir("diabetes-sex-ridge"));
	// Same artifact, but the manifest claims a category the model's one-hot encoder has never seen: the
	// warm-up row uses it, onnxruntime fails, and that version must never serve.
	const bad = structuredClone(good);
	for (const f of bad.manifest.features ?? [])
		if (f.categories) f.categories = ["martian", ...f.categories];
	// ...and an example row with it: a failed warm-up on the bundle's own examples keeps a version out (one on a
	// synthesized row only warns: test/dataplane/warmup.test.ts).
	bad.manifest.examples = [
		{ ...golden("diabetes-sex-ridge").records[0], sex: "martian" },
	];
	await store.register(good, { aliases: ["production"] }); // ridge v1
	await store.register(bad); // ridge v2
	const d = await createDataPlane({
		models: [{ name: "ridge", source: "diabetes-sex-ridge@production" }],
		registry: store,
		processMetrics: false,
		onEvent: (e) => events.push({ ...e, t: performance.now() }),
	});
	try {
		assert.equal(d.modelMetadata("ridge").version, "1");
		await store.setAlias("diabetes-sex-ridge", "production", 2);
		await until(
			() =>
				events.some(
					(e) =>
						e.type === "update_failed" && e.model === "ridge" && e.to === "2",
				),
			"the refused update",
		);
		assert.equal(d.modelMetadata("ridge").version, "1");
		assert.match(
			d.repositoryIndex()[0]?.reason ?? "",
			/update to version 2 failed: version 2 of 'ridge' failed its warm-up/,
		);
		const r = await d.predict(
			"ridge",
			undefined,
			golden("diabetes-sex-ridge").records.slice(0, 3),
		);
		assert.equal(r.model_version, "1");
		assert.equal(r.predictions.length, 3);
	} finally {
		await d.close();
	}
});

it("a new version warms up on its bundle's own examples: examples it cannot score keep it out, good ones let it in", async () => {
	const good = await readBundle(bundleDir("diabetes-sex-ridge"));
	const rows = golden("diabetes-sex-ridge").records.slice(0, 3);
	const withBad = structuredClone(good);
	withBad.manifest.examples = [...rows, { ...rows[0], sex: "martian" }];
	const withGood = structuredClone(good);
	withGood.manifest.examples = rows;
	await store.register(good, { name: "ridge-ex", aliases: ["production"] }); // v1
	await store.register(withBad, { name: "ridge-ex" }); // v2
	await store.register(withGood, { name: "ridge-ex" }); // v3
	const d = await createDataPlane({
		models: [{ name: "rx", source: "ridge-ex@production" }],
		registry: store,
		processMetrics: false,
		onEvent: (e) => events.push({ ...e, t: performance.now() }),
	});
	try {
		await store.setAlias("ridge-ex", "production", 2);
		await until(
			() =>
				events.some(
					(e) => e.type === "update_failed" && e.model === "rx" && e.to === "2",
				),
			"the refused update",
		);
		assert.equal(d.modelMetadata("rx").version, "1");
		assert.match(
			d.repositoryIndex().find((e) => e.name === "rx")?.reason ?? "",
			/failed its warm-up: bundle example row 4, column .sex.: "martian"/,
		);
		await store.setAlias("ridge-ex", "production", 3);
		await until(
			() => d.modelMetadata("rx").version === "3",
			"version 3 with good examples",
		);
	} finally {
		await d.close();
	}
});
