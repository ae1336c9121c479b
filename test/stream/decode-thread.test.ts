// The decode thread: large JSON payloads of records parsed into columns off the main thread give the same results,
// ids and dead letters as the main thread's own decoding, with a real model.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import {
	encodeColumns,
	encodeRecords,
	planTable,
} from "../../src/codec/table.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import { columnsToRows } from "../../src/dataplane/entities.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import {
	DECODE_THREAD_MIN_BYTES,
	DecodeThread,
} from "../../src/stream/decode.ts";
import { textHeader } from "../../src/stream/headers.ts";
import { StreamProcessor } from "../../src/stream/processor.ts";
import type {
	InMessage,
	OutMessage,
	Sink,
	Source,
} from "../../src/stream/types.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";

const MODEL = "breast-cancer-gbdt";
let dp: DataPlane;
before(async () => {
	dp = await createDataPlane({
		models: [{ name: "bc", source: bundleDir(MODEL) }],
		processMetrics: false,
	});
});
after(() => dp.close());

const records = golden(MODEL).records as Record<string, unknown>[];
/** 100 records from `at`: ~75 KB of JSON, well above the decode thread's threshold. */
const hundred = (at: number) =>
	Array.from({ length: 100 }, (_, j) => ({
		...records[(at + j) % records.length],
	}));

function msg(
	i: number,
	value: string | null,
	headers: InMessage["headers"] = [],
): InMessage {
	return {
		id: String(i),
		key: Buffer.from(`k${i}`),
		value: value === null ? null : Buffer.from(value),
		headers,
		origin: { topic: "in", partition: 0, offset: String(i) },
	};
}

/** Good messages (lists, `{"records", "id"}`, header ids, one small record) and bad ones the model or parser refuses. */
function messages(): InMessage[] {
	const first = Object.keys(records[0] as object)[0] as string;
	const missing = hundred(7);
	delete (missing[42] as Record<string, unknown>)[first];
	const text = hundred(9);
	(text[3] as Record<string, unknown>)[first] = "lots";
	const extra = hundred(11);
	(extra[5] as Record<string, unknown>).note = "extra keys are ignored";
	const without = hundred(12).map((r) => {
		const { [first]: _, ...rest } = r;
		return rest;
	});
	const big = JSON.stringify(hundred(0));
	return [
		msg(0, big),
		msg(1, JSON.stringify({ records: hundred(1), id: "body-1" })),
		msg(2, JSON.stringify({ instances: hundred(2), id: 22 }), [
			textHeader("x-request-id", "hdr-2"),
		]),
		msg(3, JSON.stringify(records[3])),
		msg(4, `${big.slice(0, -1)},`),
		msg(5, JSON.stringify(missing)),
		msg(6, JSON.stringify(text)),
		msg(7, JSON.stringify(extra)),
		msg(8, JSON.stringify({ records: hundred(3), id: "bad\u0001id" })),
		msg(9, JSON.stringify([...hundred(4), 5])),
		msg(10, JSON.stringify(hundred(5))),
		msg(11, null),
		// Every record without a feature: refused as columns in other words, so decoded again on the main thread.
		msg(12, JSON.stringify(without)),
	];
}

