// Which broker errors stop a stream (no retry can clear them) and which are retried (they can clear).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { permanentError } from "../../src/stream/permanent.ts";
import { StreamProcessor } from "../../src/stream/processor.ts";
import type { InMessage, OutMessage, Source } from "../../src/stream/types.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

describe("permanentError", () => {
	it("stops on credentials, permissions, wrong types and refused names, with the broker's words", () => {
		const cases: [unknown, RegExp][] = [
			[
				new Error(
					"WRONGPASS invalid username-password pair or user is disabled.",
				),
				/WRONGPASS/,
			],
			[new Error("NOAUTH Authentication required."), /NOAUTH/],
			[
				new Error(
					"WRONGTYPE Operation against a key holding the wrong kind of value",
				),
				/WRONGTYPE/,
			],
			[
				new Error("NOPERM User u has no permissions to run the 'xadd' command"),
				/NOPERM/,
			],
			[
				Object.assign(new Error("Authorization Violation"), {
					code: "AUTHORIZATION_VIOLATION",
				}),
				/Authorization Violation/,
			],
			[
				new Error(
					"consumer filter subject is not a valid subset of the interest subjects",
				),
				/not a valid subset/,
			],
			// @platformatic/kafka: the Kafka error name is `apiId` on a ProtocolError nested in an AggregateError
			[
				new Error("Creating topics failed.", {
					cause: new AggregateError([
						Object.assign(
							new Error(
								"The request attempted to perform an operation on an invalid topic.",
							),
							{
								code: "PLT_KFK_PROTOCOL",
								apiId: "INVALID_TOPIC_EXCEPTION",
							},
						),
					]),
				}),
				/INVALID_TOPIC_EXCEPTION/,
			],
		];
		for (const [err, reason] of cases) {
			const e = permanentError("read", err);
			assert.ok(e, String(err));
			assert.equal(e.code, "MLSHIP_UNAVAILABLE");
			assert.match(
				e.message,
				/^read failed and retrying cannot fix it; the broker said: /,
			);
			assert.match(e.message, reason);
			assert.equal(e.cause, err);
		}
	});

	it("retries what can clear: lost connections, timeouts, elections, a loading server", () => {
		for (const err of [
			Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), {
				code: "ECONNREFUSED",
			}),
			new Error("Connection is closed."),
			new Error(
				'Reached the max retries per request limit (which is 3). Refer to "maxRetriesPerRequest" option for details.',
			),
			new Error("LOADING Redis is loading the dataset in memory"),
			Object.assign(new Error("TIMEOUT"), { code: "TIMEOUT" }),
			new Error("503 no responders"),
			// a NATS server that is restarting says this until its JetStream is up again (the broker-restart e2e test)
			new Error("JetStream not enabled"),
			Object.assign(
				new Error(
					"There is no leader for this topic-partition as we are in the middle of a leadership election.",
				),
				{
					code: "PLT_KFK_PROTOCOL",
					apiId: "LEADER_NOT_AVAILABLE",
				},
			),
			Object.assign(
				new Error("This server does not host this topic-partition."),
				{
					apiId: "UNKNOWN_TOPIC_OR_PARTITION",
				},
			),
			"a string",
			undefined,
		])
			assert.equal(permanentError("ack", err), undefined, String(err));
	});
});

describe("the processor on a permanent error", () => {
	let dp: DataPlane;
	before(async () => {
		dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
		});
	});
	after(() => dp.close());

	it("stops without acking anything past the failed batch, and without retrying it", async () => {
		const value = Buffer.from(JSON.stringify(golden("iris-logreg").records[0]));
		let next = 0;
		const acked: string[] = [];
		const source: Source = {
			async read(max) {
				await new Promise((r) => setImmediate(r));
				return Array.from({ length: Math.min(max, 2) }, (): InMessage => {
					const id = String(next++);
					// the id rides in a header to the result, so the sink knows which inputs a write carries
					return { id, key: null, value, headers: [["id", Buffer.from(id)]] };
				});
			},
			async ack(messages) {
				acked.push(...messages.map((m) => m.id));
			},
			async close() {},
		};
		let writes = 0;
		let failed: number[] = [];
		const sink = {
			async write(messages: readonly OutMessage[]) {
				// the first write fails for good; later ones would succeed. Batches are scored concurrently, so the
				// first write may carry any batch: remember which inputs it held.
				if (writes++ === 0) {
					failed = messages.map((m) =>
						Number(m.headers.find(([k]) => k === "id")?.[1]?.toString()),
					);
					throw new Error(
						"WRONGTYPE Operation against a key holding the wrong kind of value",
					);
				}
			},
			async close() {},
		};
		const p = new StreamProcessor({
			dataPlane: dp,
			model: "iris",
			source,
			sink,
			batchSize: 2,
		});
		await assert.rejects(p.run(), (e: Error & { code?: string }) => {
			assert.equal(e.code, "MLSHIP_UNAVAILABLE");
			assert.match(
				e.message,
				/^produce failed and retrying cannot fix it; the broker said: WRONGTYPE/,
			);
			return true;
		});
		assert.ok(
			failed.length > 0 && failed.every(Number.isInteger),
			"the failed write is known",
		);
		const firstFailed = Math.min(...failed);
		// Acks are in input order: batches before the failed one may be acked, nothing at or past it.
		assert.deepEqual(
			acked.filter((id) => Number(id) >= firstFailed),
			[],
		);
		assert.equal(p.stats.retries, 0);
		assert.equal(p.stats.acked, acked.length);
	});
});
