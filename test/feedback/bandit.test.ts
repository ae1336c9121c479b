// Bandits on live feedback, shared by two replicas (data planes) through one PostgreSQL registry: three Bernoulli
// arms (0.05, 0.07, 0.10) over 20,000 requests each for Thompson, ε-greedy and UCB1, then a restart of both replicas.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { betaSample } from "../../src/feedback/bandit.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { createRestServer } from "../../src/server/rest/index.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { prng } from "../helpers/random.ts";

const RATES: Record<string, number> = { "1": 0.05, "2": 0.07, "3": 0.1 };
const BEST = "3";
const N = 20_000;
const LAST = 5_000;
const ALGORITHMS = {
	thompson: "thompson",
	epsilon: "epsilon",
	ucb: "ucb1",
} as const;
const row = golden("iris-logreg").records[0] as Record<string, unknown>;

let pg: PostgresServer;
let url: string;
let store: ModelStore;
let planes: DataPlane[] = [];

async function openPlanes(seed: number): Promise<void> {
	planes = [];
	for (let i = 0; i < 2; i++)
		planes.push(
			await createDataPlane({
				models: Object.keys(ALGORITHMS).map((name) => ({
					name,
					source: `${name}@production`,
				})),
				registry: url,
				processMetrics: false,
				feedback: {},
				bandits: { syncMs: 100, random: prng(seed + i) },
			}),
		);
}

before(async () => {
	pg = await startPostgres();
	url = await createDatabase(pg.url, uniqueDatabaseName("bandit"));
	store = await openRegistry(url);
	const iris = await readBundle(bundleDir("iris-logreg"));
	for (const [name, algorithm] of Object.entries(ALGORITHMS)) {
		for (let v = 1; v <= 3; v++)
			await store.register(iris, {
				name,
				...(v === 1 ? { aliases: ["production"] } : {}),
			});
		await store.setRoute(name, "production", {
			bandit: {
				algorithm,
				arms: [1, 2, 3],
				...(algorithm === "epsilon" ? { epsilon: 0.1 } : {}),
			},
		});
	}
	for (let v = 1; v <= 3; v++)
		await store.register(iris, {
			name: "viarest",
			...(v === 1 ? { aliases: ["production"] } : {}),
		});
	await store.setRoute("viarest", "production", {
		bandit: { algorithm: "thompson", arms: [1, 2, 3] },
	});
	await openPlanes(1);
});
after(async () => {
	for (const dp of planes) await dp.close();
	await store?.close();
	await pg?.stop();
});

/**
 * `n` requests to `model`, alternating between the replicas, 8 in flight; each answer's version gets a Bernoulli
 * reward at its rate through the replica's feedback (the method POST /v2/models/{m}/feedback calls). Returns the
 * version of every request in order.
 */
async function simulate(
	model: string,
	n: number,
	seed: number,
	from = 0,
): Promise<string[]> {
	const reward = prng(seed);
	const out: string[] = new Array(n);
	let next = 0;
	await Promise.all(
		Array.from({ length: 8 }, async () => {
			while (next < n) {
				const i = next++;
				const dp = planes[i % 2] as DataPlane;
				const id = `${model}-${from + i}`;
				const res = await dp.predict(model, undefined, [row], {
					requestId: id,
				});
				out[i] = res.model_version;
				const r = reward() < (RATES[res.model_version] ?? 0) ? 1 : 0;
				dp.feedback?.(model, [{ id, reward: r }]);
			}
		}),
	);
	return out;
}

function share(versions: string[], v: string): number {
	return versions.filter((x) => x === v).length / versions.length;
}

const figures: Record<string, { lastBest: number; allBest: number }> = {};

it("Thompson sampling sends ≥ 80% of the last 5,000 of 20,000 requests to the best arm, learning from both replicas' feedback", async () => {
	const versions = await simulate("thompson", N, 11);
	const last = share(versions.slice(-LAST), BEST);
	figures.thompson = { lastBest: last, allBest: share(versions, BEST) };
	assert.ok(
		last >= 0.8,
		`best arm got ${(last * 100).toFixed(1)}% of the last ${LAST}`,
	);
});

