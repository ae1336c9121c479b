// Outgoing TLS and credentials against real TLS-enabled servers with certificates made at test time: PostgreSQL
// (sslmode=verify-full, sslrootcert, password_file), Redis (rediss://, ACL user), NATS (tls://, user/password,
// token, NKey), Kafka (SASL_SSL with PLAIN and SCRAM). Each is used through mlship's own URIs; plaintext, an untrusted CA and wrong secrets are refused.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { nkeys } from "@nats-io/transport-node";
import { connectPg, pgQuery } from "../../src/batch/pg.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { openSink, openSource } from "../../src/stream/connectors/index.ts";
import type { Source } from "../../src/stream/types.ts";
import { startKafka } from "../harness/kafka.ts";
import { startNats } from "../harness/nats.ts";
import { startPostgres } from "../harness/postgres.ts";
import { startRedis } from "../harness/redis.ts";
import { makeCerts, type TestCerts } from "../harness/tls.ts";
import { text, textMessage } from "./msg.ts";

const SECRET = "S3cret-pw_for:tls";

let certs: TestCerts;
let otherCa: string;
let pwFile: string;
before(async () => {
	certs = await makeCerts();
	otherCa = await certs.otherCa();
	pwFile = join(certs.dir, "pw.txt");
	await writeFile(pwFile, `${SECRET}\n`);
});
after(async () => {
	await certs?.remove();
});

/** Writes three messages to `uri` and reads them back through mlship's connectors. */
async function roundTrip(uri: string): Promise<void> {
	const sink = await openSink(uri);
	try {
		await sink.write(["a", "b", "c"].map((v, i) => textMessage(`k${i}`, v)));
	} finally {
		await sink.close();
	}
	const src: Source = await openSource(uri, { group: "g", consumer: "c1" });
	try {
		const got: string[] = [];
		for (let i = 0; i < 40 && got.length < 3; i++) {
			const r = await src.read(3, 250);
			if (r === null) break;
			for (const m of r) got.push(text(m.value) ?? "");
			await src.ack(r);
		}
		assert.deepEqual(got, ["a", "b", "c"]);
	} finally {
		await src.close();
	}
}

/** Expects writing to `uri` to fail (within the connector's own retries). */
async function refused(uri: string, why: RegExp): Promise<void> {
	const sink = await openSink(uri);
	try {
		await assert.rejects(sink.write([textMessage("k", "v")]), why);
	} finally {
		await sink.close().catch(() => {});
	}
}

describe("PostgreSQL over TLS", () => {
	let pgs: Awaited<ReturnType<typeof startPostgres>>;
	let base: URL;
	before(async () => {
		pgs = await startPostgres({
			tls: { cert: certs.serverCert, key: certs.serverKey },
			password: SECRET,
		});
		base = new URL(pgs.url);
		base.password = "";
	});
	after(async () => {
		await pgs?.stop();
	});

	it("sslmode=verify-full with sslrootcert and password_file connects (batch client and registry)", async () => {
		const url = `${base}?sslmode=verify-full&sslrootcert=${certs.ca}&password_file=${pwFile}`;
		const c = await connectPg(url);
		try {
			const r = await pgQuery<{ ssl: boolean }>(
				c,
				"SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
			);
			assert.equal(r.rows[0]?.ssl, true);
		} finally {
			await c.end();
		}
		const store = await openRegistry(url);
		try {
			assert.deepEqual(await store.list(), []);
		} finally {
			await store.close();
		}
	});

	it("the password can come from PGPASSWORD (libpq's variable, read by node-postgres)", async () => {
		process.env.PGPASSWORD = SECRET;
		try {
			const c = await connectPg(
				`${base}?sslmode=verify-full&sslrootcert=${certs.ca}`,
			);
			await c.end();
		} finally {
			delete process.env.PGPASSWORD;
		}
	});

	it("refuses plaintext, an untrusted CA and a wrong password", async () => {
		await assert.rejects(
			connectPg(`${base}?sslmode=disable&password_file=${pwFile}`),
			/pg_hba\.conf rejects connection .* no encryption/,
		);
		await assert.rejects(
			connectPg(
				`${base}?sslmode=verify-full&sslrootcert=${otherCa}&password_file=${pwFile}`,
			),
			/self[- ]signed|unable to (verify|get local issuer)/i,
		);
		const wrong = new URL(base);
		wrong.password = "not-it";
		await assert.rejects(
			connectPg(`${wrong}?sslmode=verify-full&sslrootcert=${certs.ca}`),
			(e: Error) =>
				/password authentication failed/.test(e.message) &&
				!e.message.includes("not-it"),
		);
	});
});

