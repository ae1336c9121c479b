// The payload log's memory, in one process without HTTP: a real model instance (breast-cancer GBDT, 30 features)
// predicts one row at a time from 64 concurrent callers into a payload log, and RSS is sampled every 50 ms.
//
//   node bench/serve/log-memory.ts [parquet|none|nolog] [records=100000]
//
// parquet: the log writes Parquet files to a temporary directory (default rotation, 64 MiB spools); none: a log
// whose destination takes records and keeps nothing (the queue's and the decoding's own cost); nolog: no log.
// Prints one JSON line: base, peak and end RSS (MiB), records written and dropped. Figures vary with load.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/model.ts";
import { PayloadLog, type PayloadSink } from "../../src/payload-log/log.ts";
import { parquetSink } from "../../src/payload-log/parquet.ts";
import { bundleDir, golden } from "../../test/helpers/fixtures.ts";

const mode = process.argv[2] ?? "parquet";
if (!["parquet", "none", "nolog"].includes(mode))
	throw new Error(`mode must be parquet, none or nolog, got ${mode}`);
const total = Number(process.argv[3] ?? 100_000);
if (!Number.isInteger(total) || total < 1 || total > 10_000_000)
	throw new Error(
		`records must be a whole number 1–10,000,000, got ${process.argv[3]}`,
	);
const MIB = 2 ** 20;
const dir = await mkdtemp(join(tmpdir(), "mlship-log-memory-"));
const discard: PayloadSink = {
	kind: "none",
	where: "-",
	async open() {},
	async write() {},
	async close() {},
};
const log = new PayloadLog({
	sink: mode === "parquet" ? parquetSink(dir) : discard,
});
const model = await loadModel(bundleDir("breast-cancer-gbdt"));
if (mode !== "nolog") model.addHook(log.hook);
const row = golden("breast-cancer-gbdt").records[0] as Record<string, number>;
let peak = 0;
const sampler = setInterval(() => {
	peak = Math.max(peak, process.memoryUsage().rss);
}, 50);
const base = process.memoryUsage().rss;
let started = 0;
async function caller(): Promise<void> {
	while (started < total) {
		started++;
		await model.predict([row]);
	}
}
await Promise.all(Array.from({ length: 64 }, caller));
const end = process.memoryUsage().rss;
await log.close(60_000);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
const s = log.status();
console.log(
	JSON.stringify({
		mode,
		records: total,
		base_rss_mib: Math.round(base / MIB),
		peak_rss_mib: Math.round(peak / MIB),
		end_rss_mib: Math.round(end / MIB),
		written: s.written,
		dropped: s.dropped,
	}),
);
await model.close();
await rm(dir, { recursive: true, force: true });