it("ε-greedy (ε = 0.1) and UCB1 on the same arms (figures reported)", async () => {
	for (const model of ["epsilon", "ucb"]) {
		const versions = await simulate(model, N, 12);
		figures[model] = {
			lastBest: share(versions.slice(-LAST), BEST),
			allBest: share(versions, BEST),
		};
	}
	console.log(
		`bandit figures (share of requests to the best arm): ${JSON.stringify(figures)}`,
	);
	// ε-greedy explores ε/3 of the time on each arm; its greedy part must still have found the best arm.
	assert.ok(
		(figures.epsilon?.lastBest ?? 0) >= 0.5,
		JSON.stringify(figures.epsilon),
	);
	assert.ok((figures.ucb?.allBest ?? 0) > 1 / 3, JSON.stringify(figures.ucb));
});

it("the state survives a restart of both replicas: every reward is in the registry, and the reopened replicas keep choosing the best arm", async () => {
	for (const dp of planes) await dp.close();
	const stats = await store.armStats("thompson", "production");
	assert.equal(
		stats.reduce((a, s) => a + s.pulls, 0),
		N,
		"every reward of both replicas was flushed (additive updates, none lost)",
	);
	const best = stats.find((s) => s.version === 3);
	assert.ok(best && best.pulls > N / 2);
	await openPlanes(100);
	// A fresh bandit would spread its first 1,000 requests over the three arms; a restored one does not.
	const versions = await simulate("thompson", 1000, 13, N);
	const again = share(versions, BEST);
	assert.ok(
		again >= 0.8,
		`after the restart the best arm got ${(again * 100).toFixed(1)}%`,
	);
	for (const dp of planes) await dp.close();
	planes = [];
	const total = (await store.armStats("thompson", "production")).reduce(
		(a, s) => a + s.pulls,
		0,
	);
	assert.equal(total, N + 1000);
});

it("a Beta draw has the Beta distribution's mean", () => {
	const rnd = prng(5);
	let sum = 0;
	for (let i = 0; i < 20_000; i++) sum += betaSample(3, 7, rnd);
	assert.ok(Math.abs(sum / 20_000 - 0.3) < 0.01, `mean ${sum / 20_000}`);
	let small = 0;
	for (let i = 0; i < 20_000; i++) small += betaSample(0.5, 0.5, rnd);
	assert.ok(Math.abs(small / 20_000 - 0.5) < 0.02);
});

it("over HTTP: answers carry the version and id, POST /v2/models/{m}/feedback feeds the bandit, and the rewards reach the registry", async () => {
	const dp = await createDataPlane({
		models: [{ name: "viarest", source: "viarest@production" }],
		registry: url,
		processMetrics: false,
		feedback: {},
		bandits: { syncMs: 100, random: prng(21) },
	});
	const app = createRestServer(dp);
	await app.listen({ host: "127.0.0.1", port: 0 });
	const addr = app.server.address();
	const base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
	const versions: string[] = [];
	try {
		// Only version 3 ever pays: Thompson must move to it.
		for (let i = 0; i < 600; i++) {
			const res = await fetch(`${base}/v2/models/viarest/predict`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ instances: [row] }),
			});
			const id = res.headers.get("x-request-id") as string;
			const version = res.headers.get("mlship-model-version") as string;
			versions.push(version);
			const fb = await fetch(`${base}/v2/models/viarest/feedback`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ id, reward: version === "3" ? 1 : 0 }),
			});
			assert.equal(fb.status, 200);
		}
	} finally {
		await app.close();
		await dp.close();
	}
	const last = share(versions.slice(-200), "3");
	assert.ok(
		last >= 0.8,
		`version 3 got ${(last * 100).toFixed(1)}% of the last 200`,
	);
	const stats = await store.armStats("viarest", "production");
	assert.equal(
		stats.reduce((a, s) => a + s.pulls, 0),
		600,
		"every reward was flushed on close",
	);
	assert.equal(
		stats.find((s) => s.version === 3)?.rewardSum,
		stats.find((s) => s.version === 3)?.pulls,
	);
});
