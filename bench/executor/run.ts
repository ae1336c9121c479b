// Inline vs worker-pool execution: per-call latency and event-loop blocking by batch size, to set `auto`'s threshold.
// Run: node bench/executor/run.ts   (prints a markdown table)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords } from "../../src/codec/table.ts";
import { loadBundle } from "../../src/model.ts";
import type { Tensor } from "../../src/protocol/types.ts";

const MODELS = ["iris-logreg", "breast-cancer-gbdt", "digits-mlp"];
const SIZES = [1, 8, 64, 256, 1024, 4096];
const dir = (n: string) =>
	fileURLToPath(new URL(`../../test/fixtures/models/${n}/`, import.meta.url));

function repeatRows(tensors: Tensor[], n: number): Tensor[] {
	return tensors.map((t) => {
		const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
		const rows = t.shape[0] as number;
		const data = new Float32Array(n * width);
		for (let r = 0; r < n; r++)
			data.set(
				(t.data as Float32Array).subarray(
					(r % rows) * width,
					((r % rows) + 1) * width,
				),
				r * width,
			);
		return { ...t, shape: [n, ...t.shape.slice(1)], data };
	});
}

async function median(
	fn: () => Promise<unknown>,
	minMs = 300,
	minIter = 20,
): Promise<number> {
	const times: number[] = [];
	const end = performance.now() + minMs;
	while (times.length < minIter || performance.now() < end) {
		const t0 = performance.now();
		await fn();
		times.push(performance.now() - t0);
		if (times.length > 5000) break;
	}
	times.sort((a, b) => a - b);
	return times[Math.floor(times.length / 2)] as number;
}

const lines = [
	"| model | rows | inline µs/call | pool µs/call | pool ÷ inline |",
	"|---|---|---|---|---|",
];
for (const name of MODELS) {
	const bundle = await readBundle(dir(name));
	const inline = await loadBundle(bundle, { mode: "inline" });
	const pool = await loadBundle(bundle, { mode: "pool", workers: 1 });
	const golden = JSON.parse(
		readFileSync(`${dir(name)}golden.json`, "utf8"),
	) as { records: Record<string, unknown>[] };
	const base = encodeRecords(inline.plan, golden.records).tensors;
	for (const n of SIZES) {
		const t = repeatRows(base, n);
		await inline.predictTensors(t);
		await pool.predictTensors(t);
		const a = await median(() => inline.predictTensors(t));
		const b = await median(() => pool.predictTensors(t));
		lines.push(
			`| ${name} | ${n} | ${(a * 1000).toFixed(0)} | ${(b * 1000).toFixed(0)} | ${(b / a).toFixed(2)} |`,
		);
		console.error(lines.at(-1));
	}
	await inline.close();
	await pool.close();
}
console.log(lines.join("\n"));
