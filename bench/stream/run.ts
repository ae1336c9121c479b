// bench/stream: end-to-end messages/s and produce-to-result latency of mlship stream per broker, beside the broker's pass-through limit.
//
//   node bench/stream/run.ts [--messages 20000] [--brokers redis,nats,kafka] [--seconds 5] [--records 1,100] [--no-results]
//
// --records: records per message (a JSON list of records when above 1); max rate is measured at each, latency at 1.
// Broker limits from the brokers' own tools where this machine has them: redis-benchmark (XADD of the same payloads,
// XRANGE COUNT 100 for reads), `nats bench` (natscli, when `nats` is on PATH or NATS_CLI names it), Kafka's
// kafka-producer-perf-test / kafka-consumer-perf-test (the kafka-tools jars scripts/setup resolves).
//
// For each broker (started by the test harness, loopback): (1) max rate: N breast_cancer records are queued first,
// then a processor (mlship stream with the GBDT, or the pass-through copier) drains them; rate = N ÷ time from its
// start to the N-th result. (2) latency: messages are produced at 50% of that max rate for --seconds, each stamped
// with its produce time; p50/p99 of result-seen minus produce time. Results go to stdout and bench/RESULTS.md "## stream".
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { headerText, textHeader } from "../../src/stream/headers.ts";
import type { Header, OutMessage } from "../../src/stream/types.ts";
import { startKafka } from "../../test/harness/kafka.ts";
import { startNats } from "../../test/harness/nats.ts";
import { startRedis } from "../../test/harness/redis.ts";
import {
	Collector,
	produce,
	type StreamProc,
	startStream,
	stopStream,
} from "../../test/helpers/stream-process.ts";
import { machine, writeResults } from "../common.ts";
import { goldenRecords, payloadOf } from "./payloads.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MODEL = join(ROOT, "test/fixtures/models/breast-cancer-gbdt");
const { values: args } = parseArgs({
	options: {
		messages: { type: "string", default: "20000" },
		brokers: { type: "string", default: "redis,nats,kafka" },
		seconds: { type: "string", default: "5" },
		records: { type: "string", default: "1,100" },
		"no-results": { type: "boolean", default: false },
	},
});
const N = Number(args.messages);
const SECONDS = Number(args.seconds);
const RECORDS = (args.records ?? "1").split(",").map((x) => {
	const n = Number(x);
	if (!Number.isInteger(n) || n < 1 || n > 10_000)
		throw new Error(`--records: '${x}' is not a whole number 1..10000`);
	return n;
});
const records = await goldenRecords();

interface Broker {
	name: string;
	uri(label: string): string;
	stop(): Promise<void>;
	/** host:port of the broker (for its own tools). */
	address: string;
}

async function broker(name: string): Promise<Broker> {
	let n = 0;
	if (name === "redis") {
		const r = await startRedis();
		return {
			name,
			uri: (l) => `${r.url}/${l}-${++n}`,
			stop: () => r.stop(),
			address: new URL(r.url).host,
		};
	}
	if (name === "nats") {
		const s = await startNats();
		return {
			name,
			uri: (l) => `${s.url}/${l.toUpperCase()}_${++n}/${l}.${n}`,
			stop: () => s.stop(),
			address: new URL(s.url).host,
		};
	}
	const k = await startKafka();
	return {
		name,
		uri: (l) => `${k.url}/${l}-${++n}?partitions=2`,
		stop: () => k.stop(),
		address: new URL(k.url).host,
	};
}

/** The value of message `i` with `r` records: one JSON record, or a JSON list of `r`. */
const payload = (i: number, r: number): string => payloadOf(records, i, r);

const message = (i: number, r = 1): OutMessage => ({
	key: Buffer.from(`k${i}`),
	value: Buffer.from(payload(i, r)),
	headers: [
		textHeader("x-request-id", `m${i}`),
		textHeader("ts", String(performance.timeOrigin + performance.now())),
	],
});

/**
 * A processor under test: mlship stream with the model (`mlship-main`: with `--no-decode-thread`, JSON parsed on
 * the main thread), or the pass-through copier.
 */
