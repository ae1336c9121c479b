// mlship stream --feedback-from against a real redis-server: results carry request ids, feedback messages join to them.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { openSink, openSource } from "../../src/stream/connectors/index.ts";
import { runStream } from "../../src/stream/run.ts";
import type { InMessage } from "../../src/stream/types.ts";
import { startRedis } from "../harness/redis.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { hdr, textMessage } from "./msg.ts";

const redis = await startRedis();
after(() => redis.stop());
const iris = golden("iris-logreg");

async function until(cond: () => boolean | Promise<boolean>, what: string) {
	for (let i = 0; i < 600 && !(await cond()); i++)
		await new Promise((r) => setTimeout(r, 50));
	assert.ok(await cond(), `timed out waiting for ${what}`);
}

it("feedback messages from Redis join to the results by request id: quality by version; bad ones are refused, logged and acked", async () => {
	const u = (s: string) => `${redis.url}/${s}`;
	const requests = await openSink(u("fb-requests"));
	const feedback = await openSink(u("fb-outcomes"));
	await requests.write([
		textMessage("a", JSON.stringify(iris.records[0]), {
			"x-request-id": "req-a",
		}),
		textMessage("b", JSON.stringify(iris.records[1])),
	]);
	const refused: string[] = [];
	const s = await runStream({
		model: bundleDir("iris-logreg"),
		from: u("fb-requests"),
		to: u("fb-results"),
		feedbackFrom: u("fb-outcomes"),
		group: "fb",
		log: (_level, msg, fields) => {
			if (msg === "feedback message refused")
				refused.push(String((fields as { error: string }).error));
		},
	});
	const results = await openSource(u("fb-results"), {
		group: "reader",
		consumer: "r",
	});
	const got: InMessage[] = [];
	try {
		await until(async () => {
			got.push(...((await results.read(10, 50)) ?? []));
			return got.length >= 2;
		}, "two results");
		const ids = got.map((m) => hdr(m, "x-request-id") as string);
		assert.equal(ids[0], "req-a", "the client's id");
		assert.match(
			ids[1] ?? "",
			/^fb-requests\/-1\/\d+-\d+$/,
			"the message's position",
		);
		const labels = got.map(
			(m) =>
				(
					JSON.parse(m.value?.toString() ?? "{}") as {
						predictions: { label: string }[];
					}
				).predictions[0]?.label,
		);
		await feedback.write([
			textMessage(null, JSON.stringify({ id: ids[0], truth: labels[0] })),
			textMessage(
				null,
				JSON.stringify([
					{
						id: ids[1],
						truth: labels[1] === "setosa" ? "virginica" : "setosa",
					},
				]),
			),
			textMessage(
				null,
				JSON.stringify({ id: "never-scored", truth: "setosa" }),
			),
			textMessage(null, JSON.stringify({ id: ids[0], reward: "high" })),
			textMessage(null, "not json"),
		]);
		await until(
			() => (s.feedback?.consumed ?? 0) >= 5,
			"five feedback messages",
		);
		assert.deepEqual(s.feedback, { consumed: 5, applied: 2, rejected: 3 });
		assert.equal(refused.length, 3);
		assert.match(
			refused[0] ?? "",
			/no answer of model 'iris-logreg' with request id 'never-scored'/,
		);
		assert.match(refused[1] ?? "", /'reward' must be a finite number/);
		const metrics = (await s.metrics()).body;
		assert.match(
			metrics,
			/mlship_live_quality\{model="iris-logreg",version="1",metric="accuracy",scope="cumulative"\} 0\.5/,
		);
	} finally {
		s.stop();
		await s.done;
		await Promise.all([results.close(), requests.close(), feedback.close()]);
	}
});

it("--feedback-from must name a broker", async () => {
	await assert.rejects(
		runStream({
			model: bundleDir("iris-logreg"),
			from: `${redis.url}/x`,
			to: `${redis.url}/y`,
			feedbackFrom: "feedback.jsonl",
		}),
		/--feedback-from must be a kafka:\/\/, nats:\/\/ or redis:\/\/ URI/,
	);
});
