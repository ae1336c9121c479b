// The dashboard's server side: live figures from /metrics, assets, JSON routes, the alias route, scopes and audit,
// `mlship ui` reading another server with the user's token. The browser test is test/ui/dashboard.test.ts.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { REST_SCOPES } from "../../src/server/auth/policy.ts";
import { createRestServer } from "../../src/server/rest/index.ts";
import { registeredRoutes } from "../../src/server/rest/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { startUi } from "../../src/server/ui/app.ts";
import {
	parseExposition,
	quantile,
	rates,
	snapshot,
} from "../../src/server/ui/live.ts";
import {
	readAtMost,
	remoteServer,
	remoteStream,
} from "../../src/server/ui/servers.ts";
import { freePort } from "../harness/service.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { startServing } from "../helpers/server.ts";

const IRIS = bundleDir("iris-logreg");
const ROW = {
	sepal_length: 5.1,
	sepal_width: 3.5,
	petal_length: 1.4,
	petal_width: 0.2,
};

describe("dashboard live figures (src/server/ui/live.ts)", () => {
	it("parses labels with escapes, +Inf and skips comments", () => {
		const s = parseExposition(
			'# HELP x y\nm{a="q\\"x",le="+Inf"} +Inf\nbad line\nn 3 1700000000\n',
		);
		assert.deepEqual(s, [
			{ name: "m", labels: { a: 'q"x', le: "+Inf" }, value: Infinity },
			{ name: "n", labels: {}, value: 3 },
		]);
	});

	it("quantiles interpolate inside a bucket like histogram_quantile; none without requests", () => {
		const b = [
			[0.001, 0],
			[0.01, 50],
			[0.1, 100],
			[Infinity, 100],
		] as const;
		assert.ok(Math.abs((quantile(0.5, b) as number) - 0.01) < 1e-12);
		assert.ok(Math.abs((quantile(0.99, b) as number) - 0.0982) < 1e-9);
		assert.equal(quantile(0.5, [[Infinity, 0]]), null);
		// past the last finite bound: that bound, as the monitor's histogramQuantile answers for the same counts
		const tail = [
			[0.1, 90],
			[0.01, 10],
			[Infinity, 100],
		] as const;
		assert.equal(quantile(0.99, tail), 0.1);
		assert.equal(quantile(0.05, tail), 0.005);
	});

	it("rates between two reads per version; a counter reset (restart) gives no negative rate", () => {
		const text = (n: number, q: number) =>
			[
				`mlship_requests_total{model="m",version="1",outcome="ok"} ${n}`,
				`mlship_requests_total{model="m",version="1",outcome="invalid"} ${n / 10}`,
				`mlship_request_duration_seconds_bucket{model="m",version="1",le="0.005"} ${n}`,
				`mlship_request_duration_seconds_bucket{model="m",version="1",le="+Inf"} ${n * 1.1}`,
				`mlship_batch_size_sum{model="m",version="1"} ${n * 4}`,
				`mlship_batch_size_count{model="m",version="1"} ${n}`,
				`mlship_queue_depth{model="m",version="1"} ${q}`,
				"mlship_models_loaded_bytes 1000",
			].join("\n");
		const a = snapshot(text(100, 0), 0);
		const b = snapshot(text(300, 7), 2000);
		assert.equal(b.loadedBytes, 1000);
		const [r] = rates(a, b);
		assert.equal(r?.rps, (330 - 110) / 2);
		assert.equal(r?.errors, 20 / 2);
		assert.equal(r?.batch, 4);
		assert.equal(r?.queue, 7);
		assert.ok((r?.p50 as number) > 0 && (r?.p50 as number) <= 5);
		// First read: no interval yet.
		assert.equal(rates(undefined, a)[0]?.rps, null);
		assert.equal(rates(undefined, a)[0]?.p50, null);
		// Server restarted: counters lower than before.
		const [z] = rates(b, snapshot(text(10, 0), 3000));
		assert.ok((z?.rps as number) >= 0);
	});
});

