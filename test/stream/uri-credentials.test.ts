// Redis, NATS and PostgreSQL URIs: where a password, token or NKey comes from (the URI, a file, the environment) and
// which TLS options the URI turns on; refusals never quote the secret.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pgConnectionUrl } from "../../src/protocol/secrets.ts";
import { parseNatsUri } from "../../src/stream/connectors/nats.ts";
import { parseRedisUri } from "../../src/stream/connectors/redis.ts";

let dir: string;
let pwFile: string;
let caFile: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-uri-cred-"));
	pwFile = join(dir, "pw");
	await writeFile(pwFile, "file-secret\n");
	caFile = join(dir, "ca.pem");
	await writeFile(caFile, "-----BEGIN CERTIFICATE-----\nnot checked here\n");
});
after(async () => {
	if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `fn` with environment variable `name` set to `value`. */
function withEnv<T>(name: string, value: string, fn: () => T): T {
	process.env[name] = value;
	try {
		return fn();
	} finally {
		delete process.env[name];
	}
}

describe("redis:// and rediss://", () => {
	it("takes an ACL user and password from the URI; no TLS by default", () => {
		const a = parseRedisUri("redis://app:p%40ss@h:6379/s");
		assert.equal(a.username, "app");
		assert.equal(a.password, "p@ss");
		assert.equal(a.tls, undefined);
	});
	it("reads the password from password_file= or MLSHIP_REDIS_PASSWORD, and refuses both a URI password and a file", () => {
		assert.equal(
			parseRedisUri(`redis://h:6379/s?password_file=${pwFile}`).password,
			"file-secret",
		);
		assert.equal(
			withEnv("MLSHIP_REDIS_PASSWORD", "env-secret", () =>
				parseRedisUri("redis://h:6379/s"),
			).password,
			"env-secret",
		);
		assert.equal(parseRedisUri("redis://h:6379/s").password, undefined);
		assert.throws(
			() => parseRedisUri(`redis://:inline-XYZ@h/s?password_file=${pwFile}`),
			(e: Error) =>
				/either in the URI or with password_file=/.test(e.message) &&
				!e.message.includes("inline-XYZ"),
		);
	});
	it("rediss:// is TLS with the system's CAs; ca= trusts a given CA", () => {
		assert.deepEqual(parseRedisUri("rediss://h:6380/s").tls, {});
		assert.equal(
			parseRedisUri(`redis://h:6380/s?ca=${caFile}`).tls?.ca,
			"-----BEGIN CERTIFICATE-----\nnot checked here\n",
		);
		assert.throws(
			() => parseRedisUri("rediss://h/s?ca=/no/such/file"),
			/ca: cannot read '\/no\/such\/file' \(ENOENT\)/,
		);
	});
});

describe("nats:// and tls://", () => {
	it("user and password; a user info alone is a token (NATS's own URL form)", () => {
		const a = parseNatsUri("nats://app:pw@h:4222/S/x");
		assert.equal(a.user, "app");
		assert.equal(a.pass, "pw");
		assert.equal(a.token, undefined);
		const t = parseNatsUri("nats://tok123@h:4222/S/x");
		assert.equal(t.user, undefined);
		assert.equal(t.token, "tok123");
	});
	it("password from password_file= or MLSHIP_NATS_PASSWORD; token from token_file= or MLSHIP_NATS_TOKEN; NKey seed from nkey_file=", async () => {
		assert.equal(
			parseNatsUri(`nats://app@h/S/x?password_file=${pwFile}`).pass,
			"file-secret",
		);
		const e = withEnv("MLSHIP_NATS_PASSWORD", "env-pw", () =>
			parseNatsUri("nats://app@h/S/x"),
		);
		assert.deepEqual([e.user, e.pass, e.token], ["app", "env-pw", undefined]);
		assert.equal(
			parseNatsUri(`nats://h/S/x?token_file=${pwFile}`).token,
			"file-secret",
		);
		assert.equal(
			withEnv("MLSHIP_NATS_TOKEN", "env-tok", () =>
				parseNatsUri("nats://h/S/x"),
			).token,
			"env-tok",
		);
		const seed = join(dir, "seed.nk");
		await writeFile(seed, "SUAEXAMPLESEED\n");
		assert.equal(
			parseNatsUri(`nats://h/S/x?nkey_file=${seed}`).nkeySeed,
			"SUAEXAMPLESEED",
		);
	});
	it("tls:// and tls=true turn on TLS; plain nats:// does not", () => {
		assert.deepEqual(parseNatsUri("tls://h:4222/S/x").tls, {});
		assert.deepEqual(parseNatsUri("nats://h:4222/S/x?tls=true").tls, {});
		assert.equal(parseNatsUri("nats://h:4222/S/x").tls, undefined);
	});
});

describe("postgres:// password_file=", () => {
	it("becomes the URL's password for node-postgres, and other parameters stay", () => {
		const u = new URL(
			pgConnectionUrl(
				`postgres://app@db:5432/prod?password_file=${pwFile}&sslmode=verify-full`,
			),
		);
		assert.equal(decodeURIComponent(u.password), "file-secret");
		assert.equal(u.searchParams.get("password_file"), null);
		assert.equal(u.searchParams.get("sslmode"), "verify-full");
		assert.equal(
			pgConnectionUrl("postgres://app:x@db/prod"),
			"postgres://app:x@db/prod",
		);
	});
});
