// Test harness: a real, throwaway nats-server (Debian package) with JetStream on a free loopback port, storing in a temp dir.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
	accepts,
	findBinary,
	freePort,
	type Restartable,
	restartable,
	startProcess,
} from "./service.ts";

export interface NatsServer extends Restartable {
	/** `nats://127.0.0.1:PORT` */
	url: string;
	port: number;
}

function binary(): string {
	return findBinary(
		"nats-server",
		"run scripts/setup (installs the Debian 'nats-server' package)",
		["/usr/sbin"],
	);
}

/**
 * Starts nats-server with JetStream (file store in a temp dir) on 127.0.0.1 and a free port; ready once its
 * monitoring endpoint says JetStream is up.
 * @example const n = await startNats(); try { ... n.url ... } finally { await n.stop(); }
 */
export async function startNats(
	opts: {
		/** Require this user and password (nats-server --user/--pass). */
		auth?: { user: string; pass: string };
		/** Require this token (nats-server --auth). */
		token?: string;
		/** Require this NKey user (its public key, `U…`; written to a config file). */
		nkey?: string;
		/** TLS with this certificate and key (nats-server --tls): clients must use TLS. */
		tls?: { cert: string; key: string };
	} = {},
): Promise<NatsServer> {
	const bin = binary();
	const dir = await mkdtemp(join(tmpdir(), "mlship-nats-"));
	const [port, http] = [await freePort(), await freePort()];
	if (opts.nkey !== undefined)
		await writeFile(
			join(dir, "nkey.conf"),
			`authorization { users = [ { nkey: "${opts.nkey}" } ] }\n`,
		);
	const launch = () =>
		startProcess(
			"nats-server",
			bin,
			[
				"-a",
				"127.0.0.1",
				"-p",
				String(port),
				"-m",
				String(http),
				"-js",
				"-sd",
				dir,
				...(opts.auth
					? ["--user", opts.auth.user, "--pass", opts.auth.pass]
					: []),
				...(opts.token !== undefined ? ["--auth", opts.token] : []),
				...(opts.nkey !== undefined ? ["-c", join(dir, "nkey.conf")] : []),
				...(opts.tls
					? ["--tls", "--tlscert", opts.tls.cert, "--tlskey", opts.tls.key]
					: []),
			],
			async () => {
				if (!(await accepts(port))) return false;
				const r = await fetch(`http://127.0.0.1:${http}/jsz`);
				return r.ok && !((await r.json()) as { disabled?: boolean }).disabled;
			},
			{ cwd: dir, timeoutMs: 20_000 },
		);
	return {
		...(await restartable(dir, launch)),
		url: `nats://127.0.0.1:${port}`,
		port,
	};
}