describe("dashboard routes on serve --ui", () => {
	let dir: string;
	let uri: string;
	let store: ModelStore;
	let server: RunningServer;
	let url: string;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-"));
		uri = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(uri);
		const bundle = await readBundle(IRIS);
		await store.register(bundle, { name: "iris", aliases: ["production"] });
		await store.register(bundle, { name: "iris" });
		// No token exists: admin routes (alias moves) need --allow-open-admin, as load/unload do.
		server = await startServing({ iris: "iris@production" }, uri, {
			ui: true,
			allow_open_admin: true,
		});
		url = `http://127.0.0.1:${server.httpPort}`;
	});
	after(async () => {
		await server?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	it("serves the page and assets with content types and revalidation (ETag, 304); unknown assets 404", async () => {
		const page = await fetch(`${url}/ui/`);
		assert.equal(page.status, 200);
		assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
		assert.match(
			await page.text(),
			/<script type="module" src="assets\/app\.js">/,
		);
		const etag = page.headers.get("etag") as string;
		assert.equal(page.headers.get("cache-control"), "no-cache");
		const again = await fetch(`${url}/ui/`, {
			headers: { "if-none-match": etag },
		});
		assert.equal(again.status, 304);
		for (const [file, type] of [
			["app.js", /^text\/javascript/],
			["uplot.js", /^text\/javascript/],
			["app.css", /^text\/css/],
			["uplot.css", /^text\/css/],
		] as const) {
			const r = await fetch(`${url}/ui/assets/${file}`);
			assert.equal(r.status, 200, file);
			assert.match(r.headers.get("content-type") ?? "", type, file);
			assert.ok((await r.arrayBuffer()).byteLength > 500, file);
		}
		assert.equal((await fetch(`${url}/ui/assets/index.html`)).status, 404);
		assert.equal((await fetch(`${url}/ui/assets/..%2Fapp.ts`)).status, 404);
		const redirect = await fetch(`${url}/ui`, { redirect: "manual" });
		assert.equal(redirect.status, 302);
		assert.equal(redirect.headers.get("location"), "/ui/");
	});

	it("lists models with versions, aliases and serving state; a model page has versions newest first with manifests", async () => {
		const list = (await (await fetch(`${url}/ui/api/models`)).json()) as {
			models: {
				name: string;
				versions: number;
				aliases: Record<string, number>;
				serving: { server: string; state: string; version: string }[];
			}[];
		};
		assert.equal(list.models.length, 1);
		assert.deepEqual(list.models[0]?.aliases, { production: 1 });
		assert.equal(list.models[0]?.versions, 2);
		assert.deepEqual(list.models[0]?.serving, [
			{ server: "local", state: "READY", version: "1" },
		]);
		const model = (await (await fetch(`${url}/ui/api/models/iris`)).json()) as {
			versions: { version: number; detail?: { labels?: string[] } }[];
		};
		assert.deepEqual(
			model.versions.map((v) => v.version),
			[2, 1],
		);
		assert.deepEqual(model.versions[0]?.detail?.labels, [
			"setosa",
			"versicolor",
			"virginica",
		]);
		const missing = await fetch(`${url}/ui/api/models/nope`);
		assert.equal(missing.status, 404);
		assert.match(
			((await missing.json()) as { error: string }).error,
			/mlship models register/,
		);
	});

	it("streams per-version requests/s and latency over SSE while traffic flows", async () => {
		const ctrl = new AbortController();
		const res = await fetch(`${url}/ui/api/models/iris/live`, {
			signal: ctrl.signal,
		});
		assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
		let sending = true;
		const traffic = (async () => {
			for (let i = 0; sending && i < 2000; i++)
				await fetch(`${url}/v2/models/iris/predict`, {
					method: "POST",
					body: JSON.stringify({ instances: [ROW] }),
				}).then((r) => r.arrayBuffer());
		})();
		const reader = res.body
			?.pipeThrough(new TextDecoderStream())
			.getReader() as ReadableStreamDefaultReader<string>;
		let buf = "";
		let seen:
			| { rps: number | null; p99: number | null; version: string }
			| undefined;
		for (let n = 0; n < 30 && !seen; ) {
			const { value, done } = await reader.read();
			if (done) break;
			buf += value;
			for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
				const ev = buf.slice(0, i);
				buf = buf.slice(i + 2);
				if (!ev.startsWith("data: ")) continue;
				n++;
				const data = JSON.parse(ev.slice(6)) as {
					servers: {
						versions: {
							rps: number | null;
							p99: number | null;
							version: string;
						}[];
					}[];
				};
				const v = data.servers[0]?.versions.find((x) => (x.rps ?? 0) > 0);
				if (v) seen = v;
			}
		}
		sending = false;
		ctrl.abort();
		await traffic;
		assert.ok(seen, "an event with requests/s > 0");
		assert.equal(seen.version, "1");
		assert.ok((seen.p99 as number) > 0);
	});

	it("drift: without a monitor on any server, says so with each server's reason; a bad since is refused", async () => {
		const r = await fetch(`${url}/ui/api/models/iris/drift`);
		assert.equal(r.status, 200);
		const body = (await r.json()) as { available: boolean; reasons: string[] };
		assert.equal(body.available, false);
		assert.equal(body.reasons.length, 1);
		assert.match(body.reasons[0] as string, /^this server: /);
		const bad = await fetch(`${url}/ui/api/models/iris/drift?since=forever`);
		assert.equal(bad.status, 400);
		assert.match(((await bad.json()) as { error: string }).error, /24h/);
	});

	it("every route a server with a registry and the dashboard has is in the scope table (none falls to admin by omission)", async () => {
		const app = createRestServer(server.dataPlane, { registry: store, ui: {} });
		await app.ready();
		const routes = registeredRoutes(app).map((r) => `${r.method} ${r.url}`);
		await app.close();
		assert.ok(routes.includes("GET /ui/api/models/:model/live"));
		assert.ok(
			routes.includes("PUT /v2/repository/models/:model/aliases/:alias"),
		);
		assert.deepEqual(
			routes.filter((r) => !(r in REST_SCOPES)),
			[],
		);
	});

	it("PUT /v2/repository/models/:model/aliases/:alias moves an alias (audited), refuses bad bodies and unknown versions", async () => {
		const put = (body: unknown) =>
			fetch(`${url}/v2/repository/models/iris/aliases/staging`, {
				method: "PUT",
				headers: { "content-type": "application/json" },
				body: JSON.stringify(body),
			});
		const bad = await put({ version: "two" });
		assert.equal(bad.status, 400);
		assert.match(((await bad.json()) as { error: string }).error, /version/);
		assert.equal((await put({ version: 9 })).status, 404);
		const ok = await put({ version: 2 });
		assert.equal(ok.status, 200);
		assert.equal((await store.get("iris@staging")).version, 2);
		const events = await store.audit.list({ action: "alias.set" });
		const e = events.find((x) => x.target === "iris@staging");
		assert.ok(e, "alias.set audited");
		assert.equal(e.actor, "anonymous");
	});
});

