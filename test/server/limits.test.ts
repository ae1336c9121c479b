// Rate limits (429 + Retry-After, gRPC RESOURCE_EXHAUSTED; per token, per address without one) and connection limits:
// a slowloris of 2,000 idle loopback connections leaves normal clients answered, and the idle ones are closed.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
	parseRateLimit,
	RateLimiter,
} from "../../src/server/auth/rate-limit.ts";
import { DEFAULT_HEADERS_TIMEOUT_MS } from "../../src/server/rest/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import type { ServerSettingsInput } from "../../src/server/settings.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import {
	type RestHarness,
	startRest,
	startServing,
} from "../helpers/server.ts";
import { InferenceClient } from "./grpc/client.ts";

const INFER = JSON.stringify({
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			data: [5.1, 3.5, 1.4, 0.2],
		},
	],
	outputs: [{ name: "label" }],
});
const PB_INFER = {
	model_name: "iris",
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2] },
		},
	],
};

function start(
	extra: Partial<ServerSettingsInput>,
	registry?: string,
): Promise<RunningServer> {
	return startServing({ iris: bundleDir("iris-logreg") }, registry, extra);
}

describe("rate limits", () => {
	it("parses SCOPE=COUNT/UNIT and refuses anything else", () => {
		assert.deepEqual(parseRateLimit("predict=1000/s"), {
			scope: "predict",
			count: 1000,
			periodMs: 1000,
		});
		assert.deepEqual(parseRateLimit(" read = 100 / m "), {
			scope: "read",
			count: 100,
			periodMs: 60_000,
		});
		for (const bad of [
			"predict=0/s",
			"write=1/s",
			"predict=10",
			"predict=10/d",
			"",
		])
			assert.throws(
				() => parseRateLimit(bad),
				/--rate-limit expects SCOPE=COUNT\/UNIT/,
				bad,
			);
	});

	it("a token bucket: bursts up to the count, refills at the rate, per caller and per scope", () => {
		let now = 0;
		const rl = new RateLimiter([parseRateLimit("predict=2/s")], () => now);
		try {
			rl.take("predict", undefined, "10.0.0.1");
			rl.take("predict", undefined, "10.0.0.1");
			assert.throws(
				() => rl.take("predict", undefined, "10.0.0.1"),
				(e: Error & { retryAfterSeconds?: number; code?: string }) =>
					e.code === "MLSHIP_RATE_LIMITED" &&
					e.retryAfterSeconds === 1 &&
					/rate limit of 2 predict calls per 1 s exceeded for address 10\.0\.0\.1; retry after 1 s/.test(
						e.message,
					),
			);
			// Another address, a token (even from the same address), and another scope have their own budgets.
			rl.take("predict", undefined, "10.0.0.2");
			rl.take("predict", "tok_0123456789ab", "10.0.0.1");
			rl.take("read", undefined, "10.0.0.1");
			rl.take("open", undefined, "10.0.0.1");
			now += 500; // half a second refills one call
			rl.take("predict", undefined, "10.0.0.1");
			assert.throws(
				() => rl.take("predict", undefined, "10.0.0.1"),
				/exceeded/,
			);
		} finally {
			rl.close();
		}
	});

	it("over REST and gRPC: 429 with Retry-After, RESOURCE_EXHAUSTED; one budget per address across transports; per token with tokens", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-limits-"));
		const s = await start({ rate_limit: ["predict=3/m"] });
		const client = new InferenceClient(s.grpcPort);
		try {
			const infer = (token?: string) =>
				fetch(`http://127.0.0.1:${s.httpPort}/v2/models/iris/infer`, {
					method: "POST",
					headers: {
						"content-type": "application/json",
						...(token && { authorization: `Bearer ${token}` }),
					},
					body: INFER,
				});
			for (let i = 0; i < 2; i++) assert.equal((await infer()).status, 200);
			await client.infer(PB_INFER);
			const refused = await infer();
			assert.equal(refused.status, 429);
			assert.equal(refused.headers.get("retry-after"), "20");
			assert.match(
				((await refused.json()) as { error: string }).error,
				/rate limit of 3 predict calls per 60 s exceeded for address 127\.0\.0\.1; retry after 20 s/,
			);
			await assert.rejects(client.infer(PB_INFER), (e: grpc.ServiceError) => {
				assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
				assert.match(e.details, /rate limit of 3 predict calls/);
				return true;
			});
			// Scopes without a limit, and health, are not limited.
			assert.equal(
				(await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/iris`)).status,
				200,
			);
			assert.equal(
				(await fetch(`http://127.0.0.1:${s.httpPort}/v2/health/ready`)).status,
				200,
			);
		} finally {
			client.close();
			await s.close();
		}
		// With tokens, each token has its own budget whatever its address.
		const registry = `sqlite:${join(dir, "registry.db")}`;
		const { openRegistry } = await import("../../src/registry/open.ts");
		const store = await openRegistry(registry);
		const a = (await store.tokens.create({ scopes: ["predict"] })).token;
		const b = (await store.tokens.create({ scopes: ["predict"] })).token;
		await store.close();
		const t = await start({ rate_limit: ["predict=1/h"] }, registry);
		try {
			const infer = (token: string) =>
				fetch(`http://127.0.0.1:${t.httpPort}/v2/models/iris/infer`, {
					method: "POST",
					headers: {
						"content-type": "application/json",
						authorization: `Bearer ${token}`,
					},
					body: INFER,
				}).then((r) => r.status);
			assert.deepEqual(
				[await infer(a), await infer(b), await infer(a), await infer(b)],
				[200, 200, 429, 429],
			);
		} finally {
			await t.close();
			await rm(dir, { recursive: true, force: true });
		}
	});
});

