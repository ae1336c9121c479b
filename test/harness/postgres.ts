// Test harness: a real, throwaway PostgreSQL server from the Debian binaries, on a free loopback port in a temp dir.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import {
	chmod,
	chown,
	copyFile,
	mkdtemp,
	rm,
	writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./service.ts";

const run = promisify(execFile);
const PG_ROOT = "/usr/lib/postgresql";
/** The superuser initdb creates; every URL the harness hands out connects as it (trust auth, loopback only). */
const USER = "mlship";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** A running PostgreSQL server owned by the harness. */
export interface PostgresServer {
	/** `postgres://mlship@127.0.0.1:PORT/postgres` (superuser, trust auth). */
	url: string;
	port: number;
	/**
	 * Stops the server (fast shutdown: sessions are cut) and starts it again on the same data dir and port; data
	 * survives. `downtimeMs` keeps it down that long first, for tests of what clients do meanwhile.
	 */
	restart(opts?: { downtimeMs?: number }): Promise<void>;
	/** Stops the server (fast shutdown: open sessions are cut) and removes its directory. */
	stop(): Promise<void>;
}

/**
 * The bin directory of the newest PostgreSQL under /usr/lib/postgresql. Throws (never skips) when there is none.
 * @example binDir() // "/usr/lib/postgresql/15/bin"
 */
export function binDir(): string {
	const versions = existsSync(PG_ROOT)
		? readdirSync(PG_ROOT)
				.filter((v) => existsSync(join(PG_ROOT, v, "bin", "postgres")))
				.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
		: [];
	const newest = versions[0];
	if (newest === undefined)
		throw new Error(
			`PostgreSQL server binaries not found (${PG_ROOT}/<version>/bin/postgres); run scripts/setup to install the Debian 'postgresql' package`,
		);
	return join(PG_ROOT, newest, "bin");
}

/** PostgreSQL refuses to run as root: as root, commands run as the `postgres` user (created by the Debian package). */
const asRoot = process.getuid?.() === 0;

function command(bin: string, args: string[]): [string, string[]] {
	return asRoot
		? ["runuser", ["-u", "postgres", "--", bin, ...args]]
		: [bin, args];
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
	try {
		const [uid, gid] = await Promise.all([
			run("id", ["-u", "postgres"]),
			run("id", ["-g", "postgres"]),
		]);
		return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
	} catch (err) {
		throw new Error(
			"running as root but there is no 'postgres' user; run scripts/setup to install the Debian 'postgresql' package",
			{ cause: err },
		);
	}
}

/** Keeps the last few KB of a stream, for error messages. */
function tail(stream: NodeJS.ReadableStream | null): () => string {
	let text = "";
	stream?.on("data", (d: Buffer) => {
		text = (text + d.toString()).slice(-4000);
	});
	return () => text;
}

/**
 * Starts a fresh PostgreSQL server: `initdb -A trust -U mlship` in a new temp dir, then `postgres` on
 * 127.0.0.1 and a free port (socket in the temp dir, fsync off: the data is thrown away). Resolves once it
 * accepts connections. Throws when the binaries are missing (run scripts/setup).
 * @example const pgs = await startPostgres(); try { ... pgs.url ... } finally { await pgs.stop(); }
 */