describe("dashboard scopes and mlship ui over another server", () => {
	let dir: string;
	let uri: string;
	let store: ModelStore;
	let server: RunningServer;
	let url: string;
	let read: string;
	let admin: string;
	let adminId: string;

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-ui-auth-"));
		uri = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(uri);
		const bundle = await readBundle(IRIS);
		await store.register(bundle, { name: "iris", aliases: ["production"] });
		await store.register(bundle, { name: "iris" });
		read = (await store.tokens.create({ scopes: ["read"] })).token;
		const a = await store.tokens.create({ scopes: ["read", "admin"] });
		admin = a.token;
		adminId = a.info.id;
		server = await startServing({ iris: "iris@production" }, uri, {
			ui: true,
		});
		url = `http://127.0.0.1:${server.httpPort}`;
	});
	after(async () => {
		await server?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

	it("the page is open, its data needs read, an alias move needs admin and is audited as the token", async () => {
		assert.equal((await fetch(`${url}/ui/`)).status, 200);
		assert.equal((await fetch(`${url}/ui/assets/app.js`)).status, 200);
		assert.equal((await fetch(`${url}/ui/api/models`)).status, 401);
		assert.equal(
			(await fetch(`${url}/ui/api/models`, { headers: bearer(read) })).status,
			200,
		);
		const move = (t: string) =>
			fetch(`${url}/v2/repository/models/iris/aliases/production`, {
				method: "PUT",
				headers: { ...bearer(t), "content-type": "application/json" },
				body: '{"version": 2}',
			});
		assert.equal((await move(read)).status, 403);
		assert.equal((await store.get("iris@production")).version, 1);
		assert.equal((await move(admin)).status, 200);
		assert.equal((await store.get("iris@production")).version, 2);
		const e = (await store.audit.list({ action: "alias.set" })).find(
			(x) => x.target === "iris@production",
		);
		assert.equal(e?.actor, adminId);
	});

	it("mlship ui reads another server with the user's token and unloads there only with admin", async () => {
		const ui = await startUi({
			registry: uri,
			servers: [url],
			port: 0,
		});
		try {
			const base = `http://127.0.0.1:${ui.port}`;
			const servers = (await (
				await fetch(`${base}/ui/api/servers`, { headers: bearer(read) })
			).json()) as { id: string; ready: boolean; models: { name: string }[] }[];
			assert.equal(servers.length, 1);
			assert.equal(servers[0]?.id, "s1");
			assert.equal(servers[0]?.ready, true);
			assert.deepEqual(
				servers[0]?.models.map((m) => m.name),
				["iris"],
			);
			const unload = (t: string) =>
				fetch(`${base}/ui/api/servers/s1/models/iris/unload`, {
					method: "POST",
					headers: { ...bearer(t), "content-type": "application/json" },
					body: "{}",
				});
			assert.equal((await unload(read)).status, 403);
			assert.equal(
				(
					await fetch(`${base}/ui/api/servers/s9/models/iris/unload`, {
						method: "POST",
						headers: { ...bearer(admin), "content-type": "application/json" },
						body: "{}",
					})
				).status,
				404,
			);
			assert.equal((await unload(admin)).status, 200);
			assert.notEqual(
				server.dataPlane.repositoryIndex().find((e) => e.name === "iris")
					?.state,
				"READY",
			);
			const e = (await store.audit.list({ action: "model.unload" })).find(
				(x) => x.target === "iris",
			);
			assert.equal(e?.actor, adminId);
		} finally {
			await ui.close();
		}
	});
});

