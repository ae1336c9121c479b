// mlship serve with TLS: REST over HTTPS (curl --cacert), gRPC over TLS (grpc-js, tritonclient), mTLS refusing
// clients without a certificate, and a SIGHUP certificate reload that keeps open connections. Certificates are
// made at test time (test/harness/tls.ts).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile } from "node:fs/promises";
import https from "node:https";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { resolveSettings } from "../../src/server/settings.ts";
import { makeCerts, pem, type TestCerts } from "../harness/tls.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { serve } from "../helpers/serve-process.ts";
import { assertTritonclient, TRITON_PYTHON } from "../helpers/tritonclient.ts";
import { InferenceClient } from "./grpc/client.ts";

const run = promisify(execFile);
const IRIS = bundleDir("iris-logreg");
const PYTHON = TRITON_PYTHON;
const g = golden("iris-logreg");
const INFER_BODY = JSON.stringify({
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			data: Object.values(g.records[0] as Record<string, number>),
		},
	],
});

let certs: TestCerts;
before(async () => {
	certs = await makeCerts();
});
after(async () => {
	await certs?.remove();
});

async function start(extra: Record<string, unknown>): Promise<RunningServer> {
	return startServer(
		resolveSettings(
			{
				host: "127.0.0.1",
				http_port: 0,
				grpc_port: 0,
				log_level: "warn",
				models: [{ name: "iris", source: IRIS }],
				tls_cert: certs.serverCert,
				tls_key: certs.serverKey,
				...extra,
			},
			undefined,
			{},
		),
	);
}

/** `curl` exit code and body; `args` after the URL's options. */
async function curl(
	args: string[],
): Promise<{ code: number; body: string; stderr: string }> {
	try {
		const r = await run("curl", ["-sS", "--max-time", "30", ...args]);
		return { code: 0, body: r.stdout, stderr: r.stderr };
	} catch (err) {
		const e = err as { code?: number; stdout?: string; stderr?: string };
		return {
			code: typeof e.code === "number" ? e.code : -1,
			body: e.stdout ?? "",
			stderr: e.stderr ?? "",
		};
	}
}

/** The serial number of the certificate a TLS server at `port` presents to a new connection. */
function servedSerial(port: number, ca: Buffer): Promise<string> {
	return new Promise((resolve, reject) => {
		const s = tlsConnect(
			{
				host: "127.0.0.1",
				port,
				ca,
				servername: "localhost",
				ALPNProtocols: ["h2", "http/1.1"],
			},
			() => {
				const serial = s.getPeerCertificate().serialNumber;
				s.end();
				resolve(serial);
			},
		);
		s.on("error", reject);
	});
}

