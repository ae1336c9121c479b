// bench/stream/profile: where `mlship stream`'s CPU goes at R records per message, with a summary of its --cpu-prof.
//
//   node bench/stream/profile.ts [--broker redis|nats|kafka] [--records 100] [--messages 1000] [--top 25] [--main-thread]
//
// Queues M messages of R breast_cancer records on a harness broker, runs the real CLI (`mlship stream` with the GBDT,
// default settings) under `--cpu-prof` until the last result is seen, and prints the rate, each thread's busy time,
// the CPU per message of all threads together (the figure that survives a loaded machine) and the main thread's
// self time by function and by file (profiles in bench/out/stream/prof/, open them in Chrome DevTools).
// `--main-thread` runs the stream with `--no-decode-thread` (JSON parsed on the main thread), for an A/B.
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { headerText, textHeader } from "../../src/stream/headers.ts";
import { startKafka } from "../../test/harness/kafka.ts";
import { startNats } from "../../test/harness/nats.ts";
import { startRedis } from "../../test/harness/redis.ts";
import {
	Collector,
	produce,
	startStream,
	stopStream,
} from "../../test/helpers/stream-process.ts";
import { MODEL, payloads, ROOT, wholeNumbers } from "./payloads.ts";

const PROF = join(ROOT, "bench/out/stream/prof");
const { values: args } = parseArgs({
	options: {
		broker: { type: "string", default: "redis" },
		records: { type: "string", default: "100" },
		messages: { type: "string", default: "1000" },
		top: { type: "string", default: "25" },
		"main-thread": { type: "boolean", default: false },
	},
});
const [R, M, TOP] = wholeNumbers({
	records: args.records,
	messages: args.messages,
	top: args.top,
}) as [number, number, number];
const payload = await payloads(R);

let stopBroker: () => Promise<void>;
let uri: (label: string) => string;
if (args.broker === "redis") {
	const r = await startRedis();
	stopBroker = () => r.stop();
	uri = (l) => `${r.url}/${l}`;
} else if (args.broker === "nats") {
	const s = await startNats();
	stopBroker = () => s.stop();
	uri = (l) => `${s.url}/${l.toUpperCase()}/${l}.x`;
} else if (args.broker === "kafka") {
	const k = await startKafka();
	stopBroker = () => k.stop();
	uri = (l) => `${k.url}/${l}?partitions=2`;
} else
	throw new Error(`--broker: '${args.broker}' is not redis, nats or kafka`);

try {
	const [from, to] = [uri("in"), uri("out")];
	const batch = Math.max(
		1,
		Math.min(1000, Math.floor(400_000 / Buffer.byteLength(payload(0)))),
	);
	for (let i = 0; i < M; i += batch)
		await produce(
			from,
			Array.from({ length: Math.min(batch, M - i) }, (_, j) => ({
				key: Buffer.from(`k${i + j}`),
				value: Buffer.from(payload(i + j)),
				headers: [textHeader("x-request-id", `m${i + j}`)],
			})),
		);
	await rm(PROF, { recursive: true, force: true });
	await mkdir(PROF, { recursive: true });
	const out = new Collector(
		to,
		"profile",
		(m) => headerText(m.headers, "x-request-id") ?? "",
	);
	const before = process.env.NODE_OPTIONS;
	process.env.NODE_OPTIONS = `${before ?? ""} --cpu-prof --cpu-prof-dir=${PROF}`;
	const p = await startStream([
		"-m",
		MODEL,
		"--from",
		from,
		"--to",
		to,
		...(args["main-thread"] ? ["--no-decode-thread"] : []),
	]);
	if (before === undefined) delete process.env.NODE_OPTIONS;
	else process.env.NODE_OPTIONS = before;
	const t0 = performance.now();
	await out.until(() => out.byId.size >= M, `${M} results`, 600_000);
	const secs = (performance.now() - t0) / 1000;
	await stopStream(p);
	await out.close();
	console.log(
		`${args.broker}, ${R} records/message: ${M} messages in ${secs.toFixed(2)} s = ${Math.round(M / secs)} messages/s, ${Math.round((M * R) / secs)} records/s (loaded machine)`,
	);
	await summarize();
} finally {
	await stopBroker();
}

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	children?: number[];
}
interface Profile {
	nodes: ProfileNode[];
	samples: number[];
	timeDeltas: number[];
}