describe("experiments data with many entity aliases", () => {
	it("sends neither entity members' aliases as rollout choices nor the state before the range of aliases untouched in it without a policy", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-ui-entities-"));
		const registry = `sqlite:${join(dir, "r.db")}`;
		const store = await openRegistry(registry);
		const iris = await readBundle(IRIS);
		await store.register(iris, { name: "iris", aliases: ["production"] });
		await store.register(iris, { name: "iris" });
		await store.registerMany(
			Array.from({ length: 300 }, (_, i) => ({
				bundle: iris,
				opts: { name: "shop", entity: `s${i}`, aliases: [`s${i}-live`] },
			})),
		);
		await store.setRoute("iris", "production", {
			split: [
				{ version: 1, weight: 90 },
				{ version: 2, weight: 10 },
			],
		});
		await store.close();
		// Every row is before a range of the last millisecond once the clock has moved on.
		const last = Date.now();
		while (Date.now() < last + 2) await new Promise((r) => setTimeout(r, 2));
		const ui = await startUi({ registry, port: 0, auth: "off" });
		try {
			const res = await fetch(
				`http://127.0.0.1:${ui.port}/ui/api/experiments?since=1ms`,
			);
			assert.equal(res.status, 200);
			const body = (await res.json()) as {
				history: { name: string; alias: string; version: number }[];
				aliases: unknown[];
			};
			assert.deepEqual(
				body.history.map((c) => [c.name, c.alias, c.version]),
				[["iris", "production", 1]],
			);
			assert.deepEqual(body.aliases, [
				{ name: "iris", alias: "production", version: 1, versions: [2] },
			]);
		} finally {
			await ui.close();
			await rm(dir, { recursive: true, force: true });
		}
	});
});

