// mlship stream stops with exit 6 and the broker's reason on errors no retry can clear (real brokers from
// test/harness), instead of retrying forever; errors that can clear are still retried (the restart tests in
// kafka/nats/redis.test.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startKafka } from "../harness/kafka.ts";
import { startNats } from "../harness/nats.ts";
import { startRedis } from "../harness/redis.ts";
import { startMlship } from "../helpers/files.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const MODEL = bundleDir("iris-logreg");
const RECORD = `${JSON.stringify(golden("iris-logreg").records[0])}\n`;

/** Runs `mlship stream` to its exit; a process still running after 60 s (retrying forever) fails the test. */
async function streamExit(
	args: string[],
	stdin?: string,
): Promise<{ code: number | null; stderr: string }> {
	const p = startMlship(
		["stream", "-m", MODEL, "--log-level", "warn", ...args],
		undefined,
		{},
		stdin,
	);
	const timer = setTimeout(() => p.process.kill("SIGKILL"), 60_000);
	const r = await p.done;
	clearTimeout(timer);
	assert.notEqual(
		r.signal,
		"SIGKILL",
		`still running after 60 s:\n${r.stderr}`,
	);
	return r;
}

function assertFailsFast(
	r: { code: number | null; stderr: string },
	reason: RegExp,
	secret?: string,
): void {
	assert.equal(r.code, 6, r.stderr);
	assert.match(r.stderr, /retrying cannot fix it; the broker said: /, r.stderr);
	assert.match(r.stderr, reason, r.stderr);
	if (secret !== undefined) assert.ok(!r.stderr.includes(secret), r.stderr);
}

describe("redis", () => {
	const PASSWORD = "right-horse-battery";
	let redis: Awaited<ReturnType<typeof startRedis>>;
	let hostPort: string;
	before(async () => {
		redis = await startRedis({ password: PASSWORD });
		hostPort = `127.0.0.1:${redis.port}`;
		const c = new Redis({ port: redis.port, password: PASSWORD });
		await c.set("plain-string", "not a stream");
		c.disconnect();
	});
	after(() => redis.stop());

	it("a wrong password", async () => {
		const r = await streamExit([
			"--from",
			`redis://:wrong-guess-123@${hostPort}/in`,
			"--to",
			`redis://:${PASSWORD}@${hostPort}/out`,
		]);
		assertFailsFast(r, /WRONGPASS/, "wrong-guess-123");
		assert.ok(!r.stderr.includes(PASSWORD), r.stderr);
	});

	it("no password where one is required", async () => {
		const r = await streamExit([
			"--from",
			`redis://${hostPort}/in`,
			"--to",
			`redis://:${PASSWORD}@${hostPort}/out`,
		]);
		assertFailsFast(r, /NOAUTH/);
	});

	it("a source key that holds a string, not a stream", async () => {
		const r = await streamExit([
			"--from",
			`redis://:${PASSWORD}@${hostPort}/plain-string`,
			"--to",
			`redis://:${PASSWORD}@${hostPort}/out`,
		]);
		assertFailsFast(r, /WRONGTYPE/, PASSWORD);
	});

	it("a sink key that holds a string, not a stream", async () => {
		const r = await streamExit(
			["--from", "-", "--to", `redis://:${PASSWORD}@${hostPort}/plain-string`],
			RECORD,
		);
		assertFailsFast(r, /produce failed .*WRONGTYPE/, PASSWORD);
	});
});

describe("nats", () => {
	const auth = { user: "mlship", pass: "nats-pass-42" };
	let nats: Awaited<ReturnType<typeof startNats>>;
	let hostPort: string;
	before(async () => {
		nats = await startNats({ auth });
		hostPort = `127.0.0.1:${nats.port}`;
	});
	after(() => nats.stop());

	it("a wrong password", async () => {
		const r = await streamExit([
			"--from",
			`nats://${auth.user}:not-the-pass@${hostPort}/IN/in`,
			"--to",
			"-",
		]);
		assertFailsFast(r, /authorization violation/i, "not-the-pass");
	});

	it("a subject outside the existing stream's subjects", async () => {
		const ok = `nats://${auth.user}:${auth.pass}@${hostPort}`;
		// The first run creates stream S for subject s.in and scores one message.
		const first = await streamExit(
			["--from", "-", "--to", `${ok}/S/s.in`],
			RECORD,
		);
		assert.equal(first.code, 0, first.stderr);
		const r = await streamExit(["--from", `${ok}/S/other.in`, "--to", "-"]);
		assertFailsFast(r, /not a valid subset/i, auth.pass);
	});
});

describe("kafka", () => {
	let kafka: Awaited<ReturnType<typeof startKafka>>;
	before(async () => {
		kafka = await startKafka();
	});
	after(() => kafka.stop());

	it("a topic name the broker refuses", async () => {
		const r = await streamExit([
			"--from",
			`${kafka.url}/bad%20topic`,
			"--to",
			"-",
		]);
		assertFailsFast(r, /INVALID_TOPIC_EXCEPTION|topic name is invalid/i);
	});
});