describe("serve --tls-cert/--tls-key", () => {
	let server: RunningServer;
	before(async () => {
		server = await start({});
	});
	after(async () => {
		await server?.close();
	});

	it("REST answers over HTTPS to curl --cacert, and inference works", async () => {
		const base = `https://127.0.0.1:${server.httpPort}`;
		const ready = await curl([
			"--cacert",
			certs.ca,
			"-o",
			"/dev/null",
			"-w",
			"%{http_code}",
			`${base}/v2/health/ready`,
		]);
		assert.equal(ready.code, 0, ready.stderr);
		assert.equal(ready.body, "200");
		const infer = await curl([
			"--cacert",
			certs.ca,
			"-H",
			"content-type: application/json",
			"-d",
			INFER_BODY,
			`${base}/v2/models/iris/infer`,
		]);
		assert.equal(infer.code, 0, infer.stderr);
		assert.equal(JSON.parse(infer.body).model_name, "iris");
	});

	it("REST refuses plain HTTP and clients that do not trust the CA", async () => {
		const plain = await curl([
			`http://127.0.0.1:${server.httpPort}/v2/health/ready`,
		]);
		assert.notEqual(
			plain.code,
			0,
			"plain HTTP got an answer from a TLS listener",
		);
		const untrusted = await curl([
			"--cacert",
			await certs.otherCa(),
			`https://127.0.0.1:${server.httpPort}/v2/health/ready`,
		]);
		assert.equal(
			untrusted.code,
			60,
			`curl should fail to verify the peer: ${untrusted.stderr}`,
		);
	});

	it("gRPC answers grpc-js over TLS with the CA, and refuses a plaintext channel", async () => {
		const secure = new InferenceClient(
			server.grpcPort,
			grpc.credentials.createSsl(await pem(certs.ca)),
		);
		try {
			const live = await secure.call<{ live: boolean }>("ServerLive");
			assert.equal(live.live, true);
			const out = await secure.infer({
				model_name: "iris",
				inputs: [
					{
						name: "float_input",
						datatype: "FP32",
						shape: [1, 4],
						contents: {
							fp32_contents: Object.values(
								g.records[0] as Record<string, number>,
							),
						},
					},
				],
			});
			assert.equal(out.model_name, "iris");
		} finally {
			secure.close();
		}
		const plain = new InferenceClient(server.grpcPort);
		try {
			await assert.rejects(
				plain.call("ServerLive", {}, { deadline: Date.now() + 10_000 }),
				(e: grpc.ServiceError) =>
					e.code === grpc.status.UNAVAILABLE ||
					e.code === grpc.status.DEADLINE_EXCEEDED,
			);
		} finally {
			plain.close();
		}
	});

	it("Triton's tritonclient talks to it over SSL (HTTP and gRPC)", async () => {
		assertTritonclient();
		const script = `
import sys, gevent.ssl, numpy as np
import tritonclient.http as th, tritonclient.grpc as tg
ca, http_port, grpc_port = sys.argv[1], sys.argv[2], sys.argv[3]
x = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
h = th.InferenceServerClient(f"127.0.0.1:{http_port}", ssl=True,
    ssl_context_factory=lambda: gevent.ssl.create_default_context(cafile=ca))
i = th.InferInput("float_input", [1, 4], "FP32"); i.set_data_from_numpy(x)
assert h.is_server_ready()
r1 = h.infer("iris", [i]).get_response()["model_name"]
g = tg.InferenceServerClient(f"127.0.0.1:{grpc_port}", ssl=True, root_certificates=ca)
j = tg.InferInput("float_input", [1, 4], "FP32"); j.set_data_from_numpy(x)
assert g.is_server_live()
r2 = g.infer("iris", [j]).get_response().model_name
print(r1, r2)
`;
		// Asynchronously: the server runs in this process, and spawnSync would block its event loop.
		const r = await run(
			PYTHON,
			[
				"-c",
				script,
				certs.ca,
				String(server.httpPort),
				String(server.grpcPort),
			],
			{ encoding: "utf8", timeout: 120_000 },
		).then(
			(x) => ({ status: 0, stdout: x.stdout, stderr: x.stderr }),
			(e: { code?: number; stdout?: string; stderr?: string }) => ({
				status: e.code ?? -1,
				stdout: e.stdout ?? "",
				stderr: e.stderr ?? String(e),
			}),
		);
		assert.equal(r.status, 0, r.stderr);
		assert.equal(r.stdout.trim(), "iris iris");
	});
});

describe("serve --tls-client-ca (mTLS)", () => {
	let server: RunningServer;
	before(async () => {
		server = await start({ tls_client_ca: certs.ca });
	});
	after(async () => {
		await server?.close();
	});

	it("REST refuses a client without a certificate and answers one with a certificate the CA signed", async () => {
		const url = `https://127.0.0.1:${server.httpPort}/v2/health/ready`;
		const without = await curl(["--cacert", certs.ca, url]);
		assert.notEqual(
			without.code,
			0,
			"a client without a certificate got an answer",
		);
		const withCert = await curl([
			"--cacert",
			certs.ca,
			"--cert",
			certs.clientCert,
			"--key",
			certs.clientKey,
			"-o",
			"/dev/null",
			"-w",
			"%{http_code}",
			url,
		]);
		assert.equal(withCert.code, 0, withCert.stderr);
		assert.equal(withCert.body, "200");
	});

	it("gRPC refuses a channel without a client certificate and serves one with it", async () => {
		const ca = await pem(certs.ca);
		const without = new InferenceClient(
			server.grpcPort,
			grpc.credentials.createSsl(ca),
		);
		try {
			await assert.rejects(
				without.call("ServerLive", {}, { deadline: Date.now() + 10_000 }),
				(e: grpc.ServiceError) =>
					e.code === grpc.status.UNAVAILABLE ||
					e.code === grpc.status.DEADLINE_EXCEEDED,
			);
		} finally {
			without.close();
		}
		const withCert = new InferenceClient(
			server.grpcPort,
			grpc.credentials.createSsl(
				ca,
				await pem(certs.clientKey),
				await pem(certs.clientCert),
			),
		);
		try {
			assert.equal(
				(await withCert.call<{ live: boolean }>("ServerLive")).live,
				true,
			);
		} finally {
			withCert.close();
		}
	});
});

