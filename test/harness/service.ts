// Test harness plumbing shared by the broker harnesses: free loopback ports, a child process with log tail, readiness polling.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

/**
 * The path of executable `name` on PATH (then in `extraDirs`); throws `hint` when there is none — tests that need
 * a service fail, they never skip.
 */
export function findBinary(
	name: string,
	hint: string,
	extraDirs: string[] = [],
): string {
	for (const dir of [
		...(process.env.PATH ?? "").split(delimiter),
		...extraDirs,
	]) {
		if (!dir) continue;
		const p = join(dir, name);
		try {
			accessSync(p, constants.X_OK);
			return p;
		} catch {
			// not here
		}
	}
	throw new Error(`${name} not found; ${hint}`);
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.once("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			srv.close(() =>
				typeof addr === "object" && addr
					? resolve(addr.port)
					: reject(new Error("no port")),
			);
		});
	});
}

/** A server process the harness owns. */
export interface ServiceProcess {
	readonly proc: ChildProcess;
	/** The last few KB of its stdout and stderr. */
	log(): string;
	/** Resolves when it has exited. */
	readonly exited: Promise<void>;
	/** Sends `signal` (default SIGTERM), escalating to SIGKILL after `graceMs`; resolves once it has exited. */
	halt(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/**
 * Spawns `cmd args` and polls `ready()` until it resolves true (or throws after `timeoutMs`, or when the process
 * exits first). The process is killed if the test process exits without stopping it.
 */
export async function startProcess(
	what: string,
	cmd: string,
	args: string[],
	ready: () => Promise<boolean>,
	opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ServiceProcess> {
	const proc = spawn(cmd, args, {
		cwd: opts.cwd,
		env: opts.env ?? process.env,
		stdio: ["ignore", "pipe", "pipe"],
	});
	let text = "";
	const keep = (d: Buffer) => {
		text = (text + d.toString()).slice(-6000);
	};
	proc.stdout?.on("data", keep);
	proc.stderr?.on("data", keep);
	const onExit = () => proc.kill("SIGKILL");
	process.once("exit", onExit);
	let gone = false;
	const exited = new Promise<void>((r) =>
		proc.once("exit", () => {
			gone = true;
			process.off("exit", onExit);
			r();
		}),
	);
	const halt = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000) => {
		if (gone) return;
		proc.kill(signal);
		const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
		await exited;
		clearTimeout(t);
	};
	const service: ServiceProcess = { proc, log: () => text, exited, halt };
	const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
	for (;;) {
		if (gone)
			throw new Error(
				`${what} exited during start-up (code ${proc.exitCode}):\n${text}`,
			);
		if (await ready().catch(() => false)) return service;
		if (Date.now() > deadline) {
			await halt("SIGKILL");
			throw new Error(
				`${what} was not ready within ${opts.timeoutMs ?? 60_000} ms:\n${text}`,
			);
		}
		await new Promise((r) => setTimeout(r, 100));
	}
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export async function accepts(port: number): Promise<boolean> {
	const { connect } = await import("node:net");
	return new Promise((resolve) => {
		const s = connect(port, "127.0.0.1");
		s.once("connect", () => {
			s.destroy();
			resolve(true);
		});
		s.once("error", () => resolve(false));
	});
}

/** Restart and stop of a server whose data lives in `dir`. */
export interface Restartable {
	/** Stops the server (SIGTERM) and starts it again on the same port and data. */
	restart(opts?: { downtimeMs?: number }): Promise<void>;
	/** Stops the server and removes its directory. */
	stop(): Promise<void>;
}

/**
 * Launches a server keeping its data in `dir` (removed if the first launch fails) and returns restart/stop.
 * @example const { restart, stop } = await restartable(dir, () => startProcess(...));
 */
export async function restartable(
	dir: string,
	launch: () => Promise<ServiceProcess>,
): Promise<Restartable> {
	const { rm } = await import("node:fs/promises");
	let server: ServiceProcess;
	try {
		server = await launch();
	} catch (err) {
		await rm(dir, { recursive: true, force: true });
		throw err;
	}
	let stopped = false;
	return {
		async restart(opts = {}) {
			await server.halt("SIGTERM");
			if (opts.downtimeMs)
				await new Promise((r) => setTimeout(r, opts.downtimeMs));
			server = await launch();
		},
		async stop() {
			if (stopped) return;
			stopped = true;
			await server.halt("SIGTERM");
			await rm(dir, { recursive: true, force: true });
		},
	};
}