type Kind = "mlship" | "mlship-main" | "passthrough";

/** Starts the processor under test. */
function processor(kind: Kind, from: string, to: string): Promise<StreamProc> {
	if (kind !== "passthrough")
		return startStream([
			"-m",
			MODEL,
			"--from",
			from,
			"--to",
			to,
			"--log-level",
			"info",
			...(kind === "mlship-main" ? ["--no-decode-thread"] : []),
		]);
	return new Promise((resolveP, reject) => {
		const proc = spawn(
			process.execPath,
			[join(ROOT, "bench/stream/passthrough.ts"), "--from", from, "--to", to],
			{ stdio: ["ignore", "pipe", "pipe"] },
		);
		const exit = new Promise<number | null>((r) =>
			proc.on("exit", (c) => r(c)),
		);
		let err = "";
		proc.stderr.on("data", (d) => {
			err += d;
			if (err.includes("mlship streaming"))
				resolveP({ proc, exit, stdout: () => "", stderr: () => err });
		});
		proc.on("error", reject);
	});
}

const idOf = (m: { headers: readonly Header[] }) =>
	headerText(m.headers, "x-request-id") ?? "";

/** Messages per max-rate run at `r` records per message: N, or 5N records in N×5÷r messages (at least 200). */
const messagesFor = (r: number) =>
	r === 1 ? N : Math.max(200, Math.ceil((N * 5) / r));

/** Messages per second (each of `r` records) from start to the last result, and one result message's value. */
async function maxRate(
	b: Broker,
	kind: Kind,
	r = 1,
): Promise<{ rate: number; out: Buffer | undefined }> {
	const [from, to] = [b.uri("in"), b.uri("out")];
	// Produce requests stay well under the brokers' 1 MB default request size.
	const batch = Math.max(
		1,
		Math.min(1000, Math.floor(400_000 / Buffer.byteLength(payload(0, r)))),
	);
	const M = messagesFor(r);
	for (let i = 0; i < M; i += batch)
		await produce(
			from,
			Array.from({ length: Math.min(batch, M - i) }, (_, j) =>
				message(i + j, r),
			),
		);
	const out = new Collector(to, "bench", idOf);
	const p = await processor(kind, from, to);
	const t0 = performance.now();
	await out.until(() => out.byId.size >= M, `${M} results`, 300_000);
	const secs = (performance.now() - t0) / 1000;
	await stopStream(p);
	await out.close();
	const value = out.all[0]?.value;
	return { rate: M / secs, out: value ? Buffer.from(value) : undefined };
}

/** Where scripts/setup puts Kafka's perf tools (`MLSHIP_KAFKA_TOOLS` overrides; bench/stream/kafka-tools/pom.xml). */
function kafkaTools(): string {
	const dir =
		process.env.MLSHIP_KAFKA_TOOLS ??
		join(homedir(), ".cache", "mlship", "kafka-tools");
	if (!existsSync(join(dir, ".complete")))
		throw new Error(
			`Kafka perf tools not found in ${dir}; run scripts/setup (resolves them with Maven from bench/stream/kafka-tools/pom.xml)`,
		);
	return dir;
}

/** Runs a broker tool and returns its stdout (stderr on failure). */
function tool(
	cmd: string,
	argv: string[],
	timeoutMs = 300_000,
): Promise<string> {
	return new Promise((resolveP, reject) => {
		const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
		let out = "";
		let err = "";
		child.stdout.on("data", (d) => {
			out += d;
		});
		child.stderr.on("data", (d) => {
			err += d;
		});
		const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
		child.once("error", reject);
		child.once("exit", (code) => {
			clearTimeout(timer);
			if (code === 0) resolveP(out);
			else reject(new Error(`${cmd} exited ${code}: ${err || out}`));
		});
	});
}