describe("mlship ui --stream", () => {
	it("reads each stream's /status without sending the user's token; a non-JSON answer and an unreachable one are named", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-ui-stream-"));
		const seen: (string | undefined)[] = [];
		const status = createServer((req, res) => {
			seen.push(req.headers.authorization);
			res.writeHead(200, { "content-type": "application/json" });
			res.end(JSON.stringify({ pattern: "stream", consumed: 3 }));
		});
		const html = createServer((_req, res) => {
			res.writeHead(200, { "content-type": "text/html" });
			res.end("<html>not a stream</html>");
		});
		const listen = (s: Server) =>
			new Promise<number>((resolve) =>
				s.listen(0, "127.0.0.1", () => {
					const a = s.address();
					resolve(typeof a === "object" && a ? a.port : 0);
				}),
			);
		const ports = [await listen(status), await listen(html)];
		const dead = `http://127.0.0.1:${await freePort()}`;
		const ui = await startUi({
			registry: `sqlite:${join(dir, "r.db")}`,
			streams: ports.map((p) => `http://127.0.0.1:${p}`).concat(dead),
			port: 0,
			auth: "off",
		});
		try {
			const body = (await (
				await fetch(`http://127.0.0.1:${ui.port}/ui/api/streams`, {
					headers: { authorization: "Bearer mls_not-for-the-stream" },
				})
			).json()) as { id: string; status?: unknown; error?: string }[];
			assert.deepEqual(body[0], {
				id: "t1",
				label: `http://127.0.0.1:${ports[0]}`,
				status: { pattern: "stream", consumed: 3 },
			});
			assert.deepEqual(seen, [undefined]);
			assert.match(
				body[1]?.error ?? "",
				/is not JSON: is this an mlship stream --metrics-port\?/,
			);
			assert.match(
				body[2]?.error ?? "",
				/^stream http:.* is unreachable .*is it running\?/,
			);
			await assert.rejects(
				startUi({
					registry: `sqlite:${join(dir, "r.db")}`,
					streams: ["redis://127.0.0.1:6379"],
					port: 0,
				}),
				/--stream must be an http:\/\/ or https:\/\/ URL/,
			);
		} finally {
			await ui.close();
			status.close();
			html.close();
			await rm(dir, { recursive: true, force: true });
		}
	});
});

