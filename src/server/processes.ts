// serve --processes N: N server processes on the same ports (node:cluster: the primary accepts connections and hands
// them out in turn), so HTTP parsing and encoding use every core; /metrics sums every process; stopped together.
import cluster, { type Worker } from "node:cluster";
import {
	AggregatorRegistry,
	type MetricObjectWithValues,
	type MetricValue,
} from "prom-client";

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** Set in the environment of the processes the primary starts. */
const WORKER_ENV = "MLSHIP_PROCESS_WORKER";
/** A worker asks the primary for everyone's metrics; the primary asks each worker for its own. */
const GATHER = "mlship:gather-metrics";
const GATHERED = "mlship:gathered-metrics";
const ASK = "mlship:metrics?";
const ANSWER = "mlship:metrics!";
/** How long the primary waits for a worker's metrics (a worker that does not answer is left out). */
const ASK_TIMEOUT_MS = 5_000;
/** Replacements allowed per minute before a crash loop stops the server. */
const MAX_RESTARTS_PER_MINUTE = 5;

interface Message {
	type?: string;
	id?: number;
	body?: string;
	json?: MetricsJson;
	error?: string;
}

/** True in a process started by `serve --processes N` (it serves like a single server, metrics summed). */
export function isServeWorker(): boolean {
	return cluster.isWorker && process.env[WORKER_ENV] === "1";
}

/** This worker's number (1..N) and how many there are, for `/v2/health/ready`; undefined in a single server. */
export function serveWorker():
	| { process: number; processes: number }
	| undefined {
	if (!isServeWorker()) return undefined;
	return {
		process: cluster.worker?.id ?? 0,
		processes: Number(process.env.MLSHIP_PROCESSES ?? 0),
	};
}

/**
 * In a worker: answers the primary's requests for this process's metrics (`own`, prom-client JSON) and returns a
 * function giving every process's metrics summed, as Prometheus text.
 */
export function workerMetrics(
	own: () => Promise<MetricsJson>,
): () => Promise<string> {
	const waiting = new Map<number, (m: Message) => void>();
	let next = 1;
	process.on("message", (m: Message) => {
		if (m?.type === ASK)
			own().then(
				(json) => process.send?.({ type: ANSWER, id: m.id, json }),
				(err: unknown) =>
					process.send?.({
						type: ANSWER,
						id: m.id,
						error: (err as Error).message,
					}),
			);
		else if (m?.type === GATHERED && m.id !== undefined) {
			waiting.get(m.id)?.(m);
			waiting.delete(m.id);
		}
	});
	return () =>
		new Promise<string>((resolve, reject) => {
			const id = next++;
			waiting.set(id, (m) =>
				m.error !== undefined
					? reject(new Error(m.error))
					: resolve(m.body ?? ""),
			);
			process.send?.({ type: GATHER, id });
		});
}

/** Asks one worker for its metrics; undefined when it does not answer in time. */
function askWorker(w: Worker, id: number): Promise<MetricsJson | undefined> {
	return new Promise((resolve) => {
		const timer = setTimeout(() => {
			w.off("message", on);
			resolve(undefined);
		}, ASK_TIMEOUT_MS);
		const on = (m: Message) => {
			if (m?.type !== ANSWER || m.id !== id) return;
			clearTimeout(timer);
			w.off("message", on);
			resolve(m.json);
		};
		w.on("message", on);
		w.send({ type: ASK, id });
	});
}

export interface PrimaryOptions {
	processes: number;
	log: (level: "info" | "warn" | "error", msg: string, fields?: object) => void;
}

/**
 * The primary of `serve --processes N`: starts N copies of this command (each loads the models and listens; the
 * listening sockets are the primary's, shared), replaces one that dies after it served, sums metrics for whichever
 * worker is asked `/metrics`, and on SIGTERM/SIGINT stops every worker gracefully. A worker that exits before it
 * ever listened (a model that fails to load, a port in use) stops them all. Resolves with the exit code.
 */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
	const n = opts.processes;
	let stopping = false;
	let code = 0;
	const restarts: number[] = [];
	const listened = new WeakSet<Worker>();
	const live = new Set<Worker>();
	let nextAsk = 1;
	return new Promise<number>((resolve) => {
		// Workers stop on SIGTERM (graceful: in-flight requests finish). A Ctrl-C reaches them too (same process
		// group); they handle both.
		const stopAll = () => {
			if (stopping) return;
			stopping = true;
			for (const w of live) w.process.kill("SIGTERM");
			if (live.size === 0) resolve(code);
		};
		const fork = () => {
			const w = cluster.fork({
				[WORKER_ENV]: "1",
				MLSHIP_PROCESSES: String(n),
			});
			live.add(w);
			w.on("listening", () => listened.add(w));
			w.on("message", (m: Message) => {
				if (m?.type !== GATHER) return;
				const asked = [...live].filter((x) => x.isConnected());
				Promise.all(asked.map((x) => askWorker(x, nextAsk++)))
					.then(async (all) => {
						const got = all.filter((j): j is MetricsJson => j !== undefined);
						return AggregatorRegistry.aggregate(got).metrics();
					})
					.then(
						(body) => w.send({ type: GATHERED, id: m.id, body }),
						(err: unknown) =>
							w.send({
								type: GATHERED,
								id: m.id,
								error: (err as Error).message,
							}),
					);
			});
			return w;
		};
		cluster.on("exit", (w, exitCode, signal) => {
			live.delete(w);
			if (!stopping) {
				const now = Date.now();
				while (restarts.length > 0 && (restarts[0] as number) < now - 60_000)
					restarts.shift();
				if (!listened.has(w)) {
					opts.log("error", "a server process failed to start; stopping", {
						exit: exitCode,
						signal,
					});
					code = exitCode || 1;
					stopAll();
				} else if (restarts.length >= MAX_RESTARTS_PER_MINUTE) {
					opts.log("error", "server processes keep dying; stopping", {
						restarts: restarts.length,
					});
					code = 1;
					stopAll();
				} else {
					restarts.push(now);
					opts.log("warn", "a server process died; starting another", {
						exit: exitCode,
						signal,
					});
					fork();
				}
			}
			if (live.size === 0 && stopping) resolve(code);
		});
		process.on("SIGTERM", stopAll);
		process.on("SIGINT", stopAll);
		for (let i = 0; i < n; i++) fork();
		opts.log("info", "started server processes", { processes: n });
	});
}
