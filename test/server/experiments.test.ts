// Experiments end to end: two `mlship serve` replicas on one PostgreSQL registry, policies set with
// `mlship models route`, answers counted by their mlship-model-version header, sticky keys from a header, shadow
// figures read with `mlship experiments show --server`, and bad policies refused by the CLI with nothing changed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import {
	pickArm,
	type StoredRoute,
	stickyBucket,
} from "../../src/experiments/policy.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";
import { type Served, serve } from "../helpers/serve-process.ts";
import { InferenceClient } from "./grpc/client.ts";

let pg: PostgresServer;
let url: string;
let store: ModelStore;
const replicas: Served[] = [];
const row = golden("diabetes-lgbm").records[0] as Record<string, unknown>;

interface Run {
	code: number;
	stdout: string;
	stderr: string;
}

function mlship(args: string[]): Promise<Run> {
	return new Promise((resolve) => {
		execFile(
			process.execPath,
			[CLI, ...args, "--registry", url],
			(err, stdout, stderr) =>
				resolve({
					code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
					stdout,
					stderr,
				}),
		);
	});
}

before(async () => {
	pg = await startPostgres();
	url = await createDatabase(pg.url, uniqueDatabaseName("experiments"));
	store = await openRegistry(url);
	const lgbm = await readBundle(bundleDir("diabetes-lgbm"));
	const rf = await readBundle(bundleDir("diabetes-rf"));
	await store.register(lgbm, { name: "churn", aliases: ["production"] }); // 1
	await store.register(rf, { name: "churn" }); // 2
	await store.register(rf, { name: "churn" }); // 3
	for (let i = 0; i < 2; i++)
		replicas.push(
			await serve([
				"--registry",
				url,
				"-m",
				"churn@production:churn",
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

async function experiment(r: Served): Promise<{
	route?: StoredRoute;
	versions: string[];
	shadows: { version: string; compared: number; errors: number }[];
}> {
	const res = await fetch(`${r.http}/v2/models/churn/experiment`);
	assert.equal(res.status, 200);
	return (await res.json()) as Awaited<ReturnType<typeof experiment>>;
}

async function predict(
	r: Served,
	headers: Record<string, string> = {},
): Promise<string> {
	const res = await fetch(`${r.http}/v2/models/churn/predict`, {
		method: "POST",
		headers: { "content-type": "application/json", ...headers },
		body: JSON.stringify({ instances: [row] }),
	});
	const body = (await res.json()) as {
		model_version: string;
		predictions: { model_version?: string }[];
	};
	assert.equal(res.status, 200, JSON.stringify(body));
	const v = res.headers.get("mlship-model-version") as string;
	assert.equal(body.model_version, v);
	assert.equal(body.predictions[0]?.model_version, v);
	return v;
}

it("a split set with `mlship models route` is followed by both replicas; answers split by version, sticky by a header", async () => {
	const t0 = performance.now();
	const set = await mlship([
		"models",
		"route",
		"churn",
		"production",
		"--split",
		"1=50,2=50",
		"--sticky-key",
		"x-customer",
		"--shadow",
		"3=100",
		"--json",
	]);
	assert.equal(set.code, 0, set.stderr);
	const written = performance.now();
	const salt = (JSON.parse(set.stdout) as StoredRoute).policy.salt;
	for (;;) {
		const seen = await Promise.all(replicas.map(experiment));
		if (seen.every((e) => e.route?.policy.salt === salt)) {
			assert.deepEqual(seen[0]?.versions, ["1", "2", "3"]);
			break;
		}
		if (performance.now() - written > 10_000)
			assert.fail(`replicas did not follow: ${JSON.stringify(seen)}`);
		await new Promise((r) => setTimeout(r, 10));
	}
	console.log(
		`both serve replicas followed the policy ${(performance.now() - written).toFixed(0)} ms after 'mlship models route' exited (${(performance.now() - t0).toFixed(0)} ms with the CLI's start-up)`,
	);
	const counts: Record<string, number> = {};
	for (let i = 0; i < 1000; i++) {
		const v = await predict(replicas[i % 2] as Served);
		counts[v] = (counts[v] ?? 0) + 1;
	}
	assert.deepEqual(Object.keys(counts).sort(), ["1", "2"], "never the shadow");
	assert.ok(Math.abs((counts["1"] ?? 0) - 500) < 80, JSON.stringify(counts));
	const split = [
		{ version: 1, weight: 50 },
		{ version: 2, weight: 50 },
	];
	for (let k = 0; k < 300; k++) {
		const key = `customer-${k}`;
		const [a, b] = await Promise.all(
			replicas.map((r) => predict(r, { "x-customer": key })),
		);
		assert.equal(a, b, `key ${key}`);
		assert.equal(a, String(pickArm(split, stickyBucket(salt, key))));
	}
	// gRPC: the sticky key from metadata, the version in model_version.
	const client = new InferenceClient((replicas[1] as Served).grpcPort);
	try {
		for (let k = 0; k < 50; k++) {
			const key = `customer-${k}`;
			const res = await client.infer(
				{
					model_name: "churn",
					inputs: [
						{
							name: "float_input",
							datatype: "FP32",
							shape: [1, 10],
							contents: { fp32_contents: Object.values(row).map(Number) },
						},
					],
				},
				{},
				{ "x-customer": key },
			);
			assert.equal(
				res.model_version,
				String(pickArm(split, stickyBucket(salt, key))),
				`gRPC key ${key}`,
			);
		}
	} finally {
		client.close();
	}
	// The shadow compared copies of every answer; `experiments show --server` reads the figures.
	const show = await mlship([
		"experiments",
		"show",
		"churn@production",
		"--server",
		(replicas[0] as Served).http,
		"--json",
	]);
	assert.equal(show.code, 0, show.stderr);
	const shown = JSON.parse(show.stdout) as {
		route: StoredRoute;
		live: { shadows: { version: string; compared: number; errors: number }[] };
	};
	assert.equal(shown.route.policy.salt, salt);
	const sh = shown.live.shadows[0];
	assert.equal(sh?.version, "3");
	assert.ok((sh?.compared ?? 0) > 0 && sh?.errors === 0, JSON.stringify(sh));
	const text = await mlship(["experiments", "show", "churn@production"]);
	assert.match(
		text.stdout,
		/split 1=50,2=50 · sticky x-customer \(header\) · shadow 3=100%/,
	);
	const list = await mlship(["experiments", "list", "--json"]);
	assert.deepEqual(
		(JSON.parse(list.stdout) as StoredRoute[]).map((r) => r.alias),
		["production"],
	);
	const metrics = await (
		await fetch(`${(replicas[0] as Served).http}/metrics`)
	).text();
	assert.match(
		metrics,
		/mlship_shadow_requests_total\{model="churn",version="3",outcome="compared"\} [1-9]/,
	);
});

it("bad policies: a clear CLI error and exit code each, and the policy is unchanged", async () => {
	const before = await store.route("churn", "production");
	const cases: [string[], number, RegExp][] = [
		[["--split", "1=90,2=20"], 2, /weights must sum to 100, got 110/],
		[["--split", "1=90,9=10"], 3, /has no version 9/],
		[
			["--split", "1=90,2=10", "--shadow", "2=100"],
			2,
			/version 2 cannot shadow itself/,
		],
		[["--split", "1=90,1=10"], 2, /listed twice/],
		[["--bandit", "thompson", "--arms", "2"], 2, /at least 2 arms/],
		[
			["--bandit", "greedy", "--arms", "1,2"],
			2,
			/--bandit expects thompson, ucb1 or epsilon/,
		],
		[["--split", "1:90"], 2, /--split expects version=number pairs/],
		[[], 2, /give --split, --shadow or --bandit/],
		[
			["--split", "1=50,2=50", "--sticky-from", "param"],
			2,
			/--sticky-from needs --sticky-key/,
		],
		[["--split", "1=50,2=50", "--clear"], 2, /either a policy .* or --clear/],
	];
	for (const [flags, code, message] of cases) {
		const r = await mlship([
			"models",
			"route",
			"churn",
			"production",
			...flags,
		]);
		assert.equal(r.code, code, `${flags.join(" ")}: ${r.stderr}`);
		assert.match(r.stderr, message);
	}
	assert.deepEqual(await store.route("churn", "production"), before);
	const res = await fetch(
		`${(replicas[0] as Served).http}/v2/models/nope/experiment`,
	);
	assert.equal(res.status, 404);
	// --clear removes it; the replicas serve the alias's one version again.
	const cleared = await mlship([
		"models",
		"route",
		"churn",
		"production",
		"--clear",
	]);
	assert.equal(cleared.code, 0, cleared.stderr);
	const again = await mlship([
		"models",
		"route",
		"churn",
		"production",
		"--clear",
	]);
	assert.equal(again.code, 3);
	assert.match(again.stderr, /has no traffic policy/);
	const t0 = Date.now();
	while ((await experiment(replicas[1] as Served)).route !== undefined) {
		if (Date.now() - t0 > 10_000) assert.fail("the replica kept the policy");
		await new Promise((r) => setTimeout(r, 10));
	}
	const res2 = await fetch(
		`${(replicas[1] as Served).http}/v2/models/churn/predict`,
		{
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ instances: [row] }),
		},
	);
	assert.equal(res2.headers.get("mlship-model-version"), "1");
	const body = (await res2.json()) as {
		predictions: Record<string, unknown>[];
	};
	assert.equal(body.predictions[0]?.model_version, undefined);
});
