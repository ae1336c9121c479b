// Logs a person can read (issue 11.7): a banner and pretty logs on a terminal, JSON lines otherwise or with
// --log-format json; --access-log writes one line per request and, when off, registers no per-request hook.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { banner, hidePassword, prettyLogs } from "../../src/server/logging.ts";
import { createRestServer } from "../../src/server/rest/server.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";
import { serve } from "../helpers/serve-process.ts";

const IRIS = bundleDir("iris-logreg");

/** Runs `mlship serve ARGS` under a pseudo-terminal (util-linux `script`) until it says it is serving, then stops it. */
function serveOnTerminal(args: string[]): Promise<string> {
	const cmd = [process.execPath, CLI, "serve", ...args]
		.map((a) => `'${a.replace(/'/g, "'\\''")}'`)
		.join(" ");
	const proc = spawn("script", ["-qfec", cmd, "/dev/null"], {
		stdio: ["ignore", "pipe", "pipe"],
		env: { ...process.env, TERM: "xterm" },
	});
	let out = "";
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			proc.kill("SIGKILL");
			reject(new Error(`no banner within 60 s: ${out}`));
		}, 60_000);
		proc.stdout.on("data", (d) => {
			out += d;
			if (/try: curl|"mlship serving"/.test(out)) {
				clearTimeout(timer);
				// Give the rest of the output a moment, then stop the server (script passes the signal on).
				setTimeout(() => proc.kill("SIGTERM"), 200);
			}
		});
		proc.on("exit", () => {
			clearTimeout(timer);
			resolve(out);
		});
	});
}

const common = [
	"--host",
	"127.0.0.1",
	"--http-port",
	"0",
	"--grpc-port",
	"-1",
	"-m",
	IRIS,
];

describe("serve logs", () => {
	it("pretty when stdout is a terminal or --log-format pretty; JSON otherwise", () => {
		assert.equal(prettyLogs("auto", true), true);
		assert.equal(prettyLogs("auto", false), false);
		assert.equal(prettyLogs("json", true), false);
		assert.equal(prettyLogs("pretty", false), true);
	});

	it("the banner names the URLs, the models and the registry (its password hidden)", () => {
		const text = banner({
			host: "0.0.0.0",
			httpPort: 8080,
			grpcPort: 8081,
			registry: "postgres://mlship:s3cret@db:5432/registry",
			models: [
				{ name: "iris", version: "3", state: "READY", reason: "" },
				{
					name: "churn",
					version: "1",
					state: "UNAVAILABLE",
					reason: "not registered",
				},
			],
		});
		assert.match(text, /mlship serving 2 models/);
		assert.match(text, /REST {6}http:\/\/localhost:8080\/v2/);
		assert.match(text, /http:\/\/localhost:8080\/v2\/openapi\.json/);
		assert.match(text, /gRPC {6}localhost:8081/);
		assert.match(
			text,
			/registry {2}postgres:\/\/mlship:\*\*\*@db:5432\/registry/,
		);
		assert.doesNotMatch(text, /s3cret/);
		assert.match(text, /iris {3}v3 {2}ready/);
		assert.match(text, /churn {2}v1 {2}unavailable: not registered/);
		assert.equal(
			hidePassword("sqlite:.mlship/registry.db"),
			"sqlite:.mlship/registry.db",
		);
	});

	it("on a terminal: the banner and pretty lines, no JSON; --log-format json keeps JSON", async () => {
		const pretty = await serveOnTerminal(common);
		assert.match(pretty, /mlship serving 1 model\b/);
		assert.match(pretty, /iris-logreg\s+v1\s+ready/);
		assert.match(pretty, /INFO.*model ready/);
		assert.doesNotMatch(pretty, /^\{"level"/m);

		const json = await serveOnTerminal([...common, "--log-format", "json"]);
		assert.match(json, /^\{"level":30,.*"msg":"mlship serving"\}/m);
		assert.doesNotMatch(json, /try: curl/);
	});

	it("--access-log: one line per request with method, path, status, duration, request id, model and version", async () => {
		const s = await serve([
			...common.slice(6),
			"--access-log",
			"--log-level",
			"info",
		]);
		try {
			const r = await fetch(`${s.http}/v2/models/iris-logreg/predict`, {
				method: "POST",
				headers: { "x-request-id": "req-42" },
				body: JSON.stringify({
					instances: golden("iris-logreg").records.slice(0, 1),
				}),
			});
			assert.equal(r.status, 200);
			await fetch(`${s.http}/v2/models/nope`);
			await new Promise((res) => setTimeout(res, 200));
			const lines = s.logs().filter((l) => l.msg === "access");
			const ok = lines.find((l) => l.request_id === "req-42");
			assert.ok(ok, JSON.stringify(lines));
			assert.equal(ok.method, "POST");
			assert.equal(ok.path, "/v2/models/iris-logreg/predict");
			assert.equal(ok.status, 200);
			assert.equal(ok.model, "iris-logreg");
			assert.equal(ok.version, "1");
			assert.equal(typeof ok.duration_ms, "number");
			const missing = lines.find((l) => l.model === "nope");
			assert.equal(missing?.status, 404);
		} finally {
			s.proc.kill("SIGTERM");
			await s.exit;
		}
	});

	describe("without --access-log", () => {
		let dp: DataPlane;
		before(async () => {
			dp = await createDataPlane({
				models: [{ name: "iris", source: IRIS }],
				processMetrics: false,
			});
		});
		after(() => dp.close());

		it("no onResponse hook is registered (it costs nothing), and one is with accessLog", async () => {
			const hooks = (app: object) => {
				const sym = Object.getOwnPropertySymbols(app).find(
					(x) => x.description === "fastify.hooks",
				);
				assert.ok(sym, "fastify keeps its hooks under Symbol('fastify.hooks')");
				const all = (app as Record<symbol, { onResponse: unknown[] }>)[sym];
				assert.ok(all);
				return all.onResponse.length;
			};
			const off = createRestServer(dp);
			await off.ready();
			assert.equal(hooks(off), 0);
			const on = createRestServer(dp, { accessLog: true });
			await on.ready();
			assert.equal(hooks(on), 1);
			await off.close();
			await on.close();
		});

		it("a process without --access-log writes no access lines", async () => {
			const s = await serve([...common.slice(6), "--log-level", "info"]);
			try {
				await fetch(`${s.http}/v2/health/ready`);
				await new Promise((res) => setTimeout(res, 100));
				assert.equal(s.logs().filter((l) => l.msg === "access").length, 0);
			} finally {
				s.proc.kill("SIGTERM");
				await s.exit;
			}
		});
	});
});