export async function startPostgres(
	opts: {
		/**
		 * Serve TLS with this certificate and key (PEM files, copied into the server's directory); connections
		 * without TLS from 127.0.0.1 are refused (hostnossl reject). The URL then needs sslmode= (and sslrootcert=).
		 */
		tls?: { cert: string; key: string };
		/** Require this password (scram-sha-256) for TCP connections; the URL carries it. */
		password?: string;
	} = {},
): Promise<PostgresServer> {
	const bin = binDir();
	const dir = await mkdtemp(join(tmpdir(), "mlship-pg-"));
	const data = join(dir, "data");
	let child: ChildProcess | undefined;
	let exited: Promise<void> = Promise.resolve();
	let port = 0;
	// If the test process dies without stop(), take the server down with it (immediate shutdown).
	const onExit = () => {
		const pid = postmasterPid();
		if (pid !== undefined) signal(pid, "SIGQUIT");
	};

	function postmasterPid(): number | undefined {
		try {
			const pid = Number.parseInt(
				readFileSync(join(data, "postmaster.pid"), "utf8"),
				10,
			);
			return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
		} catch {
			return undefined;
		}
	}

	function signal(pid: number, sig: NodeJS.Signals): void {
		try {
			process.kill(pid, sig);
		} catch {
			// already gone
		}
	}

	async function launch(): Promise<void> {
		const [cmd, args] = command(join(bin, "postgres"), [
			"-D",
			data,
			"-k",
			dir,
			"-h",
			"127.0.0.1",
			"-p",
			String(port),
			"-c",
			"fsync=off",
			"-c",
			"synchronous_commit=off",
			"-c",
			"full_page_writes=off",
			"-c",
			"max_connections=200",
			...(opts.tls
				? [
						"-c",
						"ssl=on",
						"-c",
						`ssl_cert_file=${join(dir, "server.crt")}`,
						"-c",
						`ssl_key_file=${join(dir, "server.key")}`,
					]
				: []),
		]);
		const proc = spawn(cmd, args, {
			cwd: dir,
			stdio: ["ignore", "pipe", "pipe"],
		});
		child = proc;
		const log = tail(proc.stderr);
		tail(proc.stdout);
		let gone = false;
		exited = new Promise((resolve) =>
			proc.once("exit", () => {
				gone = true;
				resolve();
			}),
		);
		const deadline = Date.now() + START_TIMEOUT_MS;
		for (;;) {
			if (gone)
				throw new Error(
					`PostgreSQL exited during start-up (exit code ${proc.exitCode}):\n${log()}`,
				);
			// Through the Unix socket (trust): works whatever TLS and password the TCP side requires.
			const client = new pg.Client({
				host: dir,
				port,
				user: USER,
				database: "postgres",
			});
			client.on("error", () => {});
			try {
				await client.connect();
				await client.query("SELECT 1");
				await client.end();
				return;
			} catch {
				await client.end().catch(() => {});
			}
			if (Date.now() > deadline) {
				await halt();
				throw new Error(
					`PostgreSQL did not accept connections within ${START_TIMEOUT_MS} ms:\n${log()}`,
				);
			}
			await new Promise((r) => setTimeout(r, 50));
		}
	}

	/** Fast shutdown (SIGINT to the postmaster: sessions are cut, no waiting for clients), then wait for exit. */
	async function halt(): Promise<void> {
		if (!child || child.exitCode !== null || child.signalCode !== null) return;
		// Signal the postmaster itself: a runuser wrapper would turn SIGINT into a slow SIGTERM (smart shutdown).
		const pid = postmasterPid() ?? child.pid;
		if (pid !== undefined) signal(pid, "SIGINT");
		const timer = setTimeout(() => {
			const p = postmasterPid();
			if (p !== undefined) signal(p, "SIGQUIT");
			child?.kill("SIGKILL");
		}, STOP_TIMEOUT_MS);
		await exited;
		clearTimeout(timer);
	}

	try {
		if (asRoot) {
			const { uid, gid } = await postgresIds();
			await chown(dir, uid, gid);
		}
		const [cmd, args] = command(join(bin, "initdb"), [
			"-D",
			data,
			"-A",
			"trust",
			"-U",
			USER,
			"-E",
			"UTF8",
			"--locale=C",
			"--no-sync",
		]);
		try {
			await run(cmd, args, { cwd: dir });
		} catch (err) {
			const e = err as Error & { stderr?: string };
			throw new Error(`initdb failed: ${e.stderr || e.message}`, {
				cause: err,
			});
		}
		if (opts.tls || opts.password !== undefined) {
			const method = opts.password !== undefined ? "scram-sha-256" : "trust";
			await writeFile(
				join(data, "pg_hba.conf"),
				[
					"local all all trust",
					...(opts.tls
						? [
								"hostnossl all all 127.0.0.1/32 reject",
								`hostssl all all 127.0.0.1/32 ${method}`,
							]
						: [`host all all 127.0.0.1/32 ${method}`]),
					"",
				].join("\n"),
			);
		}
		if (opts.tls) {
			// PostgreSQL refuses a key that others can read, and must own it (it runs as 'postgres' under root).
			await copyFile(opts.tls.cert, join(dir, "server.crt"));
			await copyFile(opts.tls.key, join(dir, "server.key"));
			await chmod(join(dir, "server.key"), 0o600);
			if (asRoot) {
				const { uid, gid } = await postgresIds();
				await chown(join(dir, "server.crt"), uid, gid);
				await chown(join(dir, "server.key"), uid, gid);
				await chown(join(data, "pg_hba.conf"), uid, gid);
			}
		}
		// A port can be taken between probing and binding: try a few.
		for (let attempt = 1; ; attempt++) {
			port = await freePort();
			try {
				await launch();
				break;
			} catch (err) {
				if (attempt >= 3 || !/could not bind|in use/i.test(String(err)))
					throw err;
			}
		}
		process.once("exit", onExit);
		if (opts.password !== undefined) {
			const c = new pg.Client({
				host: dir,
				port,
				user: USER,
				database: "postgres",
			});
			await c.connect();
			try {
				await c.query(
					`ALTER USER ${USER} PASSWORD '${opts.password.replaceAll("'", "''")}'`,
				);
			} finally {
				await c.end();
			}
		}
	} catch (err) {
		await halt();
		await rm(dir, { recursive: true, force: true });
		throw err;
	}

	let stopped = false;
	const url = new URL(urlFor(port, "postgres"));
	if (opts.password !== undefined)
		url.password = encodeURIComponent(opts.password);
	return {
		url: url.toString(),
		port,
		async restart(opts = {}) {
			if (stopped) throw new Error("PostgreSQL server was stopped");
			await halt();
			if (opts.downtimeMs)
				await new Promise((r) => setTimeout(r, opts.downtimeMs));
			await launch();
		},
		async stop() {
			if (stopped) return;
			stopped = true;
			process.off("exit", onExit);
			await halt();
			await rm(dir, { recursive: true, force: true });
		},
	};
}

function urlFor(port: number, database: string): string {
	return `postgres://${USER}@127.0.0.1:${port}/${database}`;
}

/**
 * Creates an empty database `name` on the server at `url` and returns its URL (same server and user).
 * @example const dbUrl = await createDatabase(pgs.url, `t_${n++}`);
 */
export async function createDatabase(
	url: string,
	name: string,
): Promise<string> {
	if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
		throw new Error(
			`database name '${name}': use lowercase letters, digits and '_'`,
		);
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	try {
		await client.query(`CREATE DATABASE ${name}`);
	} finally {
		await client.end();
	}
	const u = new URL(url);
	u.pathname = `/${name}`;
	return u.toString();
}

let counter = 0;
/** A database name not used before in this process: `prefix_<pid>_<n>`. */
export function uniqueDatabaseName(prefix = "t"): string {
	return `${prefix}_${process.pid}_${++counter}`;
}
