// End-to-end scenarios every broker runs: `mlship stream` processes against a real broker, checked against golden outputs.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { InMessage, OutMessage } from "../../src/stream/types.ts";
import { assertClose, bundleDir, golden } from "../helpers/fixtures.ts";
import {
	Collector,
	produce,
	startStream,
	stopStream,
} from "../helpers/stream-process.ts";
import { hdr, text, textMessage } from "./msg.ts";

export interface E2EBroker {
	/** A fresh, empty queue (topic/stream/subject) as a connector URI; `label` makes names readable. */
	fresh(label: string): Promise<string>;
	/** Stops the broker and starts it again with its data (messages, groups, offsets). */
	restart(): Promise<void>;
	/** Waits until `members` processors of `group` are settled members (brokers that rebalance, like Kafka). */
	settle?: (group: string, members: number) => Promise<void>;
}

const MODEL = "iris-logreg";
const g = golden(MODEL);
const LABELS = ["setosa", "versicolor", "virginica"];

/** Request i: golden record i mod 38, key k<i>, request id m<i>, one extra header. */
function request(i: number): OutMessage {
	return textMessage(`k${i}`, JSON.stringify(g.records[i % g.records.length]), {
		"x-request-id": `m${i}`,
		trace: `t${i}`,
	});
}
export const requests = (from: number, n: number) =>
	Array.from({ length: n }, (_, i) => request(from + i));

interface Result {
	id: string;
	key?: string;
	model_name: string;
	model_version: string;
	predictions: { label: string; probabilities: number[] }[];
}
const parse = (m: InMessage) => JSON.parse(text(m.value) ?? "null") as Result;
export const resultId = (m: InMessage) =>
	m.value === null
		? "tombstone"
		: String((JSON.parse(text(m.value) ?? "null") as { id?: unknown }).id);

/** Checks a records result against the golden output of its request. */
export function assertGolden(m: InMessage): void {
	const r = parse(m);
	const i = Number(r.id.slice(1));
	const k = i % g.records.length;
	assert.equal(r.model_name, MODEL);
	assert.equal(text(m.key), `k${i}`, "the key is carried to the result");
	assert.equal(hdr(m, "trace"), `t${i}`, "headers pass through");
	assert.equal(hdr(m, "x-request-id"), `m${i}`);
	assert.equal(hdr(m, "mlship-model-version"), r.model_version);
	const p = r.predictions[0];
	assert.ok(p && r.predictions.length === 1);
	assert.equal(
		p.label,
		LABELS[g.expected.label?.[k] as number],
		`label of m${i}`,
	);
	const want = g.expected.probabilities?.[k] as number[];
	for (const [j, v] of p.probabilities.entries())
		assertClose(v, want[j] as number, `m${i} probabilities[${j}]`);
}

/** The first message with request id `id` (fails when there is none). */
function one(c: Collector, id: string): InMessage {
	const m = c.byId.get(id)?.[0];
	assert.ok(m, `a message with id ${id}`);
	return m;
}

/** `mlship stream` arguments for the fixture model from `input` to `output`, plus `extra`. */
export const streamArgs = (
	input: string,
	output: string,
	...extra: string[]
) => ["-m", bundleDir(MODEL), "--from", input, "--to", output, ...extra];

export const every = (c: Collector, from: number, n: number) => () => {
	for (let i = from; i < from + n; i++) if (!c.byId.has(`m${i}`)) return false;
	return true;
};

/**
 * The end-to-end checks for one broker: golden outputs, dead letters, SIGKILL + restart, broker restart,
 * two processors in a group, an alias moved mid-stream.
 */