/** Operations per second from `redis-benchmark --csv` (the first data row's rps). */
async function redisBench(address: string, argv: string[]): Promise<number> {
	const [host, port] = address.split(":") as [string, string];
	const out = await tool("redis-benchmark", [
		"-h",
		host,
		"-p",
		port,
		"--csv",
		...argv,
	]);
	// The test name quotes the payload (JSON with its own quotes): read the seven figures at the end of the line.
	const m = /"([\d.]+)"(?:,"[\d.]+"){6}\s*$/m.exec(out);
	const rps = Number(m?.[1]);
	if (!(rps > 0)) throw new Error(`redis-benchmark: no rate in ${out}`);
	return rps;
}

/**
 * The broker's own limits for a processor of messages of `r` records, in messages/s: consume the input messages
 * (read), produce the result messages (write, `out` is one of mlship's), and both per message (1 ÷ (1/write +
 * 1/read)). Undefined when no tool is available.
 */
async function brokerLimit(
	b: Broker,
	r: number,
	out: Buffer,
): Promise<
	{ write: number; read: number; both: number; how: string } | undefined
> {
	const both = (w: number, rd: number) => 1 / (1 / w + 1 / rd);
	if (b.name === "redis") {
		const key = `tool-${r}-${Date.now()}`;
		const n = String(Math.min(200_000, messagesFor(r) * 2));
		// XADD pipelined like a client batch, same server settings (AOF fsync always): the input payload (to read back)
		// and mlship's result payload (the write limit).
		const xadd = (k: string, value: string) =>
			redisBench(b.address, [
				"-n",
				n,
				"-c",
				"1",
				"-P",
				"100",
				"XADD",
				k,
				"*",
				"value",
				value,
			]);
		await xadd(key, payload(0, r));
		const write = await xadd(`${key}-out`, out.toString("utf8"));
		// Reads of 100 entries per call, as a consumer batch.
		const ranges = await redisBench(b.address, [
			"-n",
			"2000",
			"-c",
			"1",
			"XRANGE",
			key,
			"-",
			"+",
			"COUNT",
			"100",
		]);
		const read = ranges * 100;
		return {
			write,
			read,
			both: both(write, read),
			how: "redis-benchmark: XRANGE COUNT 100 -c 1 (input); XADD -P 100 -c 1 (result payload)",
		};
	}
	if (b.name === "nats") {
		const nats = process.env.NATS_CLI ?? "nats";
		const size = String(Buffer.byteLength(payload(0, r)));
		const outSize = String(out.length);
		const msgs = String(Math.min(200_000, messagesFor(r) * 2));
		const server = `nats://${b.address}`;
		const rate = (out: string) => {
			const m = /([\d,]+) msgs\/sec/.exec(out);
			return Number(m?.[1]?.replaceAll(",", ""));
		};
		try {
			const common = (stream: string, bytes: string) => [
				"--msgs",
				msgs,
				"--size",
				bytes,
				"--stream",
				stream,
				"--no-progress",
				"--server",
				server,
			];
			// natscli v0.5.0: async JetStream publish into a new file-backed stream, then a durable consumer with acks.
			const publish = (stream: string, bytes: string) =>
				tool(nats, [
					"bench",
					"js",
					"pub",
					"async",
					`${stream.toLowerCase()}.x`,
					"--create",
					"--storage",
					"file",
					...common(stream, bytes),
				]);
			const tag = `TOOLBENCH_${r}_${Date.now()}`;
			await publish(`${tag}_IN`, size);
			const sub = await tool(nats, [
				"bench",
				"js",
				"consume",
				...common(`${tag}_IN`, size),
			]);
			const pub = await publish(`${tag}_OUT`, outSize);
			const write = rate(pub);
			const read = rate(sub);
			if (!(write > 0 && read > 0)) return undefined;
			return {
				write,
				read,
				both: both(write, read),
				how: "nats bench js (natscli v0.5.0): consume (durable, explicit acks) of input-size messages; pub async of result-size messages, file storage",
			};
		} catch (err) {
			console.error(
				`nats bench unavailable: ${(err as Error).message.slice(0, 200)}`,
			);
			return undefined;
		}
	}
	if (b.name === "kafka") {
		const cp = `${kafkaTools()}/*`;
		// Each tool is a fresh JVM: a run of a few hundred large records measures its start-up, not the broker. At
		// least ~100 MB of records per run (and never fewer than the bench's own messages × 2).
		const records = (bytes: number) =>
			String(
				Math.min(
					200_000,
					Math.max(messagesFor(r) * 2, Math.ceil(100_000_000 / bytes)),
				),
			);
		const inSize = Buffer.byteLength(payload(0, r));
		const msgs = records(inSize);
		const topic = `toolbench-${r}-${Date.now()}`;
		// kafka-producer-perf-test with its defaults (acks=all, the Java producer's batching) as fast as it can, into
		// a topic auto-created like mlship's (2 partitions): input-size records (then read back), result-size records.
		const producer = async (t: string, bytes: number) => {
			const text = await tool("java", [
				"-cp",
				cp,
				"org.apache.kafka.tools.ProducerPerformance",
				"--topic",
				t,
				"--num-records",
				t === topic ? msgs : records(bytes),
				"--record-size",
				String(bytes),
				"--throughput",
				"-1",
				"--producer-props",
				`bootstrap.servers=${b.address}`,
			]);
			const m = /records sent, ([\d.]+) records\/sec/.exec(
				text.trim().split("\n").at(-1) ?? "",
			);
			const rate = Number(m?.[1]);
			if (!(rate > 0))
				throw new Error(`ProducerPerformance: no rate in ${text}`);
			return rate;
		};
		await producer(topic, inSize);
		const write = await producer(`${topic}-out`, out.length);
		// kafka-consumer-perf-test: a consumer group reading the input topic from the start; its fetch rate (the time
		// after the group's first rebalance, as mlship's rate counts from its processor's start).
		const csv = await tool("java", [
			"-cp",
			cp,
			"org.apache.kafka.tools.ConsumerPerformance",
			"--topic",
			topic,
			"--messages",
			msgs,
			"--bootstrap-server",
			b.address,
			"--timeout",
			"120000",
		]);
		const last = csv.trim().split("\n").at(-1)?.split(",") ?? [];
		const read = Number(last.at(-1));
		if (!(read > 0))
			throw new Error(`ConsumerPerformance: no fetch.nMsg.sec in ${csv}`);
		return {
			write,
			read,
			both: both(write, read),
			how: "Kafka 3.9.1 perf tools: kafka-consumer-perf-test (fetch.nMsg.sec) of input-size records; kafka-producer-perf-test (defaults, acks=all) of result-size records",
		};
	}
	return undefined;
}

