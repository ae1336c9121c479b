// mlship stream --explain K on Redis Streams: each record result carries the K largest contributions under the
// keys batch run --explain writes as columns (checked against batch's own code on the same rows); OIP requests
// get the `explanation` output; a model that cannot explain and --format avro are refused before reading.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { explainColumns } from "../../src/batch/score.ts";
import { loadModel } from "../../src/model.ts";
import { runStream } from "../../src/stream/run.ts";
import type { InMessage } from "../../src/stream/types.ts";
import { startRedis } from "../harness/redis.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { Collector, produce } from "../helpers/stream-process.ts";
import { streamUntil, text, textMessage } from "../stream/msg.ts";

const F = "trees/wine-xgb-json";
const K = 3;
const N = 12;

describe("mlship stream --explain on Redis", () => {
	let redis: Awaited<ReturnType<typeof startRedis>>;
	before(async () => {
		redis = await startRedis();
	});
	after(() => redis?.stop());

	it("record results carry explain_<i>_feature/value as batch run --explain computes them; OIP gets the explanation output", async () => {
		const rows = golden(F).records.slice(0, N);
		const [input, output] = [
			`${redis.url}/explain-in`,
			`${redis.url}/explain-out`,
		];
		await produce(input, [
			...rows.map((r, i) =>
				textMessage(`k${i}`, JSON.stringify(r), { "x-request-id": `m${i}` }),
			),
		]);
		const idOf = (m: InMessage) =>
			String((JSON.parse(text(m.value) ?? "null") as { id?: unknown }).id);
		const out = new Collector(output, "check", idOf);
		try {
			await streamUntil(
				{ model: bundleDir(F), from: input, to: output, explain: K },
				() => out.byId.size >= N,
			);
			await out.until(() => out.byId.size >= N, "every result");
			// Expected: batch's explain columns on the same rows.
			const m = await loadModel(bundleDir(F), { mode: "inline" });
			const cols = explainColumns(
				await m.explainTensors(m.encodeTable(rows)),
				K,
			);
			await m.close();
			for (let i = 0; i < N; i++) {
				const res = JSON.parse(
					text(out.byId.get(`m${i}`)?.[0]?.value ?? null) ?? "",
				) as {
					predictions: Record<string, unknown>[];
				};
				const p = res.predictions[0] as Record<string, unknown>;
				assert.ok(typeof p.label === "string", "the prediction itself is kept");
				for (const c of cols) {
					const want = c.values[i];
					if (typeof want === "number")
						assert.ok(
							Math.abs((p[c.name] as number) - want) <= 1e-9,
							`m${i} ${c.name}`,
						);
					else assert.equal(p[c.name], want, `m${i} ${c.name}`);
				}
				assert.equal(
					Object.keys(p).filter((k) => k.startsWith("explain_")).length,
					2 * K,
				);
			}
		} finally {
			await out.close();
		}
	});

	it("an OIP request gets the explanation output beside the model's outputs", async () => {
		const m = await loadModel(bundleDir(F), { mode: "inline" });
		const rows = golden(F).records.slice(0, 2);
		const tensors = m.encodeTable(rows);
		const want = (await m.explain(rows, { top: K })).explanations;
		await m.close();
		const [input, output] = [`${redis.url}/oip-in`, `${redis.url}/oip-out`];
		await produce(input, [
			textMessage(
				"oip",
				JSON.stringify({
					id: "oip-1",
					inputs: tensors.map((t) => ({
						name: t.name,
						datatype: t.datatype,
						shape: t.shape,
						data: Array.from(t.data as ArrayLike<number>),
					})),
				}),
			),
		]);
		const out = new Collector(output, "check-oip", (msg) =>
			String((JSON.parse(text(msg.value) ?? "null") as { id?: unknown }).id),
		);
		try {
			await streamUntil(
				{ model: bundleDir(F), from: input, to: output, explain: K },
				() => out.byId.has("oip-1"),
			);
			await out.until(() => out.byId.has("oip-1"), "the OIP result");
			const res = JSON.parse(
				text(out.byId.get("oip-1")?.[0]?.value ?? null) ?? "",
			) as {
				outputs: { name: string; data: string[] }[];
				parameters?: Record<string, unknown>;
			};
			assert.deepEqual(
				res.outputs.map((o) => o.name),
				["label", "probabilities", "explanation"],
			);
			const x = res.outputs[2]?.data.map((s) => JSON.parse(s));
			assert.deepEqual(x, want);
			assert.equal(res.parameters?.explain_method, "tree_path_dependent");
		} finally {
			await out.close();
		}
	});

	it("refuses before reading: a model on the onnx runtime, --format avro, a bad K", async () => {
		const base = {
			from: `${redis.url}/never-in`,
			to: `${redis.url}/never-out`,
		};
		await assert.rejects(
			runStream({ ...base, model: bundleDir("wine-xgb"), explain: K }),
			(e: { code?: string; message: string }) =>
				e.code === "MLSHIP_UNSUPPORTED_MODEL" &&
				/runtime: trees/.test(e.message),
		);
		await assert.rejects(
			runStream({
				...base,
				model: bundleDir(F),
				explain: K,
				format: "avro",
				schema: "x.avsc",
			}),
			/--explain cannot go with --format avro/,
		);
		await assert.rejects(
			runStream({ ...base, model: bundleDir(F), explain: 0 }),
			/--explain must be an integer from 1 to 1000/,
		);
	});
});