class ListSource implements Source {
	#queue: InMessage[];
	acked: string[] = [];
	constructor(m: InMessage[]) {
		this.#queue = m;
	}
	async read(max: number): Promise<InMessage[] | null> {
		if (this.#queue.length === 0) return null;
		return this.#queue.splice(0, max);
	}
	async ack(m: readonly InMessage[]): Promise<void> {
		this.acked.push(...m.map((x) => x.id));
	}
	async close(): Promise<void> {}
}

class ListSink implements Sink {
	out: OutMessage[] = [];
	async write(m: readonly OutMessage[]): Promise<void> {
		this.out.push(...m);
	}
	async close(): Promise<void> {}
}

/** What a message became, comparable across runs: value and headers as text (the failure time left out). */
function shown(o: OutMessage): unknown {
	return {
		key: o.key?.toString(),
		value: o.value?.toString(),
		headers: o.headers
			.filter(([n]) => n !== "__connect.errors.timestamp")
			.map(([n, v]) => [n, v?.toString()]),
	};
}

async function run(decodeThread?: boolean) {
	const source = new ListSource(messages());
	const sink = new ListSink();
	const dlq = new ListSink();
	const p = new StreamProcessor({
		dataPlane: dp,
		model: "bc",
		source,
		sink,
		dlq,
		...(decodeThread === undefined ? {} : { decodeThread }),
		waitMs: 10,
	});
	const stats = await p.run();
	return {
		processor: p,
		stats,
		source,
		results: sink.out.map(shown),
		dead: dlq.out.map(shown),
	};
}

it("results, ids, dead letters and acks are the same with and without the decode thread", async () => {
	const off = await run(false);
	const on = await run(true);
	assert.deepEqual(on.results, off.results);
	assert.deepEqual(on.dead, off.dead);
	assert.deepEqual(on.source.acked, off.source.acked);
	assert.equal(on.stats.produced, 7);
	assert.equal(on.stats.dead, 6);
	assert.equal(on.processor.decodedOffThread, 7);
	assert.equal(off.processor.decodedOffThread, 0);
	// On by default.
	const byDefault = await run();
	assert.equal(byDefault.processor.decodedOffThread, 7);
	assert.deepEqual(byDefault.results, off.results);
	const ids = on.results
		.slice(0, 6)
		.map(
			(r) => (JSON.parse((r as { value: string }).value) as { id: string }).id,
		);
	assert.deepEqual(ids, [
		"in/0/0",
		"body-1",
		"hdr-2",
		"in/0/3",
		"in/0/7",
		"in/0/10",
	]);
	const first = JSON.parse((on.results[0] as { value: string }).value) as {
		predictions: unknown[];
	};
	assert.equal(first.predictions.length, 100);
	// The dead letters carry the main path's own texts.
	const texts = on.dead.map(
		(d) =>
			((d as { headers: [string, string][] }).headers.find(
				([n]) => n === "__connect.errors.exception.message",
			) ?? [])[1],
	);
	assert.match(texts[0] as string, /not JSON/);
	assert.match(texts[1] as string, /missing feature/);
	assert.match(texts[2] as string, /lots/);
	assert.match(texts[3] as string, /printable|request id/);
	assert.match(texts[4] as string, /record 100 is not a JSON object/);
	assert.match(texts[5] as string, /row 1, column '[^']+': missing feature/);
});

it("the decode thread takes large lists of uniform records and leaves everything else to the main thread", async () => {
	const t = new DecodeThread();
	try {
		const batch = messages();
		const got = await t.decode(batch);
		const taken = got.flatMap((g, i) => (g ? [i] : []));
		// 3: small; 4: not JSON; 5: a record missing a key; 7: a record with an extra key; 9: not a record; 11: tombstone.
		assert.deepEqual(taken, [0, 1, 2, 6, 8, 10, 12]);
		assert.ok((batch[3]?.value?.length ?? 0) < DECODE_THREAD_MIN_BYTES);
		const c0 = got[0]?.columns as Record<string, ArrayLike<unknown>>;
		const feature = Object.keys(records[0] as object)[1] as string;
		assert.ok(c0[feature] instanceof Float64Array);
		assert.deepEqual(
			Array.from(c0[feature] as Float64Array),
			hundred(0).map((r) => r[feature]),
		);
		assert.equal(got[1]?.bodyId, "body-1");
		assert.equal(got[2]?.bodyId, "22");
		// A column that is not all numbers crosses as a plain list.
		const first = Object.keys(records[0] as object)[0] as string;
		const mixed = got[6]?.columns[first];
		assert.ok(Array.isArray(mixed));
		assert.equal(mixed[3], "lots");
	} finally {
		await t.close();
	}
	// Closed: every payload is left to the main thread.
	assert.deepEqual(await t.decode(messages()), new Array(13).fill(undefined));
});

it("batches one after another (each copied into a buffer the thread handed back, or a larger new one) decode to their own records", async () => {
	const t = new DecodeThread();
	try {
		const feature = Object.keys(records[0] as object)[2] as string;
		// Sizes up and down: a spare buffer too small for the next batch is not used for it.
		for (const [b, count] of [3, 1, 5, 2, 8, 1].entries()) {
			const batch = Array.from({ length: count }, (_, i) =>
				msg(i, JSON.stringify(hundred(b * 10 + i))),
			);
			const got = await t.decode(batch);
			for (const [i, g] of got.entries())
				assert.deepEqual(
					Array.from(g?.columns[feature] as Float64Array),
					hundred(b * 10 + i).map((r) => r[feature]),
					`batch ${b}, message ${i}`,
				);
		}
		assert.equal(t.decoded, 20);
	} finally {
		await t.close();
	}
});

it("Float64Array columns encode to the same tensors as the records they came from", async () => {
	const plan = planTable((await readBundle(bundleDir(MODEL))).manifest);
	const rows = hundred(0);
	const cols: Record<string, Float64Array> = {};
	for (const f of plan.features)
		cols[f.name] = Float64Array.from(rows, (r) => r[f.name] as number);
	const a = encodeRecords(plan, rows);
	const b = encodeColumns(plan, cols);
	assert.deepEqual(b.errors, a.errors);
	assert.deepEqual(b.tensors, a.tensors);
	cols[(plan.features[0] as { name: string }).name] = Float64Array.of(
		...Array.from({ length: 99 }, () => 1),
		Number.POSITIVE_INFINITY,
	);
	const bad = encodeColumns(plan, cols);
	assert.equal(bad.errors.length, 1);
	assert.equal(bad.errors[0]?.row, 99);
});

it("mlship stream --no-decode-thread gives the same results as the default, from a JSON-lines file", async () => {
	const dir = await mkdtemp(join(tmpdir(), "mlship-decode-"));
	try {
		const input = join(dir, "in.jsonl");
		await writeFile(
			input,
			`${[0, 1, 2].map((i) => JSON.stringify(hundred(i * 100))).join("\n")}\n`,
		);
		const outputs: string[] = [];
		for (const extra of [[], ["--no-decode-thread"]]) {
			const output = join(dir, `out${outputs.length}.jsonl`);
			const r = spawnSync(
				process.execPath,
				[
					CLI,
					"stream",
					"-m",
					bundleDir(MODEL),
					"--from",
					input,
					"--to",
					output,
					...extra,
				],
				{ encoding: "utf8", timeout: 120_000 },
			);
			assert.equal(r.status, 0, r.stderr);
			outputs.push(await readFile(output, "utf8"));
		}
		assert.equal(outputs[0]?.trim().split("\n").length, 3);
		assert.equal(outputs[1], outputs[0]);
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
});

it("typed-array columns are read as records where the data plane needs rows (sticky keys, entity families)", () => {
	// Every column numeric, as the decode thread sends a payload of numbers only.
	const rows = columnsToRows({
		x: Float64Array.of(1.5, 2.5) as unknown as unknown[],
		y: Float64Array.of(3, 4) as unknown as unknown[],
	});
	assert.deepEqual(rows, [
		{ x: 1.5, y: 3 },
		{ x: 2.5, y: 4 },
	]);
});
