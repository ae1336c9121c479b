// Two `mlship serve` processes on one PostgreSQL registry pick up an alias move and a new version within 1 s, and
// serve continuous load from four clients through 20 alias moves with zero failed requests: every response comes
// from the version that replica was serving at some moment of that request (its swap times come from its own
// "model updated" logs).
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
import { bundleDir, golden } from "../helpers/fixtures.ts";
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

interface Response {
	replica: number;
	version: string;
	start: number;
	end: number;
}

it("20 alias moves under load from 4 clients: zero failed requests, every response from a version live during it", async (t) => {
	const g = golden("iris-logreg");
	const records = g.records.slice(0, 8);
	const names = ["setosa", "versicolor", "virginica"];
	const want = (g.expected.label as number[]).slice(0, 8).map((k) => names[k]);
	const responses: Response[] = [];
	const failures: string[] = [];
	let stop = false;
	const client = async (replica: number) => {
		const url = `${(replicas[replica] as Served).http}/v2/models/prod/predict`;
		while (!stop) {
			const start = Date.now();
			try {
				const res = await fetch(url, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: JSON.stringify({ instances: records }),
				});
				const body = (await res.json()) as {
					model_version?: string;
					predictions?: { label: string }[];
					error?: string;
				};
				if (res.status !== 200)
					failures.push(`${res.status} ${body.error ?? ""}`);
				else {
					assert.deepEqual(
						body.predictions?.map((p) => p.label),
						want,
					);
					responses.push({
						replica,
						version: body.model_version as string,
						start,
						end: Date.now(),
					});
				}
			} catch (err) {
				failures.push(String(err));
			}
		}
	};
	// The version each replica serves when the load starts (earlier tests moved the alias).
	const initial = await Promise.all(
		replicas.map((r) => servedVersion(r, "prod")),
	);
	const loadStart = Date.now();
	const clients = [0, 0, 1, 1].map((r) => client(r));
	await new Promise((r) => setTimeout(r, 200));
	let target = Number(initial[0]);
	for (let i = 0; i < 20; i++) {
		target = target === 1 ? 2 : 1;
		await store.setAlias("iris-logreg", "production", target);
		await new Promise((r) => setTimeout(r, 250));
	}
	// Let both replicas settle on the last move, then stop the load.
	for (const r of replicas)
		for (let i = 0; ; i++) {
			const m = (await (await fetch(`${r.http}/v2/models/prod`)).json()) as {
				versions: string[];
			};
			if (m.versions[0] === String(target)) break;
			if (i > 200) assert.fail("a replica did not reach the final version");
			await new Promise((res) => setTimeout(res, 10));
		}
	stop = true;
	await Promise.all(clients);

	assert.deepEqual(failures, [], "no request failed");
	assert.ok(responses.length > 100, `only ${responses.length} responses`);
	for (const [i, r] of replicas.entries()) {
		// The swaps this replica made, from its own logs: at `time` it started serving `to`.
		const swaps = r
			.logs()
			.filter(
				(l) =>
					l.msg === "model updated" &&
					l.model === "prod" &&
					(l.time as number) >= loadStart,
			)
			.map((l) => ({ time: l.time as number, to: l.to as string }));
		assert.ok(
			swaps.length >= 5,
			`replica ${i} applied ${swaps.length} of 20 moves (moves may coalesce, not this many)`,
		);
		const servingAt = (at: number) => {
			let v = initial[i] as string;
			for (const s of swaps) if (s.time <= at) v = s.to;
			return v;
		};
		t.diagnostic(
			`replica ${i}: ${swaps.length} swaps, ${responses.filter((x) => x.replica === i).length} responses`,
		);
		for (const res of responses.filter((x) => x.replica === i)) {
			// Live during the request: the version at its start, or one swapped in before it ended (1 ms clock slack).
			const live = new Set([servingAt(res.start - 1)]);
			for (const s of swaps)
				if (s.time >= res.start - 1 && s.time <= res.end + 1) live.add(s.to);
			assert.ok(
				live.has(res.version),
				`replica ${i}: response ${res.start}–${res.end} came from version ${res.version}, live then: ${[...live]}`,
			);
		}
		const versions = new Set(
			responses.filter((x) => x.replica === i).map((x) => x.version),
		);
		assert.deepEqual([...versions].sort(), ["1", "2"]);
	}
});
