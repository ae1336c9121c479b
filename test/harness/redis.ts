// Test harness: a real, throwaway redis-server (Debian package) on a free loopback port, persisting to a temp dir.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
	findBinary,
	freePort,
	type Restartable,
	restartable,
	startProcess,
} from "./service.ts";

export interface RedisServer extends Restartable {
	/** `redis://127.0.0.1:PORT` */
	url: string;
	port: number;
}

function binary(): string {
	return findBinary(
		"redis-server",
		"run scripts/setup (installs the Debian 'redis-server' package)",
		[],
	);
}

/**
 * Starts redis-server on 127.0.0.1 and a free port with append-only persistence fsynced on every write, so a
 * restart keeps every acknowledged XADD and the consumer groups' pending lists.
 * @example const r = await startRedis(); try { ... r.url ... } finally { await r.stop(); }
 */
export async function startRedis(
	opts: {
		/** Require this password (`requirepass`): clients without it get NOAUTH, with another WRONGPASS. */
		password?: string;
	} = {},
): Promise<RedisServer> {
	const bin = binary();
	const dir = await mkdtemp(join(tmpdir(), "mlship-redis-"));
	const port = await freePort();
	const launch = () =>
		startProcess(
			"redis-server",
			bin,
			[
				"--port",
				String(port),
				"--bind",
				"127.0.0.1",
				"--dir",
				dir,
				"--appendonly",
				"yes",
				"--appendfsync",
				"always",
				"--save",
				"",
				"--daemonize",
				"no",
				"--protected-mode",
				"yes",
				...(opts.password !== undefined
					? ["--requirepass", opts.password]
					: []),
			],
			async () => {
				const r = new Redis({
					port,
					host: "127.0.0.1",
					lazyConnect: true,
					protocol: 2,
					maxRetriesPerRequest: 0,
					retryStrategy: () => null,
					...(opts.password !== undefined ? { password: opts.password } : {}),
				});
				r.on("error", () => {});
				try {
					await r.connect();
					return (await r.ping()) === "PONG";
				} finally {
					r.disconnect();
				}
			},
			{ cwd: dir, timeoutMs: 20_000 },
		);
	return {
		...(await restartable(dir, launch)),
		url: `redis://127.0.0.1:${port}`,
		port,
	};
}