async function latency(
	b: Broker,
	kind: Kind,
	rate: number,
): Promise<{ p50: number; p99: number; n: number }> {
	const [from, to] = [b.uri("lat-in"), b.uri("lat-out")];
	const seen: number[] = [];
	const out = new Collector(to, "bench", (m) => {
		seen.push(
			performance.timeOrigin +
				performance.now() -
				Number(headerText(m.headers, "ts")),
		);
		return idOf(m);
	});
	const p = await processor(kind, from, to);
	const tickMs = 20;
	const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
	let sent = 0;
	const start = performance.now();
	const sink = await (
		await import("../../src/stream/connectors/index.ts")
	).openSink(from);
	while (performance.now() - start < SECONDS * 1000) {
		const due = Math.floor(((performance.now() - start) / 1000) * rate);
		const n = Math.min(perTick * 5, due - sent);
		if (n > 0) {
			await sink.write(Array.from({ length: n }, (_, j) => message(sent + j)));
			sent += n;
		}
		await new Promise((r) => setTimeout(r, tickMs));
	}
	await sink.close();
	await out.until(() => out.byId.size >= sent, `${sent} results`, 120_000);
	await stopStream(p);
	await out.close();
	seen.sort((x, y) => x - y);
	const q = (f: number) =>
		seen[Math.min(seen.length - 1, Math.floor(f * seen.length))] ?? Number.NaN;
	return { p50: q(0.5), p99: q(0.99), n: seen.length };
}

