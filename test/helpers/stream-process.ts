// Test helper: `mlship stream` as a real child process, and a collector that reads a result stream into a map by request id.
import { type ChildProcess, spawn } from "node:child_process";
import { openSink, openSource } from "../../src/stream/connectors/index.ts";
import type { InMessage, OutMessage } from "../../src/stream/types.ts";
import { CLI } from "./fixtures.ts";

export interface StreamProc {
	proc: ChildProcess;
	/** Exit code (null when killed by a signal). */
	exit: Promise<number | null>;
	stdout(): string;
	stderr(): string;
}

/** Starts `mlship stream ARGS` and waits (up to 60 s) for its "mlship streaming" log line. */
export function startStream(args: string[]): Promise<StreamProc> {
	const proc = spawn(process.execPath, [CLI, "stream", ...args], {
		stdio: ["ignore", "pipe", "pipe"],
	});
	let out = "";
	let err = "";
	proc.stdout?.on("data", (d) => {
		out += d;
	});
	const exit = new Promise<number | null>((r) =>
		proc.on("exit", (code) => r(code)),
	);
	const onExit = () => proc.kill("SIGKILL");
	process.once("exit", onExit);
	void exit.then(() => process.off("exit", onExit));
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			proc.kill("SIGKILL");
			reject(new Error(`mlship stream did not start within 60 s:\n${err}`));
		}, 60_000);
		proc.stderr?.on("data", (d) => {
			err += d;
			if (err.includes('"msg":"mlship streaming"')) {
				clearTimeout(timer);
				resolve({ proc, exit, stdout: () => out, stderr: () => err });
			}
		});
		void exit.then((code) => {
			clearTimeout(timer);
			reject(
				new Error(`mlship stream exited ${code} before streaming:\n${err}`),
			);
		});
	});
}

/** Stops a processor with SIGTERM (graceful drain) and returns its exit code and its --json counters, if printed. */
export async function stopStream(p: StreamProc): Promise<{
	code: number | null;
	stats: Record<string, unknown> | undefined;
}> {
	p.proc.kill("SIGTERM");
	const code = await p.exit;
	const line = p.stdout().trim().split("\n").pop();
	return {
		code,
		stats: line ? (JSON.parse(line) as Record<string, unknown>) : undefined,
	};
}

/** Produces messages to a connector URI. */
export async function produce(
	uri: string,
	messages: OutMessage[],
): Promise<void> {
	const sink = await openSink(uri);
	try {
		await sink.write(messages);
	} finally {
		await sink.close();
	}
}

/** Reads every message of a stream (as its own consumer group) in the background; `byId` groups them by request id. */
export class Collector {
	readonly all: InMessage[] = [];
	readonly byId = new Map<string, InMessage[]>();
	#stop = false;
	readonly #done: Promise<void>;

	constructor(uri: string, group: string, idOf: (m: InMessage) => string) {
		this.#done = (async () => {
			const src = await openSource(uri, { group, consumer: `${group}-1` });
			try {
				while (!this.#stop) {
					const got = await src.read(500, 200).catch(() => []);
					if (!got || got.length === 0) continue;
					for (const m of got) {
						this.all.push(m);
						const id = idOf(m);
						const list = this.byId.get(id);
						if (list) list.push(m);
						else this.byId.set(id, [m]);
					}
					await src.ack(got).catch(() => {});
				}
			} finally {
				await src.close();
			}
		})();
	}

	/** Waits until `cond()` holds (polling), failing with `what` after `timeoutMs`. */
	async until(
		cond: () => boolean,
		what: string,
		timeoutMs = 60_000,
	): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		while (!cond()) {
			if (Date.now() > deadline)
				throw new Error(
					`timed out waiting for ${what} (have ${this.all.length} messages, ${this.byId.size} ids)`,
				);
			await new Promise((r) => setTimeout(r, 50));
		}
	}

	async close(): Promise<void> {
		this.#stop = true;
		await this.#done;
	}
}
