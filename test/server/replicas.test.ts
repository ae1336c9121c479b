// Two `mlship serve` processes on one PostgreSQL registry pick up an alias move and a new version within 1 s.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { type Served, serve } from "../helpers/serve-process.ts";

let pg: PostgresServer;
let url: string;
let store: ModelStore;
const replicas: Served[] = [];

before(async () => {
	pg = await startPostgres();
	url = await createDatabase(pg.url, uniqueDatabaseName("replicas"));
	store = await openRegistry(url);
	const b = await readBundle(bundleDir("iris-logreg"));
	await store.register(b, { aliases: ["production"] }); // v1
	await store.register(b); // v2
	for (let i = 0; i < 2; i++)
		replicas.push(
			await serve([
				"--registry",
				url,
				"-m",
				"iris-logreg@production:prod",
				"-m",
				"iris-logreg:newest",
				"--log-level",
				"info",
			]),
		);
});
after(async () => {
	for (const r of replicas) {
		r.proc.kill("SIGTERM");
		await r.exit;
	}
	await store?.close();
	await pg?.stop();
});

async function servedVersion(r: Served, model: string): Promise<string> {
	const res = await fetch(`${r.http}/v2/models/${model}`);
	return ((await res.json()) as { versions: string[] }).versions[0] as string;
}

/** Milliseconds until every replica serves `version` of `model` (polled every 10 ms, up to 5 s). */
async function timeUntilServed(
	model: string,
	version: string,
): Promise<number> {
	const t0 = performance.now();
	for (;;) {
		const seen = await Promise.all(
			replicas.map((r) => servedVersion(r, model)),
		);
		if (seen.every((v) => v === version)) return performance.now() - t0;
		if (performance.now() - t0 > 5000)
			assert.fail(
				`after 5 s the replicas serve ${seen} of ${model}, not ${version}`,
			);
		await new Promise((r) => setTimeout(r, 10));
	}
}

it("both replicas start on the versions the references name", async () => {
	for (const r of replicas) {
		assert.equal(await servedVersion(r, "prod"), "1");
		assert.equal(await servedVersion(r, "newest"), "2");
	}
});

it("an alias moved in the registry is served by both replicas within 1 s", async () => {
	await store.setAlias("iris-logreg", "production", 2);
	const ms = await timeUntilServed("prod", "2");
	assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
});

it("a newly registered version is served by both replicas within 1 s", async () => {
	await store.register(await readBundle(bundleDir("iris-logreg"))); // v3
	const ms = await timeUntilServed("newest", "3");
	assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
	assert.equal(
		await servedVersion(replicas[0] as Served, "prod"),
		"2",
		"the alias did not move",
	);
});
