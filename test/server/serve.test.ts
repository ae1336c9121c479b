// `mlship serve` as a real process: REST and gRPC up, health answers during a large batch, overload gives
// 503 with Retry-After and bounded memory, SIGTERM finishes in-flight work and exits 0.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";
import { type Served, serve } from "../helpers/serve-process.ts";
import { binaryBody } from "../helpers/server.ts";

/** `rows` rows of the digits MLP's input, the golden records repeated. */
async function digitsTensor(rows: number): Promise<Tensor> {
	const b = await readBundle(bundleDir("digits-mlp"));
	const t = encodeRecords(planTable(b.manifest), golden("digits-mlp").records)
		.tensors[0];
	assert.ok(t);
	const src = t.data as Float32Array;
	const data = new Float32Array(rows * 64);
	for (let i = 0; i < rows * 64; i++) data[i] = src[i % src.length] as number;
	return { name: "float_input", datatype: "FP32", shape: [rows, 64], data };
}

async function digitsBody(rows: number): Promise<string> {
	const t = await digitsTensor(rows);
	return JSON.stringify({
		inputs: [{ ...t, data: Array.from(t.data as Float32Array) }],
		outputs: [{ name: "label" }],
	});
}

function rssKb(pid: number): number {
	return Number(
		/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1],
	);
}

describe("mlship serve", () => {
	let s: Served;
	before(async () => {
		s = await serve([
			"--model",
			`${bundleDir("digits-mlp")}:digits`,
			"--model",
			bundleDir("iris-logreg"),
			"--max-queue-size",
			"8",
			"--log-level",
			"info",
		]);
	});
	after(async () => {
		if (s.proc.exitCode === null) {
			s.proc.kill("SIGKILL");
			await s.exit;
		}
	});

	it("serves both models over REST, named by flag or by manifest", async () => {
		const ready = await fetch(`${s.http}/v2/health/ready`);
		assert.equal(ready.status, 200);
		const meta = (await (
			await fetch(`${s.http}/v2/models/iris-logreg`)
		).json()) as { name: string; platform: string };
		assert.equal(meta.platform, "onnx_onnxv1");
		const res = await fetch(`${s.http}/v2/models/iris-logreg/predict`, {
			method: "POST",
			body: JSON.stringify({
				instances: golden("iris-logreg").records.slice(0, 2),
			}),
		});
		assert.equal(res.status, 200);
		const body = (await res.json()) as { predictions: { label: string }[] };
		assert.deepEqual(
			body.predictions.map((p) => p.label),
			["setosa", "versicolor"],
		);
		assert.ok(s.grpcPort > 0);
	});

	it("health answers while a large batch runs", async () => {
		const big = await digitsBody(40_000);
		const order: string[] = [];
		const inferring = fetch(`${s.http}/v2/models/digits/infer`, {
			method: "POST",
			body: big,
		}).then(async (r) => {
			assert.equal(r.status, 200);
			await r.arrayBuffer();
			order.push("infer");
		});
		await new Promise((r) => setTimeout(r, 20)); // let the big request reach the model
		for (let i = 0; i < 3; i++) {
			const h = await fetch(`${s.http}/v2/health/live`);
			assert.equal(h.status, 200);
			order.push("live");
		}
		await inferring;
		assert.deepEqual(
			order.slice(0, 3),
			["live", "live", "live"],
			`order: ${order.join(",")}`,
		);
	});

	it("overload: excess requests get 503 with Retry-After, the rest succeed, memory stays bounded", async () => {
		// Binary tensor bodies: decoding one costs next to nothing, so the model's work is what the requests wait on
		// and the 8-deep queue fills. (With JSON bodies the main thread's parsing paced the arrivals below the model's
		// rate on a quiet machine, and nothing was refused.)
		const { body, headerLength } = binaryBody(
			{ outputs: [{ name: "label" }] },
			[await digitsTensor(2000)],
		);
		const before = rssKb(s.proc.pid as number);
		const statuses: number[] = [];
		let retryAfter = "";
		await Promise.all(
			Array.from({ length: 200 }, async () => {
				const r = await fetch(`${s.http}/v2/models/digits/infer`, {
					method: "POST",
					body,
					headers: {
						"content-type": "application/octet-stream",
						"inference-header-content-length": String(headerLength),
					},
				});
				statuses.push(r.status);
				if (r.status === 503) retryAfter = r.headers.get("retry-after") ?? "";
				const j = (await r.json()) as {
					outputs?: { shape: number[] }[];
					error?: string;
				};
				if (r.status === 200) assert.deepEqual(j.outputs?.[0]?.shape, [2000]);
				else assert.match(j.error ?? "", /queue is full/);
			}),
		);
		const ok = statuses.filter((x) => x === 200).length;
		const refused = statuses.filter((x) => x === 503).length;
		assert.equal(
			ok + refused,
			200,
			`only 200/503 expected: ${[...new Set(statuses)]}`,
		);
		assert.ok(refused > 0 && ok > 0, `ok ${ok}, refused ${refused}`);
		assert.equal(retryAfter, "1");
		const grown = (rssKb(s.proc.pid as number) - before) / 1024;
		assert.ok(grown < 400, `RSS grew ${grown.toFixed(0)} MB`);
		const after = await fetch(`${s.http}/v2/health/ready`);
		assert.equal(after.status, 200);
	});

	it("SIGTERM: an in-flight request finishes, then the process exits 0", async () => {
		const big = await digitsBody(20_000);
		const inflight = fetch(`${s.http}/v2/models/digits/infer`, {
			method: "POST",
			body: big,
		});
		await new Promise((r) => setTimeout(r, 20));
		s.proc.kill("SIGTERM");
		const r = await inflight;
		assert.equal(r.status, 200);
		const j = (await r.json()) as { outputs: { shape: number[] }[] };
		assert.deepEqual(j.outputs[0]?.shape, [20_000]);
		assert.equal(await s.exit, 0);
		await assert.rejects(fetch(`${s.http}/v2/health/live`));
	});
});

it("mlship serve without models says what to do (exit 2)", async () => {
	const p = spawn(
		process.execPath,
		[CLI, "serve", "--http-port", "0", "--grpc-port", "-1"],
		{ stdio: ["ignore", "pipe", "pipe"] },
	);
	let err = "";
	p.stderr?.on("data", (d) => {
		err += d;
	});
	const code = await new Promise<number | null>((r) => p.on("exit", r));
	assert.equal(code, 2);
	assert.match(err, /no models to serve: pass --model/);
});
