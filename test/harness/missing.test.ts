// A missing broker fails the tests that need it with what to install: never a silent skip.
import assert from "node:assert/strict";
import { it } from "node:test";
import { kafkaJars } from "./kafka.ts";
import { startRedis } from "./redis.ts";

it("missing Kafka jars or redis-server: the harness throws and says to run scripts/setup", async () => {
	const saved = { jars: process.env.MLSHIP_KAFKA_JARS, path: process.env.PATH };
	try {
		process.env.MLSHIP_KAFKA_JARS = "/nonexistent/kafka-jars";
		assert.throws(
			() => kafkaJars(),
			/Kafka jars not found in \/nonexistent\/kafka-jars; run scripts\/setup/,
		);
		process.env.PATH = "/nonexistent";
		await assert.rejects(
			startRedis(),
			/redis-server not found; run scripts\/setup/,
		);
	} finally {
		if (saved.jars === undefined) delete process.env.MLSHIP_KAFKA_JARS;
		else process.env.MLSHIP_KAFKA_JARS = saved.jars;
		process.env.PATH = saved.path;
	}
});