const rows: string[] = [];
const ratios: number[] = [];
const limitRows: string[] = [];
/** mlship's share of each broker's consume+produce limit, per records/message. */
const shares: string[] = [];
/** The 1-record max rates, reused by the latency runs. */
const single = new Map<string, { pass: number; ml: number }>();
for (const name of (args.brokers ?? "").split(",")) {
	const b = await broker(name);
	try {
		for (const r of RECORDS) {
			let pass: number;
			let mlRun: Awaited<ReturnType<typeof maxRate>>;
			// Many records per message: the same stream with JSON parsed on the main thread, for an in-run A/B.
			let mainRate: number | undefined;
			try {
				pass = (await maxRate(b, "passthrough", r)).rate;
				mlRun = await maxRate(b, "mlship", r);
				if (r > 1) mainRate = (await maxRate(b, "mlship-main", r)).rate;
			} catch (err) {
				// One failed cell (e.g. a broker refusing large messages) is reported, not the end of the run.
				limitRows.push(
					`| ${name} | ${r} | — | failed: ${(err as Error).message.slice(0, 120)} | — | — | — |`,
				);
				console.log(limitRows.at(-1));
				continue;
			}
			const ml = mlRun.rate;
			if (r === 1) single.set(name, { pass, ml });
			const limit = mlRun.out
				? await brokerLimit(b, r, mlRun.out).catch((err: unknown) => {
						console.error(
							`${name} tool: ${(err as Error).message.slice(0, 300)}`,
						);
						return undefined;
					})
				: undefined;
			const share = (x: number) =>
				limit ? `${Math.round((100 * x) / limit.both)}%` : "—";
			const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
			const lim = limit
				? `${fmt(limit.read)} / ${fmt(limit.write)} / ${fmt(limit.both)}`
				: "no tool here";
			if (limit)
				shares.push(`${name} ${Math.round((100 * ml) / limit.both)}% at ${r}`);
			limitRows.push(
				`| ${name} | ${r} | ${lim} | ${fmt(pass)} | ${fmt(ml)} (${share(ml)})${mainRate === undefined ? "" : `; --no-decode-thread ${fmt(mainRate)} (${share(mainRate)})`} | ${fmt(ml * r)} | ${limit?.how ?? "—"} |`,
			);
			console.log(limitRows.at(-1));
		}
		const one = single.get(name);
		const pass = one?.pass ?? (await maxRate(b, "passthrough")).rate;
		const ml = one?.ml ?? (await maxRate(b, "mlship")).rate;
		const passLat = await latency(b, "passthrough", pass / 2);
		const mlLat = await latency(b, "mlship", ml / 2);
		const line = (
			who: string,
			rate: number,
			l: { p50: number; p99: number; n: number },
			rateFor: number,
			ratio: string,
		) =>
			`| ${name} | ${who} | ${Math.round(rate).toLocaleString("en-US")} | ${Math.round(rateFor).toLocaleString("en-US")} | ${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${l.n.toLocaleString("en-US")} | ${ratio} |`;
		ratios.push(Math.round((ml / pass) * 100));
		rows.push(line("pass-through (no model)", pass, passLat, pass / 2, "100%"));
		rows.push(
			line(
				"mlship stream (breast_cancer GBDT)",
				ml,
				mlLat,
				ml / 2,
				`${Math.round((ml / pass) * 100)}%`,
			),
		);
		console.log(rows.slice(-2).join("\n"));
	} finally {
		await b.stop();
	}
}

