// bench/stream/cpu: CPU per message of the stream processor alone (no broker), the figure that survives a loaded machine.
//
//   node bench/stream/cpu.ts [--records 100] [--messages 4000] [--rounds 3] [--main-thread]
//
// Runs StreamProcessor in this process on the breast_cancer GBDT with an in-memory source and sink (batch 256, the
// defaults otherwise) over M messages of R records each, after a warm-up of the same size, and prints per message the
// CPU of the main thread (process.threadCpuUsage) and of all threads together (process.cpuUsage: main, decode
// thread, model workers, GC helpers). `--main-thread` turns the decode thread off, for an A/B. A broker adds its own
// client's work on the main thread (bench/stream/profile.ts measures that, with the real CLI and a broker).
import { parseArgs } from "node:util";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import { StreamProcessor } from "../../src/stream/processor.ts";
import type {
	InMessage,
	OutMessage,
	Sink,
	Source,
} from "../../src/stream/types.ts";
import { MODEL, payloads, wholeNumbers } from "./payloads.ts";

const { values: args } = parseArgs({
	options: {
		records: { type: "string", default: "100" },
		messages: { type: "string", default: "4000" },
		rounds: { type: "string", default: "3" },
		"main-thread": { type: "boolean", default: false },
	},
});
const [R, M, ROUNDS] = wholeNumbers({
	records: args.records,
	messages: args.messages,
	rounds: args.rounds,
}) as [number, number, number];
const payload = await payloads(R);
const values = Array.from({ length: Math.min(M, 500) }, (_, i) =>
	Buffer.from(payload(i)),
);

function source(n: number): Source {
	let at = 0;
	return {
		async read(max) {
			if (at >= n) return null;
			const out: InMessage[] = [];
			for (; out.length < max && at < n; at++)
				out.push({
					id: String(at),
					key: Buffer.from(`k${at}`),
					value: values[at % values.length] as Buffer,
					headers: [],
					origin: { topic: "in", partition: 0, offset: String(at) },
				});
			return out;
		},
		async ack() {},
		async close() {},
	};
}
let produced = 0;
const sink: Sink = {
	async write(m: readonly OutMessage[]) {
		produced += m.length;
	},
	async close() {},
};

const dp = await createDataPlane({
	models: [{ name: "bc", source: MODEL }],
	processMetrics: false,
});
const run = (n: number) =>
	new StreamProcessor({
		dataPlane: dp,
		model: "bc",
		source: source(n),
		sink,
		decodeThread: !args["main-thread"],
	}).run();
try {
	await run(M);
	for (let round = 0; round < ROUNDS; round++) {
		produced = 0;
		const all0 = process.cpuUsage();
		const main0 = process.threadCpuUsage();
		const t0 = performance.now();
		const stats = await run(M);
		const secs = (performance.now() - t0) / 1000;
		const all = process.cpuUsage(all0);
		const main = process.threadCpuUsage(main0);
		if (stats.produced !== M || produced !== M)
			throw new Error(`expected ${M} results, got ${produced}`);
		const per = (u: { user: number; system: number }) =>
			Math.round((u.user + u.system) / M);
		console.log(
			`${R} records/message${args["main-thread"] ? " (no decode thread)" : ""}: main thread ${per(main)} µs, all threads ${per(all)} µs of CPU per message; ${Math.round(M / secs)} messages/s (loaded machine)`,
		);
	}
} finally {
	await dp.close();
}
