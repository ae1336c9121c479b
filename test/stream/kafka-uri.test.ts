// kafka:// URIs: user info is SASL credentials (never part of a broker address), the password can come from a file or
// the environment (the retry log of a stream naming only host:port is in test/cli/secrets.test.ts).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseKafkaUri } from "../../src/stream/connectors/kafka.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-kafka-uri-"));
});
after(async () => {
	if (dir) await rm(dir, { recursive: true, force: true });
});

describe("parseKafkaUri", () => {
	it("takes user:password@ as SASL PLAIN credentials and leaves the brokers as host:port", () => {
		const a = parseKafkaUri("kafka://app:s3cret@127.0.0.1:9092,b2:9093/orders");
		assert.deepEqual(a.brokers, ["127.0.0.1:9092", "b2:9093"]);
		assert.equal(a.topic, "orders");
		assert.deepEqual(a.sasl, {
			mechanism: "PLAIN",
			username: "app",
			password: "s3cret",
		});
		assert.equal(a.tls, undefined);
	});

	it("decodes percent-encoded credentials (a password with @ : / in it) and takes the SCRAM mechanisms", () => {
		const a = parseKafkaUri(
			"kafka://us%40er:p%40ss%3Aw%2Fd@host:9092/t?sasl=scram-sha-512",
		);
		assert.deepEqual(a.brokers, ["host:9092"]);
		assert.deepEqual(a.sasl, {
			mechanism: "SCRAM-SHA-512",
			username: "us@er",
			password: "p@ss:w/d",
		});
		assert.equal(
			parseKafkaUri("kafka://u:p@h:1/t?sasl=SCRAM-SHA-256").sasl?.mechanism,
			"SCRAM-SHA-256",
		);
	});

	it("reads the password from password_file= or MLSHIP_KAFKA_PASSWORD when the URI has only a user", async () => {
		const file = join(dir, "kafka.pw");
		await writeFile(file, "from-file\n");
		assert.equal(
			parseKafkaUri(`kafka://app@h:9092/t?password_file=${file}`).sasl
				?.password,
			"from-file",
		);
		process.env.MLSHIP_KAFKA_PASSWORD = "from-env";
		try {
			assert.equal(
				parseKafkaUri("kafka://app@h:9092/t").sasl?.password,
				"from-env",
			);
		} finally {
			delete process.env.MLSHIP_KAFKA_PASSWORD;
		}
		assert.throws(
			() => parseKafkaUri("kafka://app@h:9092/t"),
			/user 'app' has no password; put it in password_file=PATH or MLSHIP_KAFKA_PASSWORD/,
		);
	});

	it("refuses what it cannot use, with messages that never show the password", () => {
		const cases: [string, RegExp][] = [
			["kafka://u:pw-XYZ@h:9092/t?sasl=gssapi", /sasl=gssapi is not supported/],
			["kafka://h:9092/t?sasl=plain", /sasl= needs a user/],
			["kafka://u:pw-XYZ@nohostport/t", /broker 'nohostport' is not host:port/],
			["kafka://u:pw-XYZ@h:9092/t?tls=maybe", /tls=maybe is not a yes or no/],
			["kafka://u:pw-XYZ@h:9092/t?cert=/x", /needs both cert= and key=/],
		];
		for (const [uri, why] of cases)
			assert.throws(
				() => parseKafkaUri(uri),
				(err: Error) => {
					assert.match(err.message, why);
					assert.ok(!err.message.includes("pw-XYZ"), err.message);
					return true;
				},
			);
	});
});
