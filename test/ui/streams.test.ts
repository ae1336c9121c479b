// The Servers page's streams in Chromium: a real `mlship stream` process on a real Redis (with a password) reports
// on its --metrics-port /status, and `mlship serve --ui --ui-stream URL` shows it with its health, model, source
// and sink (password hidden), counts and last message time; a stream that is not running is shown unreachable.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { Browser } from "playwright-core";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { RunningServer } from "../../src/server/server.ts";
import type { StreamStatus } from "../../src/stream/status.ts";
import { launchBrowser, openPage, screenshot } from "../harness/browser.ts";
import { type RedisServer, startRedis } from "../harness/redis.ts";
import { freePort } from "../harness/service.ts";
import { bundleDir, CLI } from "../helpers/fixtures.ts";
import { startServing } from "../helpers/server.ts";
import { axe } from "./axe.ts";

const WAIT = { timeout: 90_000 };
const PASSWORD = "s3cret-redis-pw";
const N = 25;

async function until<T>(
	what: string,
	fn: () => Promise<T | undefined>,
	ms = 120_000,
): Promise<T> {
	const end = Date.now() + ms;
	let last: unknown;
	while (Date.now() < end) {
		try {
			const v = await fn();
			if (v !== undefined) return v;
		} catch (err) {
			last = err;
		}
		await new Promise((r) => setTimeout(r, 200));
	}
	assert.fail(`timed out waiting for ${what} (${String(last)})`);
}

describe("Servers page: stream processors", () => {
	let dir: string;
	let redis: RedisServer;
	let stream: ChildProcess;
	let stderr = "";
	let metricsUrl: string;
	let deadUrl: string;
	let server: RunningServer;
	let browser: Browser;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-streams-"));
		const uri = `sqlite:${join(dir, "registry.db")}`;
		const store = await openRegistry(uri);
		await store.register(await readBundle(bundleDir("iris-logreg")), {
			name: "iris",
			aliases: ["production"],
		});
		await store.close();
		redis = await startRedis({ password: PASSWORD });
		const broker = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
		const port = await freePort();
		metricsUrl = `http://127.0.0.1:${port}`;
		deadUrl = `http://127.0.0.1:${await freePort()}`;
		stream = spawn(
			process.execPath,
			[
				CLI,
				"stream",
				"-m",
				"iris@production",
				"--registry",
				uri,
				"--from",
				`${broker}/requests`,
				"--to",
				`${broker}/scores`,
				"--metrics-port",
				String(port),
				"--log-level",
				"warn",
			],
			{ stdio: ["ignore", "ignore", "pipe"] },
		);
		stream.stderr?.on("data", (b: Buffer) => {
			stderr += b.toString();
		});
		server = await startServing({}, uri, {
			ui: true,
			grpc_port: -1,
			ui_streams: [metricsUrl, deadUrl],
		});
		browser = await launchBrowser();
	});
	after(async () => {
		await browser?.close();
		await server?.close();
		if (stream && stream.exitCode === null) {
			const exited = new Promise((r) => stream.once("exit", r));
			stream.kill("SIGTERM");
			await exited;
		}
		await redis?.stop();
		await rm(dir, { recursive: true, force: true });
	});

	it("GET /status on the stream's metrics port: model, source and sink without the password, counts, last message", async () => {
		const ready = await until("the stream to be ready", async () => {
			const s = (await (
				await fetch(`${metricsUrl}/status`)
			).json()) as StreamStatus;
			return s.ready ? s : undefined;
		});
		assert.equal(ready.pattern, "stream");
		assert.equal(ready.model, "iris@production");
		assert.equal(ready.version, "1");
		assert.equal(ready.consumed, 0);
		assert.equal(ready.lastMessageAt, null);
		const r = new Redis({
			port: redis.port,
			host: "127.0.0.1",
			password: PASSWORD,
		});
		const before = Date.now();
		try {
			for (let i = 0; i < N; i++)
				await r.xadd(
					"requests",
					"*",
					"value",
					JSON.stringify({
						sepal_length: 5.1,
						sepal_width: 3.5,
						petal_length: 1.4,
						petal_width: 0.2 + i / 100,
					}),
				);
			await until("every result in the sink", async () =>
				(await r.xlen("scores")) >= N ? true : undefined,
			);
		} finally {
			r.disconnect();
		}
		const s = await until("the counts", async () => {
			const x = (await (
				await fetch(`${metricsUrl}/status`)
			).json()) as StreamStatus;
			return x.produced === N && x.inFlight === 0 ? x : undefined;
		});
		assert.equal(s.consumed, N);
		assert.equal(s.dead, 0);
		assert.deepEqual(s.versions, { "1": N });
		assert.ok(Date.parse(s.lastMessageAt ?? "") >= before - 1000);
		const text = JSON.stringify(s);
		assert.doesNotMatch(text, new RegExp(PASSWORD));
		assert.equal(s.from, `redis://:***@127.0.0.1:${redis.port}/requests`);
		assert.equal(s.to, `redis://:***@127.0.0.1:${redis.port}/scores`);
		assert.doesNotMatch(stderr, new RegExp(PASSWORD));
	});

	it("the page shows the stream with health and figures, and the one not running as unreachable", async () => {
		const { page, errors } = await openPage(
			browser,
			`http://127.0.0.1:${server.httpPort}/ui/#/servers`,
		);
		const card = page.locator('[data-stream="t1"]');
		await card.waitFor(WAIT);
		assert.equal(
			await card.locator("[data-health]").getAttribute("data-health"),
			"ready",
		);
		const field = async (k: string) =>
			(await card.locator(`dd[data-field="${k}"]`).textContent()) ?? "";
		assert.equal(await field("Model"), "iris@production (v1 at start)");
		assert.equal(await field("Consumed"), String(N));
		assert.equal(await field("Produced"), String(N));
		assert.equal(await field("Dead letters"), "0");
		assert.equal(await field("Versions scoring"), `v1: ${N}`);
		assert.equal(
			await field("Source"),
			`redis://:***@127.0.0.1:${redis.port}/requests`,
		);
		assert.match(await field("Last message"), /^\d{4}-\d\d-\d\d .* ago\)$/);
		assert.doesNotMatch((await page.content()) ?? "", new RegExp(PASSWORD));
		const dead = page.locator('[data-stream="t2"]');
		assert.equal(
			await dead.locator("[data-health]").getAttribute("data-health"),
			"unreachable",
		);
		assert.match(
			(await dead.getByRole("alert").textContent()) ?? "",
			/unreachable .*is it running\?/,
		);
		await screenshot(page, "ui-servers-streams");
		assert.deepEqual(await axe(page), []);
		assert.deepEqual(errors, []);
		await page.close();
	});

	it("without --ui-stream the page says how to show one", async () => {
		const bare = await startServing({}, undefined, { ui: true, grpc_port: -1 });
		try {
			const { page, errors } = await openPage(
				browser,
				`http://127.0.0.1:${bare.httpPort}/ui/#/servers`,
			);
			await page.getByText("No stream processor shown").waitFor(WAIT);
			assert.match(
				(await page.locator(".empty pre").last().textContent()) ?? "",
				/--metrics-port 9464\nmlship ui .*--stream http:\/\/127\.0\.0\.1:9464/,
			);
			assert.deepEqual(errors, []);
			await page.close();
		} finally {
			await bare.close();
		}
	});
});