describe("reads of other servers and streams are bounded", () => {
	it("counts the bytes as they arrive: exactly the limit is read, one more is not; a declared length over it is not read", async () => {
		assert.equal(await readAtMost(new Response("héllo"), 6), "héllo");
		assert.equal(await readAtMost(new Response("héllo"), 5), undefined);
		assert.equal(await readAtMost(new Response(null), 0), "");
		assert.equal(
			await readAtMost(
				new Response("tiny", { headers: { "content-length": "1000000" } }),
				10,
			),
			undefined,
		);
	});

	it("a chunked answer over the limit (no content-length) is cancelled, not read whole: /status, /metrics, JSON, an error's body", async () => {
		const MiB = 1024 * 1024;
		/** What the server wrote per request, and whether the client read it all. */
		const sent: {
			url: string;
			total: number;
			bytes: number;
			finished: boolean;
			closed: Promise<void>;
		}[] = [];
		const chunk = Buffer.alloc(64 * 1024, "#");
		const big = createServer((req, res) => {
			const url = req.url ?? "";
			if (url === "/v2/models/html/quality") {
				res.writeHead(200, { "content-type": "text/html" });
				res.end("<html>not a server</html>");
				return;
			}
			// Well past each limit (256 KiB, 64 KiB; 32 and 64 MiB) plus what the sockets' buffers hold.
			const total =
				url === "/metrics" || url.startsWith("/v2/models/big/")
					? 128 * MiB
					: 32 * MiB;
			const s = {
				url,
				total,
				bytes: 0,
				finished: false,
				closed: new Promise<void>((r) => res.on("close", r)),
			};
			sent.push(s);
			res.on("error", () => {});
			res.writeHead(url.endsWith("/experiment") ? 500 : 200, {
				"content-type": "text/plain",
			});
			const pump = () => {
				while (s.bytes < total) {
					s.bytes += chunk.length;
					if (!res.write(chunk)) {
						res.once("drain", pump);
						return;
					}
				}
				s.finished = true;
				res.end();
			};
			pump();
		});
		const port = await new Promise<number>((resolve) =>
			big.listen(0, "127.0.0.1", () => {
				const a = big.address();
				resolve(typeof a === "object" && a ? a.port : 0);
			}),
		);
		const origin = `http://127.0.0.1:${port}`;
		try {
			/** The client stopped reading the newest answer: the server saw the connection close before writing it all. */
			const stoppedEarly = async (url: string) => {
				const s = sent.at(-1);
				assert.equal(s?.url, url);
				await s.closed;
				assert.equal(
					s.finished,
					false,
					`${url}: the whole answer was read (${s.bytes} of ${s.total} bytes)`,
				);
			};
			await assert.rejects(remoteStream("t1", origin).status(), {
				code: "MLSHIP_UNAVAILABLE",
				message: `stream ${origin}: /status is above the dashboard's limit of 262144 bytes`,
			});
			await stoppedEarly("/status");
			const srv = remoteServer("s1", origin);
			await assert.rejects(srv.metrics(undefined), {
				code: "MLSHIP_UNAVAILABLE",
				message: `server ${origin}: /metrics is above the dashboard's limit of ${32 * MiB} bytes`,
			});
			await stoppedEarly("/metrics");
			await assert.rejects(srv.experiment("iris", undefined), {
				code: "MLSHIP_UNAVAILABLE",
				message: `server ${origin}: an error answer above 65536 bytes`,
			});
			await stoppedEarly("/v2/models/iris/experiment");
			// JSON answers (index, experiment, monitor, quality) share one limit, and are named when not JSON.
			await assert.rejects(srv.monitor("big", "1h", undefined), {
				code: "MLSHIP_UNAVAILABLE",
				message: `server ${origin}: /v2/models/big/monitor is above the dashboard's limit of ${64 * MiB} bytes`,
			});
			await stoppedEarly("/v2/models/big/monitor?since=1h");
			await assert.rejects(srv.quality("html", undefined), {
				code: "MLSHIP_UNAVAILABLE",
				message: `server ${origin}: /v2/models/html/quality is not JSON: is this an mlship serve?`,
			});
			// The dashboard's own route says the same for the stream.
			const ui = await startUi({
				registry: "sqlite::memory:",
				streams: [origin],
				port: 0,
				auth: "off",
			});
			try {
				const body = (await (
					await fetch(`http://127.0.0.1:${ui.port}/ui/api/streams`)
				).json()) as { error?: string }[];
				assert.match(
					body[0]?.error ?? "",
					/\/status is above the dashboard's limit of 262144 bytes/,
				);
			} finally {
				await ui.close();
			}
		} finally {
			big.closeAllConnections();
			big.close();
		}
	});
});

describe("serve --ui without a registry", () => {
	it("lists no models and says there is no registry; the model page names the flag to add", async () => {
		const server = await startServing({ iris: IRIS }, undefined, { ui: true });
		try {
			const url = `http://127.0.0.1:${server.httpPort}`;
			const list = (await (await fetch(`${url}/ui/api/models`)).json()) as {
				registry: boolean;
				models: unknown[];
				servers: { id: string }[];
			};
			assert.equal(list.registry, false);
			assert.deepEqual(list.models, []);
			assert.deepEqual(
				list.servers.map((s) => s.id),
				["local"],
			);
			const model = await fetch(`${url}/ui/api/models/iris`);
			assert.equal(model.status, 503);
			assert.match(
				((await model.json()) as { error: string }).error,
				/--registry URI/,
			);
		} finally {
			await server.close();
		}
	});
});
