// Feedback by request id over REST and embedded: joined to the serving version, live quality, and each bad input a clear 4xx that changes nothing.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DriftMonitor } from "../../src/dataplane/drift-monitor.ts";
import { FeedbackJoin } from "../../src/feedback/join.ts";
import {
	QualityStats,
	type VersionQuality,
} from "../../src/feedback/quality.ts";
import { loadModel } from "../../src/model.ts";
import type { MlshipError } from "../../src/protocol/errors.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { golden } from "../helpers/fixtures.ts";
import { type RestHarness, startRest } from "../helpers/server.ts";

const iris = golden("iris-logreg");
const diabetes = golden("diabetes-rf");
let now = 1_000_000;
const join = new FeedbackJoin({
	maxIds: 50,
	retentionMs: 60_000,
	qualityWindow: 4,
	now: () => now,
});
let h: RestHarness;

before(async () => {
	h = await startRest(
		{ "iris-logreg": "iris", "diabetes-rf": "diabetes" },
		{},
		{ feedback: join },
	);
});
after(() => h.close());

async function predict(
	model: string,
	rows: unknown[],
	id?: string,
): Promise<{
	id: string;
	version: string;
	predictions: Record<string, unknown>[];
}> {
	const res = await fetch(`${h.url}/v2/models/${model}/predict`, {
		method: "POST",
		headers: {
			"content-type": "application/json",
			...(id ? { "x-request-id": id } : {}),
		},
		body: JSON.stringify({ instances: rows }),
	});
	assert.equal(res.status, 200);
	const body = (await res.json()) as {
		id: string;
		model_version: string;
		predictions: Record<string, unknown>[];
	};
	return {
		id: body.id,
		version: body.model_version,
		predictions: body.predictions,
	};
}

async function feedback(
	model: string,
	body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
	const res = await fetch(`${h.url}/v2/models/${model}/feedback`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify(body),
	});
	return {
		status: res.status,
		body: (await res.json()) as Record<string, unknown>,
	};
}

async function quality(model: string) {
	const res = await fetch(`${h.url}/v2/models/${model}/quality`);
	assert.equal(res.status, 200);
	return ((await res.json()) as { versions: VersionQuality[] }).versions;
}

