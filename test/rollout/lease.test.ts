// Rollout leases on a SQLite registry: exactly one replica drives a rollout; another takes over once the lease
// expires; a new agent (a restart) resumes from the stored step. Checks use injected clocks and published totals.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore, VersionTotals } from "../../src/registry/types.ts";
import { figures, RolloutAgent } from "../../src/rollout/agent.ts";
import { bundleDir } from "../helpers/fixtures.ts";

let dir: string;
let store: ModelStore;
let now = 1_000_000;

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-lease-"));
	store = await openRegistry(`sqlite:${join(dir, "r.db")}`);
	const b = await readBundle(bundleDir("iris-logreg"));
	await store.register(b, { name: "churn", aliases: ["production"] });
	await store.register(b, { name: "churn" });
});
after(async () => {
	await store.close();
	await rm(dir, { recursive: true, force: true });
});

/** An agent whose replica serves `requests` ok answers of version 2 (cumulative), all in the 1 ms bucket. */
function agent(replica: string, served: { requests: number }) {
	return new RolloutAgent({
		replica,
		store: async () => store,
		totals: async () => {
			const buckets = new Array(17).fill(0);
			buckets[3] = served.requests;
			const totals: VersionTotals = {
				requests: served.requests,
				errors: 0,
				buckets,
			};
			return [{ name: "churn", version: 2, totals }];
		},
		leaseMs: 1000,
		now: () => now,
	});
}

it("one replica holds the lease; after it expires another drives; a new agent resumes at the stored step", async () => {
	await store.startRollout(
		{
			name: "churn",
			alias: "production",
			to: 2,
			steps: [10, 50, 100],
			intervalMs: 100,
			maxErrorRate: 0.01,
			minRequests: 5,
			failures: 3,
		},
		now,
	);
	const a = { requests: 0 };
	const b = { requests: 0 };
	const A = agent("A", a);
	const B = agent("B", b);
	await A.tick();
	assert.equal((await store.rollout("churn", "production"))?.leaseOwner, "A");
	assert.deepEqual(
		await store.leaseRollouts("B", 1000, now),
		[],
		"B cannot take a held lease",
	);
	// Both replicas served version 2; the check sums them (3 + 3 ≥ 5) and A advances the step.
	a.requests = 3;
	b.requests = 3;
	now += 150;
	await B.tick(); // publishes B's totals; the lease is A's: B does not check
	assert.equal((await store.rollout("churn", "production"))?.step, 0);
	await A.tick();
	const r = await store.rollout("churn", "production");
	assert.equal(r?.step, 1, "A advanced to 50%");
	assert.deepEqual(
		(await store.route("churn", "production"))?.policy.split?.map(
			(s) => s.weight,
		),
		[50, 50],
	);
	// A stops (dies): after its lease expires B drives, from the stored step.
	now += 1500;
	a.requests = 3; // A's published totals stay as they were
	b.requests = 20;
	await B.tick();
	const after = await store.rollout("churn", "production");
	assert.equal(after?.leaseOwner, "B");
	assert.equal(
		after?.state,
		"promoted",
		"B's check passed at 50%: the last step promotes",
	);
	assert.equal((await store.get("churn@production")).version, 2);
	const steps = (await store.rolloutEvents("churn", "production"))
		.filter((e) => e.type !== "waiting")
		.map((e) => e.type);
	assert.deepEqual(steps, ["started", "step", "promoted"], "each move once");
});

it("p99 is the upper bound of the bucket holding the 99th percentile", () => {
	const buckets = new Array(17).fill(0);
	buckets[3] = 98; // ≤ 1 ms
	buckets[8] = 2; // ≤ 50 ms
	assert.equal(figures({ requests: 100, errors: 1, buckets }).p99Ms, 50);
	buckets[3] = 199; // nearest rank: the 198th of 200 is fast
	buckets[8] = 1;
	assert.equal(figures({ requests: 200, errors: 0, buckets }).p99Ms, 1);
	assert.equal(figures({ requests: 10, errors: 1, buckets }).errorRate, 0.1);
});