describe("Redis over TLS (rediss://) with an ACL user", () => {
	let redis: Awaited<ReturnType<typeof startRedis>>;
	before(async () => {
		redis = await startRedis({
			tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
			aclUser: { name: "app", password: SECRET },
		});
	});
	after(async () => {
		await redis?.stop();
	});

	it("rediss://app@… with ca= and password_file= round-trips messages", async () => {
		await roundTrip(
			`rediss://app@127.0.0.1:${redis.port}/s1?ca=${certs.ca}&password_file=${pwFile}`,
		);
	});

	it("the password can come from MLSHIP_REDIS_PASSWORD", async () => {
		process.env.MLSHIP_REDIS_PASSWORD = SECRET;
		try {
			await roundTrip(`rediss://app@127.0.0.1:${redis.port}/s2?ca=${certs.ca}`);
		} finally {
			delete process.env.MLSHIP_REDIS_PASSWORD;
		}
	});

	it("refuses an untrusted CA and a wrong password", async () => {
		await refused(
			`rediss://app:${encodeURIComponent(SECRET)}@127.0.0.1:${redis.port}/s3?ca=${otherCa}`,
			/self[- ]signed|unable to (verify|get local issuer)|Connection is closed|max retries/i,
		);
		await refused(
			`rediss://app:wrong@127.0.0.1:${redis.port}/s3?ca=${certs.ca}`,
			/WRONGPASS|invalid username-password/i,
		);
	});
});

describe("NATS over TLS with a user and password, a token, an NKey", () => {
	const stop: (() => Promise<void>)[] = [];
	after(async () => {
		await Promise.all(stop.map((s) => s()));
	});

	it("tls://app@… with ca= and password_file= round-trips messages; a wrong password is refused", async () => {
		const n = await startNats({
			auth: { user: "app", pass: SECRET },
			tls: { cert: certs.serverCert, key: certs.serverKey },
		});
		stop.push(() => n.stop());
		await roundTrip(
			`tls://app@127.0.0.1:${n.port}/TLS1/s.one?ca=${certs.ca}&password_file=${pwFile}`,
		);
		await assert.rejects(
			openSink(
				`nats://app:wrong@127.0.0.1:${n.port}/TLS1/s.two?ca=${certs.ca}`,
			).then((s) => s.write([textMessage("k", "v")]).finally(() => s.close())),
			/Authorization|AUTHORIZATION/i,
		);
	});

	it("a token from the URI's user info, and an NKey seed from nkey_file=", async () => {
		const token = "tok-1234567890";
		const t = await startNats({ token });
		stop.push(() => t.stop());
		await roundTrip(`nats://${token}@127.0.0.1:${t.port}/TOK/s.one`);
		const user = nkeys.createUser();
		const seedFile = join(certs.dir, "user.nk");
		await writeFile(seedFile, new TextDecoder().decode(user.getSeed()));
		const k = await startNats({ nkey: user.getPublicKey() });
		stop.push(() => k.stop());
		await roundTrip(
			`nats://127.0.0.1:${k.port}/NK/s.one?nkey_file=${seedFile}`,
		);
	});
});

describe("Kafka over SASL_SSL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", () => {
	let kafka: Awaited<ReturnType<typeof startKafka>>;
	before(async () => {
		kafka = await startKafka({
			saslSsl: {
				cert: certs.serverCert,
				key: certs.serverKey,
				users: [{ name: "app", password: SECRET }],
			},
		});
	});
	after(async () => {
		await kafka?.stop();
	});

	for (const [mechanism, n] of [
		["plain", 1],
		["scram-sha-256", 2],
		["scram-sha-512", 3],
	] as const)
		it(`kafka://app@… with sasl=${mechanism}, ca= and password_file= round-trips messages`, async () => {
			await roundTrip(
				`kafka://app@127.0.0.1:${kafka.port}/t${n}?sasl=${mechanism}&ca=${certs.ca}&password_file=${pwFile}`,
			);
		});

	it("the password can be in the URI (percent-encoded) or MLSHIP_KAFKA_PASSWORD", async () => {
		await roundTrip(
			`kafka://app:${encodeURIComponent(SECRET)}@127.0.0.1:${kafka.port}/t4?sasl=scram-sha-256&ca=${certs.ca}`,
		);
		process.env.MLSHIP_KAFKA_PASSWORD = SECRET;
		try {
			await roundTrip(`kafka://app@127.0.0.1:${kafka.port}/t5?ca=${certs.ca}`);
		} finally {
			delete process.env.MLSHIP_KAFKA_PASSWORD;
		}
	});

	it("refuses a wrong password and an untrusted CA", async () => {
		await refused(
			`kafka://app:wrong@127.0.0.1:${kafka.port}/t6?sasl=scram-sha-256&ca=${certs.ca}`,
			/SASL|[Aa]uthentication/,
		);
		await refused(
			`kafka://app@127.0.0.1:${kafka.port}/t7?ca=${otherCa}&password_file=${pwFile}`,
			/self[- ]signed|unable to (verify|get local issuer)|certificate/i,
		);
	});
});
