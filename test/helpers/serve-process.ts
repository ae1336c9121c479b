// Test helper: `mlship serve` as a real child process on free loopback ports.
import { type ChildProcess, spawn } from "node:child_process";
import { CLI } from "./fixtures.ts";

export interface Served {
	proc: ChildProcess;
	http: string;
	grpcPort: number;
	exit: Promise<number | null>;
	/** Every JSON log line the process has written so far (pino), parsed. */
	logs: () => Record<string, unknown>[];
}

/**
 * Starts `mlship serve` on free loopback ports and waits (up to 60 s) for its "mlship serving" log line,
 * which needs log level info or lower.
 */
export function serve(args: string[]): Promise<Served> {
	const proc = spawn(
		process.execPath,
		[
			CLI,
			"serve",
			"--host",
			"127.0.0.1",
			"--http-port",
			"0",
			"--grpc-port",
			"0",
			...args,
		],
		{
			stdio: ["ignore", "pipe", "pipe"],
		},
	);
	const exit = new Promise<number | null>((r) =>
		proc.on("exit", (code) => r(code)),
	);
	return new Promise((resolve, reject) => {
		let out = "";
		let err = "";
		const timer = setTimeout(() => {
			proc.kill("SIGKILL");
			reject(
				new Error(
					`serve did not report "mlship serving" within 60 s: ${err}${out}`,
				),
			);
		}, 60_000);
		timer.unref();
		proc.stderr?.on("data", (d) => {
			err += d;
		});
		let resolved = false;
		const logs = () =>
			out
				.split("\n")
				.filter((l) => l.startsWith("{"))
				.map((l) => JSON.parse(l) as Record<string, unknown>);
		proc.stdout?.on("data", (d) => {
			out += d;
			if (resolved) return;
			for (const line of out.split("\n")) {
				if (!line.includes('"mlship serving"')) continue;
				const j = JSON.parse(line) as { http: number; grpc: number };
				clearTimeout(timer);
				resolved = true;
				resolve({
					proc,
					http: `http://127.0.0.1:${j.http}`,
					grpcPort: j.grpc,
					exit,
					logs,
				});
				return;
			}
		});
		proc.on("exit", (code) =>
			reject(new Error(`serve exited ${code}: ${err}${out}`)),
		);
	});
}
