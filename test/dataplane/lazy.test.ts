// Many models: lazy loading on first request (once, however many ask at once) and LRU eviction under a limit.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let dp: DataPlane;
const loads = async (m: string) =>
	Number(
		(await dp.metrics()).body.match(
			new RegExp(`mlship_model_loads_total\\{model="${m}"\\} (\\d+)`),
		)?.[1] ?? 0,
	);
const state = (m: string) => dp.repositoryIndex().find((e) => e.name === m);
const ask = (m: string, fixture: string) =>
	dp.predict(m, undefined, golden(fixture).records.slice(0, 2));

before(async () => {
	dp = await createDataPlane({
		models: [
			{ name: "a", source: bundleDir("iris-logreg") },
			{ name: "b", source: bundleDir("wine-xgb") },
			{ name: "c", source: bundleDir("diabetes-rf") },
		],
		lazy: true,
		maxLoadedModels: 2,
		processMetrics: false,
	});
});
after(async () => {
	await dp.close();
});

it("nothing is loaded until asked; the server is ready, the models are not", () => {
	assert.equal(dp.ready(), true);
	for (const m of ["a", "b", "c"]) {
		assert.equal(dp.modelReady(m), false);
		assert.deepEqual(state(m), {
			name: m,
			version: "",
			state: "UNLOADED",
			reason: "loads on its first request",
		});
	}
});

it("20 concurrent first requests load the model once and all get answers", async () => {
	const results = await Promise.all(
		Array.from({ length: 20 }, () => ask("a", "iris-logreg")),
	);
	assert.ok(
		results.every(
			(r) => r.predictions.length === 2 && r.predictions[0]?.label === "setosa",
		),
	);
	assert.equal(await loads("a"), 1);
	assert.equal(dp.modelReady("a"), true);
});

it("a third model evicts the least recently used one, which loads again when asked", async () => {
	await ask("b", "wine-xgb");
	await ask("a", "iris-logreg"); // a is now more recent than b
	await ask("c", "diabetes-rf");
	assert.equal(dp.modelReady("b"), false, "b was least recently used");
	assert.match(
		state("b")?.reason ?? "",
		/evicted \(least recently used, max_loaded_models\)/,
	);
	assert.equal(dp.modelReady("a"), true);
	assert.equal(dp.modelReady("c"), true);
	const r = await ask("b", "wine-xgb");
	assert.equal(r.predictions.length, 2);
	assert.equal(await loads("b"), 2);
	assert.equal(
		dp.modelReady("a"),
		false,
		"a was least recently used when b came back",
	);
	const text = (await dp.metrics()).body;
	assert.match(text, /mlship_models_loaded 2/);
	assert.match(text, /mlship_model_evictions_total\{model="b"\} 1/);
});

it("without lazy loading, a model evicted by max_loaded_models loads again on its next request and the server stays ready", async () => {
	const eager = await createDataPlane({
		models: [
			{ name: "a", source: bundleDir("iris-logreg") },
			{ name: "b", source: bundleDir("wine-xgb") },
			{ name: "c", source: bundleDir("diabetes-rf") },
		],
		maxLoadedModels: 2,
		processMetrics: false,
	});
	try {
		assert.deepEqual(eager.loadErrors, []);
		const evicted = eager
			.repositoryIndex()
			.filter((e) => e.state === "UNLOADED");
		assert.equal(evicted.length, 1, "one of three models was evicted");
		const name = (evicted[0] as { name: string }).name;
		assert.match(
			(evicted[0] as { reason: string }).reason,
			/evicted .*loads again on its next request/,
		);
		assert.equal(eager.ready(), true, "an evicted model does not unready");
		const fixture = { a: "iris-logreg", b: "wine-xgb", c: "diabetes-rf" }[
			name
		] as string;
		const r = await eager.predict(
			name,
			undefined,
			golden(fixture).records.slice(0, 2),
		);
		assert.equal(r.predictions.length, 2);
		assert.equal(eager.modelReady(name), true);
		assert.equal(eager.ready(), true);
	} finally {
		await eager.close();
	}
});
