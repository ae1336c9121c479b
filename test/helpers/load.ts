// Test helper: a bounded closed-loop HTTP load generator (loopback only) and a fresh-connection prober.
import { Agent, request } from "node:http";
import { Worker } from "node:worker_threads";

export interface LoadResult {
	/** Responses that arrived within the window, by status code. */
	statuses: Map<number, number>;
	/** Requests that failed without a response (connection reset, timeout). */
	errors: number;
	/** The window: requests were sent for this long, and only answers within it are counted. */
	seconds: number;
}

/**
 * Keeps `connections` keep-alive connections busy POSTing `body` to `url` (each sends again as soon as its
 * answer arrives, ignoring Retry-After: the worst case), until `ms` pass or `maxRequests` are sent; answers that
 * arrive after the window are waited for but not counted.
 */
export async function closedLoop(opts: {
	url: string;
	body: string | Buffer;
	connections: number;
	ms: number;
	maxRequests: number;
}): Promise<LoadResult> {
	const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
	const statuses = new Map<number, number>();
	let errors = 0;
	let sent = 0;
	const started = performance.now();
	const end = started + opts.ms;
	const body = Buffer.from(opts.body);
	const once = () =>
		new Promise<void>((resolve) => {
			const req = request(
				opts.url,
				{
					method: "POST",
					agent,
					headers: {
						"content-type": "application/json",
						"content-length": body.length,
					},
					timeout: 10_000,
				},
				(res) => {
					res.on("data", () => {});
					res.on("end", () => {
						const s = res.statusCode ?? 0;
						if (performance.now() <= end)
							statuses.set(s, (statuses.get(s) ?? 0) + 1);
						resolve();
					});
					res.on("error", () => {
						errors++;
						resolve();
					});
				},
			);
			req.on("timeout", () => req.destroy(new Error("timeout")));
			req.on("error", () => {
				errors++;
				resolve();
			});
			req.end(body);
		});
	const worker = async () => {
		while (performance.now() < end && sent < opts.maxRequests) {
			sent++;
			await once();
		}
	};
	await Promise.all(Array.from({ length: opts.connections }, worker));
	agent.destroy();
	return {
		statuses,
		errors,
		seconds: (Math.min(performance.now(), end) - started) / 1000,
	};
}

/** The prober's code: it runs in its own thread, so the load generator's work never delays a probe. */
const PROBER = `
const { workerData, parentPort } = require("node:worker_threads");
const { request } = require("node:http");
const { url, everyMs, timeoutMs } = workerData;
const latencies = [];
const pending = [];
let stopped = false;
parentPort.on("message", () => { stopped = true; });
const once = () => new Promise((resolve) => {
	const t0 = performance.now();
	const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
		res.on("data", () => {});
		res.on("end", () => {
			latencies.push(res.statusCode === 200 ? performance.now() - t0 : Infinity);
			resolve();
		});
	});
	req.on("timeout", () => req.destroy(new Error("timeout")));
	req.on("error", () => { latencies.push(Infinity); resolve(); });
	req.end();
});
(async () => {
	while (!stopped) {
		pending.push(once());
		await new Promise((r) => setTimeout(r, everyMs));
	}
	await Promise.all(pending);
	parentPort.postMessage(latencies);
})();
`;

/**
 * GETs `url` on a NEW connection every `everyMs` (from a worker thread) until `signal` aborts, as a Kubernetes
 * probe does; returns each probe's latency in ms (Infinity for a failure, a non-200 answer or a timeout).
 */
export function probe(
	url: string,
	everyMs: number,
	signal: AbortSignal,
	timeoutMs = 2_000,
): Promise<number[]> {
	const worker = new Worker(PROBER, {
		eval: true,
		workerData: { url, everyMs, timeoutMs },
	});
	signal.addEventListener("abort", () => worker.postMessage("stop"), {
		once: true,
	});
	return new Promise((resolve, reject) => {
		worker.once("message", (latencies: number[]) => {
			void worker.terminate();
			resolve(latencies);
		});
		worker.once("error", reject);
	});
}

/** The q-quantile (0..1) of values, nearest rank. */
export function quantile(values: number[], q: number): number {
	const s = [...values].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
}