/** Self time by function and by file of the profile with the most samples in our code (the main thread). */
async function summarize(): Promise<void> {
	let best: { file: string; prof: Profile; ours: number } | undefined;
	let allBusy = 0;
	for (const f of await readdir(PROF)) {
		if (!f.endsWith(".cpuprofile")) continue;
		const prof = JSON.parse(await readFile(join(PROF, f), "utf8")) as Profile;
		const idle = new Set(
			prof.nodes
				.filter((n) => n.callFrame.functionName === "(idle)")
				.map((n) => n.id),
		);
		let busy = 0;
		for (let i = 0; i < prof.samples.length; i++)
			if (!idle.has(prof.samples[i] as number)) busy += prof.timeDeltas[i] ?? 0;
		console.log(`thread ${f}: ${(busy / 1e6).toFixed(2)} s busy`);
		allBusy += busy;
		const ours = prof.nodes.filter((n) =>
			n.callFrame.url.includes("/src/stream/"),
		).length;
		if (!best || ours > best.ours) best = { file: f, prof, ours };
	}
	if (!best) throw new Error(`no .cpuprofile written in ${PROF}`);
	console.log(
		`all threads: ${(allBusy / 1e6).toFixed(2)} s busy (start-up and model load included) = ${Math.round(allBusy / M)} µs per message; main thread ${best.file}`,
	);
	const { prof } = best;
	const byId = new Map(prof.nodes.map((n) => [n.id, n]));
	const self = new Map<number, number>();
	for (let i = 0; i < prof.samples.length; i++) {
		const id = prof.samples[i] as number;
		self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
	}
	const total = [...self.values()].reduce((a, b) => a + b, 0);
	const fn = new Map<string, number>();
	const file = new Map<string, number>();
	for (const [id, us] of self) {
		const c = (byId.get(id) as ProfileNode).callFrame;
		const where = c.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "");
		const name = `${c.functionName || "(anonymous)"} ${where ? `${where}:${c.lineNumber + 1}` : ""}`;
		fn.set(name, (fn.get(name) ?? 0) + us);
		const key = where.startsWith("node_modules/")
			? where
					.split("/")
					.slice(0, where.includes("/@") ? 3 : 2)
					.join("/")
			: where || c.functionName;
		file.set(key, (file.get(key) ?? 0) + us);
	}
	const show = (title: string, m: Map<string, number>) => {
		console.log(
			`\n${title} (main thread ${best?.file}, ${(total / 1e6).toFixed(2)} s sampled)`,
		);
		for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP))
			console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
	};
	// Total (inclusive) time of mlship's own functions: each sample counts once for every function on its stack.
	const parent = new Map<number, number>();
	for (const n of prof.nodes)
		for (const c of n.children ?? []) parent.set(c, n.id);
	const inclusive = new Map<string, number>();
	for (const [id, us] of self) {
		const seen = new Set<string>();
		for (
			let at: number | undefined = id;
			at !== undefined;
			at = parent.get(at)
		) {
			const c = (byId.get(at) as ProfileNode).callFrame;
			if (!c.url.includes("/src/")) continue;
			const name = `${c.functionName || "(anonymous)"} ${c.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "")}:${c.lineNumber + 1}`;
			if (seen.has(name)) continue;
			seen.add(name);
			inclusive.set(name, (inclusive.get(name) ?? 0) + us);
		}
	}
	show("self time by function", fn);
	show("total time of mlship's functions (src/)", inclusive);
	show("self time by file or package", file);
}
