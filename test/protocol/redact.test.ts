// The one redaction helper: passwords and tokens in URIs, inside free text and inside log objects become `***`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import {
	redactingLogger,
	redactText,
	redactUrl,
	redactValue,
} from "../../src/protocol/redact.ts";

describe("redactUrl", () => {
	const cases: [string, string][] = [
		[
			"postgres://app:hunter2@db/prod?table=t",
			"postgres://app:***@db/prod?table=t",
		],
		["redis://:hunter2@127.0.0.1:6379/s", "redis://:***@127.0.0.1:6379/s"],
		["rediss://default:hunter2@h:6380/s", "rediss://default:***@h:6380/s"],
		["nats://app:hunter2@h:4222/S/x", "nats://app:***@h:4222/S/x"],
		// NATS reads a user info without a password as a token.
		["nats://hunter2@h:4222/S/x", "nats://***@h:4222/S/x"],
		["tls://hunter2@h:4222/S/x", "tls://***@h:4222/S/x"],
		// An unencoded @ in the password: the user info ends at the authority's last @.
		[
			"kafka://app:hun@ter2@b1:9092,b2:9092/t",
			"kafka://app:***@b1:9092,b2:9092/t",
		],
		// libpq takes password= as a parameter too.
		[
			"postgres://db/prod?user=app&password=hunter2&sslmode=require",
			"postgres://db/prod?user=app&password=***&sslmode=require",
		],
		// Nothing secret: unchanged.
		["postgres://app@db/prod", "postgres://app@db/prod"],
		["sqlite:.mlship/registry.db", "sqlite:.mlship/registry.db"],
		["kafka://b1:9092/t?partitions=3", "kafka://b1:9092/t?partitions=3"],
	];
	for (const [input, want] of cases)
		it(input.replace(/hun@?ter2/, "…"), () => {
			assert.equal(redactUrl(input), want);
		});
});

describe("redactText and redactValue", () => {
	it("hide every URL's password inside a message, and leave other text alone", () => {
		assert.equal(
			redactText(
				"cannot connect to postgres://app:hunter2@db/prod (also tried 'redis://:x2@h:1/s')",
			),
			"cannot connect to postgres://app:***@db/prod (also tried 'redis://:***@h:1/s')",
		);
		assert.equal(redactText("no urls here: a:b@c"), "no urls here: a:b@c");
	});

	it("redact nested objects, arrays and errors, and keep other values as they are", () => {
		const err = new Error("failed: redis://:hunter2@h:1/s");
		const v = redactValue({
			from: "nats://app:hunter2@h/S/x",
			n: 3,
			list: ["kafka://u:hunter2@h:1/t"],
			err,
		}) as Record<string, unknown>;
		assert.ok(!JSON.stringify(v).includes("hunter2"), JSON.stringify(v));
		assert.equal(v.n, 3);
		assert.deepEqual(v.list, ["kafka://u:***@h:1/t"]);
		assert.equal(
			(v.err as { message: string }).message,
			"failed: redis://:***@h:1/s",
		);
	});

	it("a pino logger built with redactingLogger never writes the password (object fields and message)", () => {
		const lines: string[] = [];
		const log = pino(
			{ ...redactingLogger, base: null },
			{ write: (s: string) => lines.push(s) },
		);
		log.info({ from: "redis://:hunter2@h:1/s" }, "starting");
		log.warn("retrying postgres://app:hunter2@db/x");
		log.error({ err: new Error("down: nats://a:hunter2@h/S/x") }, "failed");
		assert.equal(lines.length, 3);
		for (const l of lines) assert.ok(!l.includes("hunter2"), l);
		assert.match(lines[0] as string, /redis:\/\/:\*\*\*@h:1\/s/);
		assert.match(lines[1] as string, /postgres:\/\/app:\*\*\*@db\/x/);
	});
});