describe("feedback over REST", () => {
	it("truths join to the version that served each id; quality by version (window and cumulative) in the API and /metrics", async () => {
		// Five answers with generated ids, then truths: the first three as predicted, two wrong.
		const answers = [];
		for (let i = 0; i < 5; i++)
			answers.push(await predict("iris", [iris.records[i * 7]]));
		for (const a of answers) assert.match(a.id, /^[0-9a-f-]{36}$/);
		const predicted = answers.map((a) => a.predictions[0]?.label as string);
		const other = (l: string) => (l === "setosa" ? "virginica" : "setosa");
		const truths = predicted.map((l, i) => (i < 3 ? l : other(l)));
		const r = await feedback(
			"iris",
			answers.map((a, i) => ({ id: a.id, truth: truths[i] })),
		);
		assert.equal(r.status, 200, JSON.stringify(r.body));
		assert.deepEqual(r.body, { accepted: 5, joined: 5, byVersion: 0 });
		const [q] = await quality("iris");
		assert.equal(q?.version, "1");
		assert.equal(q?.task, "classification");
		assert.equal(q?.cumulative.rows, 5);
		assert.equal(q?.cumulative.accuracy, 3 / 5);
		assert.equal(q?.window.rows, 4, "the window holds the newest 4 rows");
		assert.equal(q?.window.accuracy, 2 / 4);
		assert.ok(
			(q?.cumulative.log_loss ?? 0) > 0,
			"log-loss from the probabilities",
		);
		const metrics = await (await fetch(`${h.url}/metrics`)).text();
		assert.match(
			metrics,
			/mlship_live_quality\{model="iris",version="1",metric="accuracy",scope="cumulative"\} 0\.6/,
		);
		assert.match(
			metrics,
			/mlship_live_quality_rows\{model="iris",version="1",scope="window"\} 4/,
		);
	});

	it("a regression truth updates MAE and RMSE; a truth per row for a request of several rows", async () => {
		const rows = diabetes.records.slice(0, 3);
		const a = await predict("diabetes", rows, "diab-1");
		assert.equal(a.id, "diab-1");
		const preds = a.predictions.map((p) => p.variable as number);
		const r = await feedback("diabetes", {
			id: "diab-1",
			truth: [preds[0], (preds[1] as number) + 10, (preds[2] as number) - 20],
		});
		assert.equal(r.status, 200, JSON.stringify(r.body));
		const [q] = await quality("diabetes");
		assert.equal(q?.task, "regression");
		assert.ok(
			Math.abs((q?.cumulative.mae ?? 0) - 10) < 1e-3,
			`mae ${q?.cumulative.mae}`,
		);
		assert.ok(
			Math.abs((q?.cumulative.rmse ?? 0) - Math.sqrt(500 / 3)) < 1e-3,
			`rmse ${q?.cumulative.rmse}`,
		);
	});

	it("rewards are counted by version; a reward for an id served by another replica names the version", async () => {
		const a = await predict("iris", [iris.records[0]], "rw-1");
		const seen: [string, string, number][] = [];
		const off = join.onReward((m, v, r) => seen.push([m, v, r]));
		try {
			const r = await feedback("iris", [
				{ id: a.id, reward: 1 },
				{ id: "served-elsewhere", reward: 0.25, version: 1 },
			]);
			assert.deepEqual(r.body, { accepted: 2, joined: 1, byVersion: 1 });
		} finally {
			off();
		}
		assert.deepEqual(seen, [
			["iris", "1", 1],
			["iris", "1", 0.25],
		]);
		const [q] = await quality("iris");
		assert.deepEqual(q?.rewards, { count: 2, sum: 1.25 });
	});

	it("bad input is a clear 4xx and changes nothing: unknown id, a reward that is not a number, wrong truth type, twice, expired", async () => {
		const a = await predict("iris", [iris.records[0]], "bad-1");
		const before = JSON.stringify(await quality("iris"));
		const cases: [unknown, number, RegExp][] = [
			[
				{ id: "never-served", truth: "setosa" },
				404,
				/no answer of model 'iris' with request id 'never-served'/,
			],
			[
				[
					{ id: a.id, truth: "setosa" },
					{ id: "never-served", reward: 1 },
				],
				404,
				/item 1: no answer/,
			],
			[
				{ id: a.id, reward: "1" },
				400,
				/'reward' must be a finite number, got "1"/,
			],
			[{ id: a.id, reward: null }, 400, /'reward' must be a finite number/],
			[
				{ id: a.id, truth: "rose" },
				400,
				/'rose' is not a class of 'iris' \(classes: setosa, versicolor, virginica\)/,
			],
			[{ id: a.id, truth: 7 }, 400, /class name or index .* \(0–2\), got 7/],
			[
				{ id: a.id, truth: ["setosa", "setosa"] },
				400,
				/had 1 row, so 'truth' must be one value/,
			],
			[{ id: a.id }, 400, /give 'reward' \(a number\) or 'truth'/],
			[{ reward: 1 }, 400, /'id' must be the request id/],
			[[], 400, /no feedback/],
			["text", 400, /feedback must be/],
		];
		for (const [body, status, msg] of cases) {
			const r = await feedback("iris", body);
			assert.equal(
				r.status,
				status,
				`${JSON.stringify(body)} → ${JSON.stringify(r.body)}`,
			);
			assert.match(String(r.body.error), msg, JSON.stringify(body));
		}
		const unknownModel = await feedback("nope", { id: a.id, reward: 1 });
		assert.equal(unknownModel.status, 404);
		assert.equal(
			JSON.stringify(await quality("iris")),
			before,
			"nothing changed",
		);
		assert.equal(
			(await feedback("iris", { id: a.id, truth: "setosa" })).status,
			200,
		);
		const twice = await feedback("iris", { id: a.id, reward: 1 });
		assert.equal(twice.status, 409);
		assert.match(String(twice.body.error), /already received feedback/);
		const old = await predict("iris", [iris.records[0]], "old-1");
		now += 60_001;
		const expired = await feedback("iris", { id: old.id, truth: "setosa" });
		assert.equal(expired.status, 404);
		assert.match(
			String(expired.body.error),
			/older than the feedback window \(60 s\)/,
		);
	});

	it("the id map is bounded: past the cap the oldest ids are dropped (and counted)", async () => {
		const evicted = join.evicted;
		for (let i = 0; i < 60; i++)
			await predict("iris", [iris.records[0]], `cap-${i}`);
		assert.equal(join.size, 50);
		assert.ok(join.evicted >= evicted + 10);
		assert.equal(
			(await feedback("iris", { id: "cap-0", reward: 1 })).status,
			404,
		);
		assert.equal(
			(await feedback("iris", { id: "cap-59", reward: 1 })).status,
			200,
		);
	});
});

it("a server without feedback says how to turn it on", async () => {
	const off = await startRest({ "iris-logreg": "iris" });
	try {
		const res = await fetch(`${off.url}/v2/models/iris/feedback`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ id: "x", reward: 1 }),
		});
		assert.equal(res.status, 400);
		assert.match(
			((await res.json()) as { error: string }).error,
			/--feedback-max-ids/,
		);
	} finally {
		await off.close();
	}
});

