// Test harness: a real, throwaway redis-server (Debian package) on a free loopback port, persisting to a temp dir.
import { readFileSync } from "node:fs";
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
		/** An ACL user with every permission (Redis 6+ `user NAME on >PASS ~* &* +@all`). */
		aclUser?: { name: string; password: string };
		/** TLS only (`--tls-port`, plain port off) with this certificate and key; client certificates not required. */
		tls?: { cert: string; key: string; ca: string };
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
				...(opts.tls
					? [
							"--port",
							"0",
							"--tls-port",
							String(port),
							"--tls-cert-file",
							opts.tls.cert,
							"--tls-key-file",
							opts.tls.key,
							"--tls-ca-cert-file",
							opts.tls.ca,
							"--tls-auth-clients",
							"no",
						]
					: ["--port", String(port)]),
				...(opts.aclUser
					? [
							// Each word its own argument: one argument would be read as one (quoted) user name.
							"--user",
							opts.aclUser.name,
							"on",
							`>${opts.aclUser.password}`,
							"~*",
							"&*",
							"+@all",
						]
					: []),
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
					...(opts.tls
						? {
								tls: { ca: readFileSync(opts.tls.ca), servername: "localhost" },
							}
						: {}),
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