describe("settings", () => {
	it("refuses a key without a certificate, and files that do not belong together, naming the flags", async () => {
		await assert.rejects(
			start({ tls_cert: undefined }),
			/TLS needs both --tls-cert and --tls-key/,
		);
		const other = await certs.issueServer("other", "other");
		await assert.rejects(
			start({ tls_key: other.key }),
			/TLS files --tls-cert .* \/ --tls-key .* cannot be used/,
		);
		await assert.rejects(
			start({ tls_cert: "/no/such.pem" }),
			/--tls-cert: cannot read '\/no\/such\.pem' \(ENOENT\)/,
		);
	});
});

describe("SIGHUP reloads the certificate", () => {
	it("new connections get the new certificate, and an open keep-alive connection (REST) and channel (gRPC) keep working", async () => {
		// The served files are copies, replaced in place as a renewal would.
		const cert = join(certs.dir, "live.pem");
		const key = join(certs.dir, "live.key");
		await copyFile(certs.serverCert, cert);
		await copyFile(certs.serverKey, key);
		const s = await serve([
			"--model",
			`${IRIS}:iris`,
			"--tls-cert",
			cert,
			"--tls-key",
			key,
		]);
		const http = Number(new URL(s.http).port);
		const ca = await pem(certs.ca);
		const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
		const get = () =>
			new Promise<{ status: number; reused: boolean; serial: string }>(
				(resolve, reject) => {
					const req = https.get(
						{ host: "127.0.0.1", port: http, path: "/v2/health/ready", agent },
						(res) => {
							res.resume();
							// Read while the response is open: the socket goes back to the agent at its end.
							const serial = (
								res.socket as import("node:tls").TLSSocket
							).getPeerCertificate().serialNumber;
							res.on("end", () =>
								resolve({
									status: res.statusCode ?? 0,
									reused: req.reusedSocket,
									serial,
								}),
							);
						},
					);
					req.on("error", reject);
				},
			);
		const channel = new InferenceClient(
			s.grpcPort,
			grpc.credentials.createSsl(ca),
		);
		try {
			const first = await get();
			assert.equal(first.status, 200);
			assert.equal(
				(await channel.call<{ live: boolean }>("ServerLive")).live,
				true,
			);
			const oldSerial = await servedSerial(http, ca);
			assert.equal(await servedSerial(s.grpcPort, ca), oldSerial);

			const renewed = await certs.issueServer("renewed", "127.0.0.1");
			await copyFile(renewed.cert, cert);
			await copyFile(renewed.key, key);
			s.proc.kill("SIGHUP");
			// The reload is logged once done.
			for (
				let i = 0;
				i < 600 && !s.logs().some((l) => l.msg === "TLS certificate reloaded");
				i++
			)
				await new Promise((r) => setTimeout(r, 50));
			assert.ok(
				s.logs().some((l) => l.msg === "TLS certificate reloaded"),
				JSON.stringify(s.logs()),
			);

			const newSerial = await servedSerial(http, ca);
			assert.notEqual(
				newSerial,
				oldSerial,
				"a new REST connection still gets the old certificate",
			);
			assert.equal(
				await servedSerial(s.grpcPort, ca),
				newSerial,
				"a new gRPC connection still gets the old certificate",
			);

			// The connections opened before the reload were not dropped.
			const again = await get();
			assert.equal(again.status, 200);
			assert.equal(
				again.reused,
				true,
				"the keep-alive connection was closed by the reload",
			);
			assert.equal(again.serial, oldSerial);
			assert.equal(
				(await channel.call<{ live: boolean }>("ServerLive")).live,
				true,
			);

			// A reload with a broken key keeps serving the current certificate.
			await copyFile(certs.clientKey, key);
			s.proc.kill("SIGHUP");
			for (
				let i = 0;
				i < 600 &&
				!s.logs().some((l) => String(l.msg).startsWith("TLS reload failed"));
				i++
			)
				await new Promise((r) => setTimeout(r, 50));
			assert.ok(
				s.logs().some((l) => String(l.msg).startsWith("TLS reload failed")),
			);
			assert.equal(await servedSerial(http, ca), newSerial);
		} finally {
			channel.close();
			agent.destroy();
			s.proc.kill("SIGTERM");
			await s.exit;
		}
	});
});
