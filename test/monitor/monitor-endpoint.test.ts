// serve --monitor-window: GET /v2/models/{m}/monitor and the drift gauges on /metrics, on a real server and real time.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { resolveSettings } from "../../src/server/settings.ts";
import { startRest } from "../helpers/server.ts";
import { bundleWithReference, rows } from "./synth.ts";

let server: RunningServer;
let url: string;

before(async () => {
	const { dir } = await bundleWithReference(rows(600, 41));
	server = await startServer(
		resolveSettings(
			{
				models: [{ name: "diab", source: dir }],
				host: "127.0.0.1",
				http_port: 0,
				grpc_port: -1,
				log_level: "silent",
				monitor_window: "1s",
				monitor_min_rows: 30,
			},
			undefined,
			{},
		),
	);
	url = `http://127.0.0.1:${server.httpPort}`;
});

after(async () => {
	await server?.close();
});

async function predict(data: unknown[]): Promise<void> {
	const res = await fetch(`${url}/v2/models/diab/predict`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ instances: data }),
	});
	assert.equal(res.status, 200, await res.text());
}

interface Report {
	window_seconds: number;
	min_rows: number;
	windows: {
		start: string;
		rows: number;
		open: boolean;
		features: Record<
			string,
			{
				method: string;
				statistic: number | null;
				threshold: number;
				drifted: boolean | null;
			}
		>;
		dataset: { drifted_dataset: boolean | null; share: number | null };
		prediction_drift: boolean | null;
	}[];
	latest: unknown[];
	stats: {
		version: number;
		requests: number;
		errors: number;
		p50_ms: number | null;
	}[];
}

async function monitor(query = ""): Promise<Report> {
	const res = await fetch(`${url}/v2/models/diab/monitor${query}`);
	assert.equal(res.status, 200, await res.clone().text());
	return (await res.json()) as Report;
}

test("the monitor endpoint shows each window's per-feature method, statistic, threshold and verdict; /metrics the gauges", async () => {
	// One request of shifted rows: it lands in one 1 s window.
	await predict(
		rows(200, 42, {
			mean: { bmi: 1.2, s5: 1.2, s3: -1.2, s1: 1 },
			male: 0.9,
			old: 0.7,
		}),
	);
	// Wait until that window has closed and been judged (real time: the server's own timer).
	let r: Report | undefined;
	for (let i = 0; i < 200; i++) {
		r = await monitor("?since=1h");
		if (r.latest.length > 0) break;
		await new Promise((res) => setTimeout(res, 100));
	}
	assert.ok(r && r.latest.length > 0, "a window was judged");
	assert.equal(r.window_seconds, 1);
	assert.equal(r.min_rows, 30);
	const w = r.windows.find((x) => x.rows === 200);
	assert.ok(w, JSON.stringify(r.windows.map((x) => x.rows)));
	assert.equal(w.open, false);
	assert.deepEqual(
		{ ...w.features.bmi, statistic: typeof w.features.bmi?.statistic },
		{
			method: "ks",
			statistic: "number",
			threshold: 0.05,
			drifted: true,
			current_rows: 200,
			reference_rows: 600,
		},
	);
	assert.equal(w.features.sex?.method, "z");
	assert.equal(w.dataset.drifted_dataset, true);
	assert.equal(w.prediction_drift, true);
	// Traffic and latency of the same request, read from the server's metrics at its ticks (warm-ups not counted).
	let stats = r.stats;
	for (let i = 0; i < 100 && stats.length === 0; i++) {
		await new Promise((res) => setTimeout(res, 100));
		stats = (await monitor("?since=1h")).stats;
	}
	assert.deepEqual(
		stats.map((x) => [x.version, x.requests, x.errors, x.p50_ms !== null]),
		[[1, 1, 0, true]],
	);
	let text = "";
	for (let i = 0; i < 100; i++) {
		text = await (await fetch(`${url}/metrics`)).text();
		if (text.includes("mlship_feature_drift{")) break;
		await new Promise((res) => setTimeout(res, 100));
	}
	assert.match(
		text,
		/mlship_feature_drift\{model="diab",version="1",feature="bmi",method="ks"\} [0-9.e-]+/,
	);
	assert.match(
		text,
		/mlship_dataset_drift_share\{model="diab",version="1"\} [0-9.]+/,
	);
	assert.match(text, /mlship_requests_total/); // the data plane's metrics are still there
	// Profiles on request only.
	const full = (await (
		await fetch(`${url}/v2/models/diab/monitor?since=1h&profiles=true`)
	).json()) as Record<string, unknown>;
	assert.ok(full.current && full.references);
	assert.equal((await monitor()).windows.length >= 1, true);
});

test("the monitor endpoint carries live quality from feedback: ground truth joined by request id, per version", async () => {
	const res = await fetch(`${url}/v2/models/diab/predict`, {
		method: "POST",
		headers: { "content-type": "application/json", "x-request-id": "q-1" },
		body: JSON.stringify({ instances: rows(1, 7) }),
	});
	assert.equal(res.status, 200);
	const served = (await res.json()) as {
		predictions: Record<string, number>[];
	};
	const predicted = Object.values(served.predictions[0] ?? {}).find(
		(v) => typeof v === "number",
	) as number;
	const fb = await fetch(`${url}/v2/models/diab/feedback`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ id: "q-1", truth: predicted + 2 }),
	});
	assert.equal(fb.status, 200, await fb.clone().text());
	const r = (await monitor()) as unknown as {
		quality: { version: string; cumulative: Record<string, unknown> }[];
	};
	assert.equal(r.quality.length, 1, JSON.stringify(r.quality));
	assert.equal(r.quality[0]?.version, "1");
	assert.ok(
		Math.abs(
			Number((r.quality[0]?.cumulative as { mae?: number } | undefined)?.mae) -
				2,
		) < 1e-3,
		JSON.stringify(r.quality[0]),
	);
});

test("errors: unknown model 404, bad since 400, monitoring off 400 saying how to turn it on", async () => {
	assert.equal((await fetch(`${url}/v2/models/nope/monitor`)).status, 404);
	const bad = await fetch(`${url}/v2/models/diab/monitor?since=yesterday`);
	assert.equal(bad.status, 400);
	assert.match(await bad.text(), /since must be a duration/);
	const off = await startRest({ "iris-logreg": "iris" });
	try {
		const res = await fetch(`${off.url}/v2/models/iris/monitor`);
		assert.equal(res.status, 400);
		assert.match(await res.text(), /--monitor-window 5m/);
	} finally {
		await off.close();
	}
});