/** Opens `n` loopback connections, half sending nothing and half a partial request head (slowloris). */
async function openIdle(
	port: number,
	n: number,
): Promise<{
	sockets: Socket[];
	closed: () => number;
	shortestLifeMs: () => number;
}> {
	let closed = 0;
	let shortest = Number.POSITIVE_INFINITY;
	const sockets: Socket[] = [];
	const BATCH = 200;
	for (let i = 0; i < n; i += BATCH) {
		await Promise.all(
			Array.from(
				{ length: Math.min(BATCH, n - i) },
				(_, j) =>
					new Promise<void>((resolve, reject) => {
						const opened = performance.now();
						const s = connect(port, "127.0.0.1", () => {
							if ((i + j) % 2 === 1)
								s.write(
									"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nX-Slow: ",
								);
							resolve();
						});
						s.resume(); // read, so the server's close is seen
						s.on("error", () => {});
						s.once("error", reject);
						s.on("close", () => {
							closed++;
							shortest = Math.min(shortest, performance.now() - opened);
						});
						sockets.push(s);
					}),
			),
		);
	}
	return { sockets, closed: () => closed, shortestLifeMs: () => shortest };
}

describe("connection limits", () => {
	let rest: RestHarness;
	before(async () => {
		// The defaults: 10,000 connections, 10 s for the request head.
		rest = await startRest({ "iris-logreg": "iris" });
	});
	after(() => rest.close());

	it("2,000 idle and half-sent connections: normal requests are answered correctly meanwhile, and the idle ones are closed after the header timeout", async () => {
		const port = Number(new URL(rest.url).port);
		const idle = await openIdle(port, 2000);
		try {
			const ms: number[] = [];
			for (let i = 0; i < 100; i++) {
				const t0 = performance.now();
				const res = await fetch(`${rest.url}/v2/models/iris/infer`, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: INFER,
				});
				assert.equal(res.status, 200);
				const out = (await res.json()) as {
					outputs: { name: string; data: number[] }[];
				};
				assert.deepEqual(out.outputs[0]?.data, [0]); // setosa
				ms.push(performance.now() - t0);
			}
			ms.sort((x, y) => x - y);
			// Reported, not asserted: the machine is shared (bench/security/slowloris.ts measures it properly).
			process.stdout.write(
				`# normal requests beside 2000 idle connections: p50 ${ms[49]?.toFixed(1)} ms, p99 ${ms[98]?.toFixed(1)} ms\n`,
			);
			// Node's own defaults (60 s, checked every 30 s) would keep them for 60–90 s; ours close them in ~10–11 s.
			const deadline = Date.now() + 45_000;
			while (idle.closed() < 2000 && Date.now() < deadline)
				await new Promise((r) => setTimeout(r, 100));
			assert.equal(
				idle.closed(),
				2000,
				"the server closes connections that send no complete request head",
			);
			// None before the header timeout (a lower bound, safe on a loaded machine).
			assert.ok(
				idle.shortestLifeMs() >= DEFAULT_HEADERS_TIMEOUT_MS,
				`an idle connection was closed after ${idle.shortestLifeMs()} ms`,
			);
		} finally {
			for (const s of idle.sockets) s.destroy();
		}
	});

	it("a request head larger than the limit gets 431", async () => {
		const res = await fetch(`${rest.url}/v2/health/live`, {
			headers: { "x-big": "a".repeat(20 * 1024) },
		});
		assert.equal(res.status, 431);
		assert.equal(
			(
				await fetch(`${rest.url}/v2/health/live`, {
					headers: { "x-ok": "a".repeat(8 * 1024) },
				})
			).status,
			200,
		);
	});

	it("connections past max_connections are closed at once; the others are served", async () => {
		const small = await startRest(
			{ "iris-logreg": "iris" },
			{ maxConnections: 5 },
		);
		const port = Number(new URL(small.url).port);
		const idle = await openIdle(port, 10);
		try {
			const deadline = Date.now() + 10_000;
			while (idle.closed() < 5 && Date.now() < deadline)
				await new Promise((r) => setTimeout(r, 20));
			assert.equal(idle.closed(), 5);
			for (const s of idle.sockets) s.destroy();
			await new Promise((r) => setTimeout(r, 100));
			assert.equal((await fetch(`${small.url}/v2/health/live`)).status, 200);
		} finally {
			for (const s of idle.sockets) s.destroy();
			await small.close();
		}
	});
});
