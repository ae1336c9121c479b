// Traces of the model lifecycle: a hot update from the registry exports a `model load` span (the new version) with
// its `model swap` child (swap in, drain the old one), to an OTLP/HTTP receiver this test starts.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import { startTracing } from "../../src/monitor/tracing.ts";
import { tracer } from "../../src/protocol/trace.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { childrenOf, spanAttr, startOtlpReceiver } from "../helpers/otlp.ts";

const dir = await mkdtemp(join(tmpdir(), "mlship-trace-swap-"));
after(() => rm(dir, { recursive: true, force: true }));

it("a hot update is a model load span with a model swap child; tracing off again leaves no tracer", async () => {
	const receiver = await startOtlpReceiver();
	const store = await openRegistry(`sqlite:${join(dir, "r.db")}`);
	const stop = await startTracing(receiver.endpoint);
	try {
		const b = await readBundle(bundleDir("iris-logreg"));
		await store.register(b, { aliases: ["production"] }); // v1
		await store.register(b); // v2
		const dp = await createDataPlane({
			models: [{ name: "iris", source: "iris-logreg@production" }],
			registry: store,
			processMetrics: false,
		});
		try {
			await store.setAlias("iris-logreg", "production", 2);
			for (let i = 0; i < 1000 && dp.modelMetadata("iris").version !== "2"; i++)
				await new Promise((r) => setTimeout(r, 20));
			assert.equal(dp.modelMetadata("iris").version, "2");
		} finally {
			await dp.close();
		}
	} finally {
		await stop();
		await store.close();
		await receiver.close();
	}
	assert.equal(tracer(), undefined);
	const loads = receiver.spans.filter((s) => s.name === "model load");
	assert.deepEqual(loads.map((s) => spanAttr(s, "mlship.version")).sort(), [
		"1",
		"2",
	]);
	const first = loads.find((s) => spanAttr(s, "mlship.version") === "1");
	const second = loads.find((s) => spanAttr(s, "mlship.version") === "2");
	assert.ok(first && second);
	assert.equal(
		childrenOf(receiver.spans, first).size,
		0,
		"the first load swaps nothing",
	);
	const swap = childrenOf(receiver.spans, second).get("model swap");
	assert.ok(swap, "the update's swap");
	assert.equal(spanAttr(swap, "mlship.from_version"), "1");
	assert.equal(spanAttr(second, "mlship.model"), "iris");
});
