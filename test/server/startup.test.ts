// A server that cannot serve exits (issue 11.3): a port in use or a host not on the machine, for HTTP or gRPC,
// and a model that fails to load at start (unless --keep-going), each exit non-zero with everything closed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { bundleDir, CLI } from "../helpers/fixtures.ts";
import { serve } from "../helpers/serve-process.ts";

interface Exited {
	code: number | null;
	stderr: string;
	stdout: string;
	/** ms from the moment the error line reached stderr to the process's exit. */
	afterError: number;
}

/** Runs `mlship serve ARGS` to its exit (killed after 60 s, which fails the test). */
function serveToExit(args: string[]): Promise<Exited> {
	const proc = spawn(process.execPath, [CLI, "serve", ...args], {
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stderr = "";
	let stdout = "";
	let errorAt = Number.NaN;
	proc.stdout.on("data", (d) => {
		stdout += d;
	});
	proc.stderr.on("data", (d) => {
		stderr += d;
		if (Number.isNaN(errorAt) && stderr.includes("error:"))
			errorAt = performance.now();
	});
	const killer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
	return new Promise((resolve) =>
		proc.on("exit", (code) => {
			clearTimeout(killer);
			resolve({
				code,
				stderr,
				stdout,
				afterError: performance.now() - errorAt,
			});
		}),
	);
}

const IRIS = bundleDir("iris-logreg");

describe("mlship serve exits when it cannot serve", () => {
	let taken: Server;
	let port: number;
	let dir: string;
	before(async () => {
		taken = createServer();
		await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
		port = (taken.address() as { port: number }).port;
		dir = mkdtempSync(join(tmpdir(), "mlship-startup-"));
	});
	after(() => {
		taken.close();
		rmSync(dir, { recursive: true, force: true });
	});

	const common = ["--log-level", "error", "-m", IRIS];

	it("HTTP port in use → exit 6 within 1 s of the error, naming the address and the flag", async () => {
		const r = await serveToExit([
			"--host",
			"127.0.0.1",
			"--http-port",
			String(port),
			"--grpc-port",
			"0",
			...common,
		]);
		assert.equal(r.code, 6, r.stderr + r.stdout);
		assert.match(
			r.stderr,
			new RegExp(
				`error: cannot listen for HTTP on 127.0.0.1:${port}: the address is in use \\(EADDRINUSE\\).*--http-port`,
			),
		);
		assert.ok(
			r.afterError <= 1000,
			`exited ${r.afterError} ms after its error`,
		);
		assert.doesNotMatch(r.stderr, /still open/);
	});

	it("gRPC port in use → exit 6, naming --grpc-port", async () => {
		const r = await serveToExit([
			"--host",
			"127.0.0.1",
			"--http-port",
			"0",
			"--grpc-port",
			String(port),
			...common,
		]);
		assert.equal(r.code, 6, r.stderr + r.stdout);
		assert.match(
			r.stderr,
			new RegExp(
				`error: cannot listen for gRPC on 127.0.0.1:${port}: the address is in use \\(EADDRINUSE\\).*--grpc-port`,
			),
		);
		assert.ok(
			r.afterError <= 1000,
			`exited ${r.afterError} ms after its error`,
		);
		assert.doesNotMatch(r.stderr, /still open/);
	});

	it("a --host that is not on this machine → exit 6 (EADDRNOTAVAIL), naming --host", async () => {
		// 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface.
		const r = await serveToExit([
			"--host",
			"192.0.2.1",
			"--http-port",
			"0",
			"--grpc-port",
			"-1",
			...common,
		]);
		assert.equal(r.code, 6, r.stderr + r.stdout);
		assert.match(
			r.stderr,
			/error: cannot listen for HTTP on 192\.0\.2\.1:0: 192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\).*--host/,
		);
		assert.ok(
			r.afterError <= 1000,
			`exited ${r.afterError} ms after its error`,
		);
	});

	it("a model that fails to load → exit 3 naming it and what to do; --keep-going serves the rest", async () => {
		const registry = `sqlite:${join(dir, "registry.db")}`;
		const args = [
			"--host",
			"127.0.0.1",
			"--http-port",
			"0",
			"--grpc-port",
			"-1",
			"--registry",
			registry,
			"-m",
			"iris-logref@production",
		];
		const r = await serveToExit([...args, ...common]);
		assert.equal(r.code, 3, r.stderr + r.stdout);
		assert.match(
			r.stderr,
			/error: model 'iris-logref' \(iris-logref@production\) failed to load: model 'iris-logref' is not registered .*mlship models list/,
		);
		assert.match(r.stderr, /--keep-going/);
		assert.doesNotMatch(r.stderr + r.stdout, /mlship serving/);
		assert.ok(
			r.afterError <= 1000,
			`exited ${r.afterError} ms after its error`,
		);

		const s = await serve([
			...args,
			"-m",
			IRIS,
			"--keep-going",
			"--log-level",
			"info",
		]);
		try {
			const ok = await fetch(`${s.http}/v2/models/iris-logreg/ready`);
			assert.equal(ok.status, 200);
			const ready = await fetch(`${s.http}/v2/health/ready`);
			assert.equal(ready.status, 503, "not every model is loaded");
			assert.ok(
				s.logs().some((l) => l.msg === "model failed to load"),
				"the failure is logged",
			);
		} finally {
			s.proc.kill("SIGTERM");
			assert.equal(await s.exit, 0);
		}
	});
});