export function runEndToEnd(name: string, broker: E2EBroker): void {
	describe(`mlship stream end to end: ${name}`, () => {
		let groups = 0;
		const collect = (uri: string, id = resultId) =>
			new Collector(uri, `check${++groups}`, id);
		const model = bundleDir(MODEL);

		it("results equal the golden outputs; key, request id and headers are carried; OIP requests work; SIGTERM drains", async () => {
			const [input, output] = [
				await broker.fresh("in"),
				await broker.fresh("out"),
			];
			const oip: OutMessage = textMessage(
				"oip",
				JSON.stringify({
					id: "oip-1",
					inputs: [
						{
							name: "float_input",
							datatype: "FP32",
							shape: [2, 4],
							data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3],
						},
					],
				}),
			);
			await produce(input, [...requests(0, g.records.length), oip]);
			const out = collect(output);
			const p = await startStream(streamArgs(input, output, "--json"));
			try {
				await out.until(every(out, 0, g.records.length), "every golden result");
				await out.until(() => out.byId.has("oip-1"), "the OIP result");
				for (let i = 0; i < g.records.length; i++)
					assertGolden(one(out, `m${i}`));
				const o = JSON.parse(text(one(out, "oip-1").value) ?? "") as {
					id: string;
					model_name: string;
					outputs: { name: string; shape: number[]; data: number[] }[];
				};
				assert.equal(o.model_name, MODEL);
				assert.deepEqual(
					o.outputs.find((t) => t.name === "label")?.data,
					[0, 2],
				);
			} finally {
				const { code, stats } = await stopStream(p);
				await out.close();
				assert.equal(code, 0, p.stderr());
				assert.equal(stats?.produced, g.records.length + 1);
				assert.equal(stats?.acked, g.records.length + 1);
			}
		});

		it("messages of many records (parsed on the decode thread) give each record's golden output, in order", async () => {
			const [input, output] = [
				await broker.fresh("many-in"),
				await broker.fresh("many-out"),
			];
			// Three passes over the golden records: ~10 KB of JSON per message, above the decode thread's 8 KiB.
			const rows = [...g.records, ...g.records, ...g.records];
			const many = (id: string, body: unknown) =>
				textMessage(id, JSON.stringify(body), { "x-request-id": id });
			await produce(input, [
				many("many-1", rows),
				many("many-2", { records: rows, id: "ignored-for-the-header" }),
			]);
			const out = collect(output);
			const p = await startStream(streamArgs(input, output));
			try {
				await out.until(
					() => out.byId.has("many-1") && out.byId.has("many-2"),
					"both results",
				);
				for (const id of ["many-1", "many-2"]) {
					const r = parse(one(out, id));
					assert.equal(r.predictions.length, rows.length);
					for (const [j, pr] of r.predictions.entries()) {
						const k = j % g.records.length;
						assert.equal(pr.label, LABELS[g.expected.label?.[k] as number]);
						const want = g.expected.probabilities?.[k] as number[];
						for (const [c, v] of pr.probabilities.entries())
							assertClose(v, want[c] as number, `${id} row ${j}`);
					}
				}
			} finally {
				await stopStream(p);
				await out.close();
			}
		});

		it("poison messages go to the dead-letter queue with their error and original payload; the stream goes on", async () => {
			const [input, output, dlq] = [
				await broker.fresh("in"),
				await broker.fresh("out"),
				await broker.fresh("dlq"),
			];
			const poison = [
				"{not json",
				JSON.stringify({
					sepal_length: "wide",
					sepal_width: 1,
					petal_length: 1,
					petal_width: 1,
				}),
				"[]",
			];
			const msgs = requests(0, 20);
			poison.forEach((value, j) => {
				msgs.splice(
					5 + j * 5,
					0,
					textMessage(`bad${j}`, value, { "x-request-id": `bad${j}` }),
				);
			});
			await produce(input, msgs);
			const out = collect(output);
			const dead = collect(dlq, (m) => String(text(m.key)));
			const p = await startStream(streamArgs(input, output, "--dlq", dlq));
			try {
				await out.until(every(out, 0, 20), "20 results");
				await dead.until(() => dead.all.length >= 3, "3 dead letters");
				for (const m of out.all) assertGolden(m);
				assert.equal(out.all.length, 20);
				// The default dead letter is the original record byte for byte, with Kafka Connect's error headers.
				for (let j = 0; j < 3; j++) {
					const d = one(dead, `bad${j}`);
					assert.deepEqual(
						d.value,
						Buffer.from(poison[j] as string),
						"the original payload",
					);
					assert.equal(
						hdr(d, "x-request-id"),
						`bad${j}`,
						"the original headers",
					);
					assert.equal(
						hdr(d, "__connect.errors.exception.class.name"),
						"MLSHIP_INVALID_INPUT",
					);
					assert.ok(
						(hdr(d, "__connect.errors.exception.message") ?? "").length > 5,
						"the error says why",
					);
					assert.ok(hdr(d, "__connect.errors.topic"), "the source is named");
					assert.match(hdr(d, "__connect.errors.offset") ?? "", /\S/);
				}
				assert.match(
					hdr(one(dead, "bad1"), "__connect.errors.exception.message") ?? "",
					/sepal_length/,
				);
			} finally {
				assert.equal((await stopStream(p)).code, 0);
				await out.close();
				await dead.close();
			}
			assert.equal(dead.all.length, 3);
		});

		it("a processor killed with SIGKILL mid-stream and restarted leaves no input without a result (duplicates counted)", async (t) => {
			const [input, output] = [
				await broker.fresh("in"),
				await broker.fresh("out"),
			];
			const out = collect(output);
			const args = streamArgs(
				input,
				output,
				"--consumer",
				"fixed",
				"--batch-size",
				"5",
				"--max-in-flight",
				"20",
			);
			await produce(input, requests(0, 1000));
			const first = await startStream(args);
			await out.until(
				() => out.byId.size >= 100,
				"100 results before the kill",
			);
			first.proc.kill("SIGKILL");
			await first.exit;
			const atKill = out.byId.size;
			await produce(input, requests(1000, 500));
			const second = await startStream(args);
			try {
				await out.until(
					every(out, 0, 1500),
					"a result for every input",
					120_000,
				);
			} finally {
				assert.equal((await stopStream(second)).code, 0);
				await out.close();
			}
			const duplicates = out.all.length - out.byId.size;
			t.diagnostic(
				`${name}: 1500 inputs, ${atKill} results at SIGKILL, ${out.byId.size} distinct results, ${duplicates} duplicates`,
			);
			assert.equal(out.byId.size, 1500);
			for (const m of out.all) assertGolden(m);
		});

		it("the broker restarted mid-stream: no input is lost", async (t) => {
			const [input, output] = [
				await broker.fresh("in"),
				await broker.fresh("out"),
			];
			const out = collect(output);
			const p = await startStream(
				streamArgs(input, output, "--batch-size", "10"),
			);
			try {
				await produce(input, requests(0, 500));
				await out.until(
					() => out.byId.size >= 50,
					"50 results before the restart",
				);
				await broker.restart();
				await produce(input, requests(500, 500));
				await out.until(
					every(out, 0, 1000),
					"a result for every input after the restart",
					120_000,
				);
			} finally {
				assert.equal((await stopStream(p)).code, 0);
				await out.close();
			}
			t.diagnostic(
				`${name}: 1000 inputs, ${out.byId.size} distinct results, ${out.all.length - out.byId.size} duplicates`,
			);
			assert.equal(out.byId.size, 1000);
		});

		/** Fresh input and output, a collector on the output, and processor arguments for group `group`. */
		const groupRun = async (group: string) => {
			const [input, output] = [
				await broker.fresh("in"),
				await broker.fresh("out"),
			];
			const args = streamArgs(
				input,
				output,
				"--group",
				group,
				"--batch-size",
				"10",
				"--max-in-flight",
				"20",
				"--json",
			);
			return { input, out: collect(output), args };
		};

		it("two processors in one group share the input: every message scored, none lost", async () => {
			const { input, out, args } = await groupRun("pair");
			const a = await startStream(args);
			const b = await startStream(args);
			let sa: Record<string, unknown> | undefined;
			let sb: Record<string, unknown> | undefined;
			try {
				// Input only once both are members: otherwise the first may finish it all before the second joins.
				await broker.settle?.("pair", 2);
				await produce(input, requests(0, 1000));
				await out.until(
					every(out, 0, 1000),
					"a result for every input",
					120_000,
				);
			} finally {
				sa = (await stopStream(a)).stats;
				sb = (await stopStream(b)).stats;
				await out.close();
			}
			assert.equal(out.byId.size, 1000);
			assert.ok(
				Number(sa?.produced) > 0 && Number(sb?.produced) > 0,
				`both processors scored: ${JSON.stringify([sa, sb])}`,
			);
			assert.ok(Number(sa?.produced) + Number(sb?.produced) >= 1000);
		});

		it("a processor added and one removed (SIGTERM) mid-stream: the group rebalances and no input is lost", async () => {
			const { input, out, args } = await groupRun("scale");
			const a = await startStream(args);
			let b: Awaited<ReturnType<typeof startStream>> | undefined;
			let sa: Record<string, unknown> | undefined;
			let sb: Record<string, unknown> | undefined;
			try {
				await produce(input, requests(0, 1000));
				await out.until(
					() => out.byId.size >= 200,
					"200 results from the first processor",
				);
				b = await startStream(args); // added while the stream runs
				await out.until(() => out.byId.size >= 600, "600 results");
				sa = (await stopStream(a)).stats; // removed while the stream runs
				await produce(input, requests(1000, 500));
				await out.until(
					every(out, 0, 1500),
					"a result for every input",
					120_000,
				);
			} finally {
				if (!sa) sa = (await stopStream(a)).stats;
				if (b) sb = (await stopStream(b)).stats;
				await out.close();
			}
			assert.equal(out.byId.size, 1500);
			assert.ok(
				Number(sa?.produced) > 0 && Number(sb?.produced) > 0,
				`both processors scored: ${JSON.stringify([sa, sb])}`,
			);
		});

		it("a model alias moved mid-stream: results switch versions with no gap", async () => {
			const dir = await mkdtemp(join(tmpdir(), "mlship-stream-reg-"));
			const registry = `sqlite:${join(dir, "r.db")}`;
			const store = await openRegistry(registry);
			const [input, output] = [
				await broker.fresh("in"),
				await broker.fresh("out"),
			];
			const out = collect(output);
			const version = (v: string) => () =>
				out.all.filter((m) => parse(m).model_version === v).length >= 30;
			try {
				const b = await readBundle(model);
				await store.register(b, { aliases: ["production"] });
				await store.register(b);
				const p = await startStream([
					"-m",
					`${MODEL}@production`,
					"--registry",
					registry,
					"--from",
					input,
					"--to",
					output,
					"--batch-size",
					"10",
				]);
				let n = 0;
				const feed = async (until: () => boolean) => {
					while (!until()) {
						await produce(input, requests(n, 10));
						n += 10;
						await new Promise((r) => setTimeout(r, 20));
					}
				};
				try {
					await feed(version("1"));
					await store.setAlias(MODEL, "production", 2);
					await feed(version("2"));
					await out.until(
						every(out, 0, n),
						"a result for every input",
						120_000,
					);
				} finally {
					assert.equal((await stopStream(p)).code, 0);
				}
				assert.equal(out.byId.size, n, "no gap: every input has a result");
				const versions = new Set(out.all.map((m) => parse(m).model_version));
				assert.deepEqual([...versions].sort(), ["1", "2"]);
				for (const m of out.all) assertGolden(m);
				// The last batch was produced after version 2 served 30 results: it is all version 2.
				for (let i = n - 10; i < n; i++)
					assert.equal(parse(one(out, `m${i}`)).model_version, "2");
			} finally {
				await out.close();
				await store.close();
				await rm(dir, { recursive: true, force: true });
			}
		});
	});
}