const section = `## stream

End-to-end messages/s of \`mlship stream\` (the real CLI, one process, default settings: batch 256, 2048 in flight) with
the breast_cancer GBDT (one record per message, JSON), beside the broker's pass-through limit: the same
connectors and read → write → ack loop copying messages with no model (\`bench/stream/passthrough.ts\`). Max rate:
${N.toLocaleString("en-US")} messages queued first, rate = messages ÷ time from the processor's start to the last result (seen by a
consumer on the output). Latency: messages produced at 50% of that max rate for ${SECONDS} s, each stamped at produce
time; p50/p99 of result-seen minus produce time (same clock). Brokers are the test harness's single loopback
servers (Redis with appendfsync always, NATS JetStream file store, Kafka KRaft with 2 partitions); producer,
processor, consumer and broker share the machine's cores.

- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${machine()}
- command: \`node bench/stream/run.ts --messages ${N} --seconds ${SECONDS} --brokers ${args.brokers}\`

| broker | processor | max messages/s | latency run at messages/s | p50 ms | p99 ms | results | vs pass-through |
|---|---|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}

Against the broker's own limit, measured with its own tool on the same server in the same run, at 1 and more
records per message (max rate only; a message of r records is one JSON list). "Limit" is read / write / both, in
messages/s: read = consuming the input messages, write = producing messages of the size of mlship's results, both
= 1 ÷ (1/read + 1/write), what a processor that reads and writes each message once could reach if the broker were
all it waited on (the pass-through writes the input size back, so its rate is shown without a share). Figures from
a shared, loaded machine: rerun on a quiet one before drawing conclusions. Kafka's limit comes from its own perf tools (kafka-producer-perf-test,
kafka-consumer-perf-test: the kafka-tools jars of the broker's version, resolved by scripts/setup). Above 1 record
per message the mlship cell also shows the same stream run with \`--no-decode-thread\` (every payload parsed on the
main thread) in the same run: the decode thread's gain.

| broker | records/message | limit messages/s (read / write / both) | pass-through messages/s | mlship messages/s (share of both) | mlship records/s | tool |
|---|---:|---:|---:|---:|---:|---|
${limitRows.join("\n")}

Share of the broker's own consume+produce limit (records per message; target ≥ 50% at 100): ${shares.join(", ") || "no tool ran"}.

What bounds it (\`node bench/stream/profile.ts --broker redis --records 100\` and \`--records 1\`: the processor under
\`--cpu-prof\`, each thread's busy time and the main thread's self and total time; \`--main-thread\` for the same with
\`--no-decode-thread\`). At 100 records per message the processor used to be bound by its main thread: per ~75 KB
message \`JSON.parse\` (~0.5 ms, 12–16% of the samples), encoding the records into the input tensor (8–10%), the
hand-off to the model's worker (\`postMessage\`, 4–9%), garbage collection of the parsed records (5–11%) and the
results' JSON (~2%), while the model's workers sat ~80% idle. Payloads of 8 KiB or more of uniform records are now
parsed on a decode thread (the batch's payloads as one transferred buffer in, columns as \`Float64Array\` views of one
transferred buffer out, encoded by the table encoder's fast path): the main thread's busy time per message falls by
about a third and it is ~25–30% idle, the decode thread is busy ~1 ms per message (\`JSON.parse\` and the columns), and
total CPU per message is unchanged (~3.5–3.9 ms of all threads with start-up, 1,000–2,000 messages). That is ~2.6 ms
of steady CPU per message on 2 cores (main ~1 ms, decode ~1 ms, model workers ~0.3 ms each), so ~750 messages/s is
this design's ceiling here; going further needs less CPU per message (parsing numbers without building the records'
objects), not more threads. Kafka gains less than Redis in the bench (its client's fetch and produce work stay on the
main thread, and the bench's own consumer shares the cores). At 1 record per message the cost is per message, not per
record: the broker client's per-message commands (ioredis 9%), one predict request each through the scheduler and the
pool hand-off (dataplane + pool ~7%), and the broker's own write limit (Redis XADD with fsync always); payloads that
small stay on the main thread (handing them over costs more than parsing them).

Conclusion: mlship stream reaches ${Math.min(...ratios)}–${Math.max(...ratios)}% of the pass-through rate (target ≥ 70%). The pass-through
figure is this harness's sequential copy loop (read → write → ack, one batch at a time, one JS client per role, JSON
messages, everything on the same cores as the broker), not the broker's own maximum; mlship's processor overlaps
reading, scoring and producing, which is how it can pass the loop (a ratio above 100%). A single run: ±10% is noise.
`;
console.log(section);
if (!args["no-results"]) await writeResults("stream", section);
process.exit(0);
