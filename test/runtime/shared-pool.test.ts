// SharedOnnxPool: every fixture on two shared worker threads gives its golden outputs; removing one model
// leaves the others serving.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords } from "../../src/codec/table.ts";
import { loadBundle, type Model } from "../../src/model.ts";
import { SharedOnnxPool } from "../../src/runtime/onnx/shared-pool.ts";
import {
	assertOutputMatches,
	bundleDir,
	FIXTURES,
	golden,
} from "../helpers/fixtures.ts";

let pool: SharedOnnxPool;
const models = new Map<string, Model>();

before(async () => {
	pool = await SharedOnnxPool.start(2);
	for (const name of FIXTURES)
		models.set(
			name,
			await loadBundle(await readBundle(bundleDir(name)), {
				mode: "pool",
				shared: pool,
			}),
		);
});
after(async () => {
	for (const m of models.values()) await m.close();
	await pool.close();
});

async function check(name: string): Promise<void> {
	const m = models.get(name) as Model;
	const g = golden(name);
	const { tensors, errors } = encodeRecords(m.plan, g.records);
	assert.deepEqual(errors, []);
	for (const o of await m.predict(tensors))
		assertOutputMatches(
			name,
			o.name,
			o.data as ArrayLike<unknown>,
			g.expected[o.name] as number[],
		);
}

it("every fixture, loaded side by side on two shared workers, matches its golden outputs", async () => {
	assert.equal(pool.workers, 2);
	assert.equal(pool.models, FIXTURES.length);
	// Concurrently, so calls of different models interleave on the same threads.
	await Promise.all(FIXTURES.flatMap((n) => [check(n), check(n)]));
});

it("closing one model removes it from every worker; the others keep answering", async () => {
	const [first, ...rest] = FIXTURES;
	const m = models.get(first as string) as Model;
	await m.close();
	models.delete(first as string);
	assert.equal(pool.models, FIXTURES.length - 1);
	await assert.rejects(
		m.predict(encodeRecords(m.plan, golden(first as string).records).tensors),
		/unloaded|closed/,
	);
	await Promise.all(rest.map((n) => check(n)));
});
