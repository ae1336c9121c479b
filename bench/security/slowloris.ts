// Slowloris on loopback: latency of a normal client of `mlship serve` alone, then beside N idle connections (half
// sending nothing, half a partial request head), and how long the server keeps those open (its header timeout).
// Loopback only, bounded by --idle (default 2000) and the process's open-file limit.
import { spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { machine, positiveInt, ROOT, writeResults } from "../common.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
	const i = args.indexOf(name);
	return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const IDLE = positiveInt("--idle", opt("--idle", "2000"));
const REQUESTS = positiveInt("--requests", opt("--requests", "2000"));
const HEADERS_TIMEOUT_MS = positiveInt(
	"--headers-timeout-ms",
	opt("--headers-timeout-ms", "10000"),
);
const WRITE = !args.includes("--no-results");
if (IDLE > 10_000)
	throw new Error("--idle is bounded to 10000 loopback connections");

const BODY = JSON.stringify({
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			data: [5.1, 3.5, 1.4, 0.2],
		},
	],
	outputs: [{ name: "label" }],
});

async function freePort(): Promise<number> {
	return new Promise((resolve) => {
		const s = createServer().listen(0, "127.0.0.1", () => {
			const port = (s.address() as { port: number }).port;
			s.close(() => resolve(port));
		});
	});
}

async function waitReady(url: string): Promise<void> {
	const deadline = Date.now() + 60_000;
	for (;;) {
		try {
			if ((await fetch(`${url}/v2/health/ready`)).ok) return;
		} catch {}
		if (Date.now() > deadline)
			throw new Error("mlship serve did not become ready in 60 s");
		await new Promise((r) => setTimeout(r, 100));
	}
}

/** Sequential requests from one keep-alive client; returns sorted latencies in ms. */
async function measure(url: string, n: number): Promise<number[]> {
	const ms: number[] = [];
	for (let i = 0; i < n; i++) {
		const t0 = performance.now();
		const res = await fetch(`${url}/v2/models/iris/infer`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: BODY,
		});
		const out = (await res.json()) as { outputs?: { data: number[] }[] };
		if (res.status !== 200 || out.outputs?.[0]?.data[0] !== 0)
			throw new Error(
				`request ${i}: status ${res.status}, ${JSON.stringify(out).slice(0, 200)}`,
			);
		ms.push(performance.now() - t0);
	}
	return ms.sort((a, b) => a - b);
}

const pct = (xs: number[], p: number) =>
	xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;

const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const server = spawn(
	process.execPath,
	[
		join(ROOT, "src/cli/main.ts"),
		"serve",
		"--model",
		`${join(ROOT, "test/fixtures/models/iris-logreg")}:iris`,
		"--host",
		"127.0.0.1",
		"--http-port",
		String(port),
		"--grpc-port",
		"-1",
		"--headers-timeout-ms",
		String(HEADERS_TIMEOUT_MS),
		"--log-level",
		"warn",
	],
	{ stdio: ["ignore", "inherit", "inherit"] },
);
try {
	await waitReady(url);
	await measure(url, 200); // warm-up
	const alone = await measure(url, REQUESTS);

	const sockets: Socket[] = [];
	const lifetimes: number[] = [];
	for (let i = 0; i < IDLE; i += 200)
		await Promise.all(
			Array.from(
				{ length: Math.min(200, IDLE - i) },
				(_, j) =>
					new Promise<void>((resolve, reject) => {
						const opened = performance.now();
						const s = connect(port, "127.0.0.1", () => {
							if ((i + j) % 2 === 1)
								s.write(
									"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nX-Slow: ",
								);
							resolve();
						});
						s.resume();
						s.on("error", () => {});
						s.once("error", reject);
						s.on("close", () => lifetimes.push(performance.now() - opened));
						sockets.push(s);
					}),
			),
		);
	const beside = await measure(url, REQUESTS);
	const heldDuring = IDLE - lifetimes.length;
	const deadline = Date.now() + HEADERS_TIMEOUT_MS * 3 + 30_000;
	while (lifetimes.length < IDLE && Date.now() < deadline)
		await new Promise((r) => setTimeout(r, 100));
	for (const s of sockets) s.destroy();
	lifetimes.sort((a, b) => a - b);

	const row = (name: string, xs: number[]) =>
		`| ${name} | ${pct(xs, 0.5).toFixed(2)} | ${pct(xs, 0.99).toFixed(2)} | ${(xs.at(-1) as number).toFixed(2)} |`;
	const section = [
		"## security/slowloris",
		"",
		`\`node bench/security/slowloris.ts\`: ${REQUESTS} sequential keep-alive infer requests (iris, REST) to \`mlship serve\` (its own process) alone, then beside ${IDLE} idle loopback connections (half silent, half a partial request head), opened first and held while measuring. Default limits: 10,000 connections, ${HEADERS_TIMEOUT_MS / 1000} s header timeout. ${machine()}.`,
		"",
		"| client latency (ms) | p50 | p99 | max |",
		"|---|---|---|---|",
		row("alone", alone),
		row(`beside ${IDLE} idle connections`, beside),
		"",
		`Idle connections still open when the measurement ended: ${heldDuring} of ${IDLE}; closed by the server after ${lifetimes.length > 0 ? `${(pct(lifetimes, 0) / 1000).toFixed(1)}–${((lifetimes.at(-1) as number) / 1000).toFixed(1)} s` : "—"} (${lifetimes.length} of ${IDLE} closed).`,
		"",
	].join("\n");
	process.stdout.write(`${section}\n`);
	if (WRITE) await writeResults("security/slowloris", section);
} finally {
	server.kill("SIGTERM");
}
