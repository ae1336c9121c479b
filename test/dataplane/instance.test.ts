// The per-version model instance: hooks see every successful prediction (and cost nothing when absent), the
// observer gets each request's outcome, leases hold an instance open, and SQL's synchronous entry validates alike.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import {
	loadInstance,
	type ModelInstance,
	type Outcome,
	type PredictCall,
} from "../../src/dataplane/instance.ts";
import { followModel } from "../../src/model.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const records = golden("iris-logreg").records.slice(0, 3);
const outcomes: Outcome[] = [];
let m: ModelInstance;

before(async () => {
	m = await loadInstance(await readBundle(bundleDir("iris-logreg")), {
		mode: "inline",
		observer: { done: (o) => outcomes.push(o) },
	});
});
after(async () => {
	await m.close();
});

it("a hook sees each successful prediction's inputs and outputs; removed, it sees no more; a throwing hook fails nothing", async () => {
	const seen: PredictCall[] = [];
	const off = m.addHook((c) => seen.push(c));
	const offBad = m.addHook(() => {
		throw new Error("a broken payload log");
	});
	const rows = await m.predict(records);
	assert.equal(rows.length, 3);
	assert.equal(seen.length, 1);
	assert.equal(seen[0]?.model, "iris-logreg");
	assert.equal(seen[0]?.inputs[0]?.shape[0], 3);
	assert.deepEqual(
		seen[0]?.outputs.map((o) => o.name),
		["label", "probabilities"],
	);
	await assert.rejects(m.predict([{ sepal_length: "x" }]));
	assert.equal(seen.length, 1, "a refused request is not a prediction");
	off();
	offBad();
	await m.predict(records);
	assert.equal(seen.length, 1);
});

it("the observer gets every request's outcome", async () => {
	outcomes.length = 0;
	await m.predict(records);
	await assert.rejects(m.predictTensors([]));
	assert.deepEqual(outcomes, ["ok", "invalid"]);
});

it("predictSync is refused unless the instance was loaded in blocking mode", () => {
	assert.throws(() => m.predictSync(m.encodeTable(records)), /mode 'blocking'/);
});

it("close waits for every lease; a closing instance gives no new lease", async () => {
	const other = await loadInstance(await readBundle(bundleDir("iris-logreg")), {
		mode: "inline",
	});
	const a = await other.lease();
	const b = await other.lease();
	let closed = false;
	const closing = other.close().then(() => {
		closed = true;
	});
	await assert.rejects(other.lease(), /unloaded/);
	// The leaseholders can still predict.
	assert.equal((await a.model.predict(records)).length, 3);
	a.release();
	a.release(); // twice is once
	await new Promise((r) => setImmediate(r));
	assert.equal(closed, false, "one lease is still held");
	b.release();
	await closing;
	assert.equal(closed, true);
});

it("a followed registry model leases its current instance and tells the caller's observer of batches and outcomes", async () => {
	const dir = await mkdtemp(join(tmpdir(), "mlship-follow-"));
	const store = await openRegistry(`sqlite:${join(dir, "r.db")}`);
	try {
		await store.register(await readBundle(bundleDir("iris-logreg")), {
			aliases: ["production"],
		});
		const seen: string[] = [];
		const f = await followModel("iris-logreg@production", {
			registry: store,
			mode: "inline",
			observer: {
				batch: (rows) => seen.push(`batch ${rows}`),
				done: (o) => seen.push(o),
			},
		});
		try {
			assert.equal(f.name, "iris-logreg");
			const { model, release } = await f.lease();
			assert.equal(model.version, 1);
			assert.equal((await model.predict(records)).length, 3);
			release();
			// The warm-up's batch comes first; it is not a request.
			assert.deepEqual(seen, ["batch 1", "batch 3", "ok"]);
		} finally {
			await f.close();
		}
	} finally {
		await store.close();
		await rm(dir, { recursive: true, force: true });
	}
});