it("embedded: predict with an id, then model.feedback() and model.quality()", async () => {
	const m = await loadModel(
		`${import.meta.dirname}/../fixtures/models/iris-logreg`,
		{
			feedback: { maxIds: 10 },
		},
	);
	try {
		const [p] = await m.predict([iris.records[0] as Record<string, unknown>], {
			id: "e1",
		});
		await m.predict([iris.records[1] as Record<string, unknown>], {
			id: "e2",
		});
		assert.deepEqual(
			m.feedback([
				{ id: "e1", truth: p?.label },
				{ id: "e2", truth: "setosa" },
			]),
			{ accepted: 2, joined: 2, byVersion: 0 },
		);
		assert.equal(m.quality()[0]?.cumulative.accuracy, 0.5);
		assert.throws(
			() => m.feedback({ id: "e3", reward: 1 }),
			/no answer of model/,
		);
		const plain = await loadModel(
			`${import.meta.dirname}/../fixtures/models/iris-logreg`,
		);
		try {
			assert.throws(
				() => plain.feedback({ id: "e1", reward: 1 }),
				/load it with loadModel\(ref, \{ feedback/,
			);
		} finally {
			await plain.close();
		}
	} finally {
		await m.close();
	}
});

/** A predict call of model "m" answering one row with class `cls` (INT64 only: no labels, no probabilities). */
function classCall(requestId: string, version: number, cls = 1n) {
	return {
		model: "m",
		version,
		requestId,
		inputs: [],
		seconds: 0,
		plan: { inputs: [], features: [], labels: undefined },
		reference: undefined,
		outputs: [
			{
				name: "label",
				datatype: "INT64" as const,
				shape: [1],
				data: new BigInt64Array([cls]),
			},
		],
	};
}

it("a shadow copy of a request does not replace the primary's answer under its id", () => {
	const j = new FeedbackJoin();
	const call = classCall("s1", 1);
	j.hook(call);
	j.hook({ ...call, version: 2, shadow: true });
	const seen: string[] = [];
	j.onReward((_m, v) => seen.push(v));
	j.apply("m", [{ id: "s1", reward: 1 }]);
	assert.deepEqual(seen, ["1"]);
});

it("an id answered again keeps the newest answer; its older queue entry neither evicts nor expires the new one", () => {
	let t = 0;
	const j = new FeedbackJoin({ maxIds: 2, retentionMs: 100, now: () => t });
	j.hook(classCall("a", 1));
	t = 60;
	j.hook(classCall("a", 2)); // a again, later
	j.hook(classCall("b", 1));
	assert.equal(j.size, 2);
	t = 120; // a's first answer (t=0) would have expired; its second (t=60) has not
	const seen: string[] = [];
	j.onReward((_m, v) => seen.push(v));
	j.apply("m", [{ id: "a", reward: 1 }]);
	assert.deepEqual(seen, ["2"]);
	j.hook(classCall("c", 1)); // past the cap (2): the oldest live answer (a, at t=60) goes
	assert.equal(j.size, 2);
	assert.equal(j.evicted, 1);
	assert.throws(() => j.apply("m", [{ id: "a", reward: 1 }]), /no answer/);
	assert.equal(j.apply("m", [{ id: "b", reward: 1 }]).joined, 1);
});

it("a classifier without labels or probabilities: a truth beyond 10,000 classes (or an answer that is no class index) is refused, so a window's stored statistics stay small", async () => {
	const t = Date.UTC(2026, 0, 1);
	const j = new FeedbackJoin({ now: () => t });
	const store = await openRegistry("sqlite::memory:");
	const monitor = new DriftMonitor({
		windowSeconds: 60,
		store,
		replica: "r",
		now: () => t,
		timer: false,
	});
	monitor.attach({ onTruth: (fn) => j.onTruth(fn) });
	// Only a class output (INT64), no labels in the bundle, no probabilities: the class count is unknown.
	try {
		j.hook(classCall("huge", 1));
		for (const truth of [50_000_000, "50000000", 10_000])
			assert.throws(
				() => j.apply("m", [{ id: "huge", truth }]),
				(e: MlshipError) =>
					e.code === "MLSHIP_INVALID_INPUT" &&
					/'truth' must be a class index of classification model 'm' \(0–9999: the model gives neither labels nor probabilities, so quality counts at most 10,000 classes; add 'labels' to the bundle for more\)/.test(
						e.message,
					),
				String(truth),
			);
		assert.deepEqual(j.quality.list("m"), [], "nothing counted");
		// The model's own answer out of range: no truth can be scored against it.
		j.hook(classCall("odd", 1, 50_000_000n));
		assert.throws(
			() => j.apply("m", [{ id: "odd", truth: 1 }]),
			/the answer predicted class 50000000, which is not a class index \(0–99999\)/,
		);
		// The highest index allowed is accepted; the stored window stays in the tens of kilobytes.
		assert.equal(j.apply("m", [{ id: "huge", truth: 9_999 }]).joined, 1);
		assert.equal(j.quality.list("m")[0]?.cumulative.rows, 1);
		await monitor.flush(t + 1000);
		const [row] = await store.statsWindows("m", 0);
		assert.ok(row?.quality !== undefined);
		assert.ok(row.quality.length < 100_000, `${row.quality.length} chars`);
		assert.equal((await monitor.report("m", 0)).stats[0]?.quality?.rows, 1);
	} finally {
		await monitor.close();
		await store.close();
	}
});

it("quality statistics refuse a class index they cannot hold (a RangeError, nothing added)", () => {
	const s = new QualityStats("classification");
	for (const row of [
		{ pred: 0, truth: 50_000_000 },
		{ pred: -1, truth: 0 },
		{ pred: 0.5, truth: 0 },
	])
		assert.throws(
			() => s.addClass(row),
			/quality statistics count class indices 0–99999/,
		);
	assert.equal(s.n, 0);
	assert.equal(JSON.stringify(s.toJSON().fn), "[]");
});
