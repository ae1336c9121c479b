// API tokens on a real server (REST and gRPC) with a real SQLite registry: for every route and RPC, the status of
// each kind of token, listed per row; the default (no flags) with and without tokens; revocation on two replicas.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { InferOptions } from "../../src/dataplane/types.ts";
import type { Scope } from "../../src/registry/access.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { UNAUTHENTICATED_MESSAGE } from "../../src/server/auth/authenticator.ts";
import { GRPC_SCOPES, REST_SCOPES } from "../../src/server/auth/policy.ts";
import { createRestServer } from "../../src/server/rest/index.ts";
import { registeredRoutes } from "../../src/server/rest/server.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import {
	resolveSettings,
	type ServerSettingsInput,
} from "../../src/server/settings.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { startServing } from "../helpers/server.ts";
import { InferenceClient } from "./grpc/client.ts";

const IRIS = bundleDir("iris-logreg");

/** A server on loopback ports serving churn, churn-spare and iris (all the iris fixture) with `registry`. */
function start(
	registry: string | undefined,
	extra: Partial<ServerSettingsInput> = {},
): Promise<RunningServer> {
	return startServing(
		{ churn: IRIS, "churn-spare": IRIS, iris: IRIS },
		registry,
		extra,
	);
}

const INFER_BODY = {
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			data: [5.1, 3.5, 1.4, 0.2],
		},
	],
};
const PREDICT_BODY = {
	instances: [
		{
			sepal_length: 5.1,
			sepal_width: 3.5,
			petal_length: 1.4,
			petal_width: 0.2,
		},
	],
};

/** The expected status of each kind of caller. */
interface Expect {
	/** No Authorization header. */
	none: number;
	/** A well-formed token that was never issued. */
	wrong: number;
	expired: number;
	revoked: number;
	/** A valid token whose scopes do not include the one the call needs. */
	scope: number;
	/** A valid token with the right scope, limited to churn*, on model iris (or on a server-wide call). */
	model: number;
	/** A valid, unrestricted token with the right scope. */
	right: number;
	/** A valid token with the right scope limited to churn*, on model churn (server-wide calls: same as `model`). */
	pattern: number;
}
const OPEN: Expect = {
	none: 200,
	wrong: 200,
	expired: 200,
	revoked: 200,
	scope: 200,
	model: 200,
	right: 200,
	pattern: 200,
};
const GUARDED = (right: number, serverWide = false): Expect => ({
	none: 401,
	wrong: 401,
	expired: 401,
	revoked: 401,
	scope: 403,
	model: 403,
	right,
	pattern: serverWide ? 403 : right,
});

interface RestRow {
	method: "GET" | "POST";
	/** `{m}` is the model. */
	path: string;
	need: Scope | "open";
	body?: unknown;
	expect: Expect;
}

// Every registered REST route (the last test keeps this list complete). The repository load/unload rows run last,
// on churn-spare, so unloading does not disturb the others.
const REST_TABLE: RestRow[] = [
	{ method: "GET", path: "/v2/health/live", need: "open", expect: OPEN },
	{ method: "GET", path: "/v2/health/ready", need: "open", expect: OPEN },
	{ method: "GET", path: "/v2", need: "read", expect: GUARDED(200, true) },
	{ method: "GET", path: "/v2/models/{m}", need: "read", expect: GUARDED(200) },
	{
		method: "GET",
		path: "/v2/models/{m}/versions/1",
		need: "read",
		// Bundle-path models are served as version "1".
		expect: GUARDED(200),
	},
	{
		method: "GET",
		path: "/v2/models/{m}/ready",
		need: "read",
		expect: GUARDED(200),
	},
	{
		method: "GET",
		path: "/v2/models/{m}/versions/1/ready",
		need: "read",
		expect: GUARDED(200),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/infer",
		need: "predict",
		body: INFER_BODY,
		expect: GUARDED(200),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/versions/1/infer",
		need: "predict",
		body: INFER_BODY,
		expect: GUARDED(200),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/predict",
		need: "predict",
		body: PREDICT_BODY,
		expect: GUARDED(200),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/versions/1/predict",
		need: "predict",
		body: PREDICT_BODY,
		expect: GUARDED(200),
	},
	{
		method: "POST",
		path: "/v2/repository/index",
		need: "read",
		body: {},
		expect: GUARDED(200, true),
	},
	{
		method: "GET",
		path: "/v2/repository/models/{m}/entities",
		need: "read",
		// Past the token check the route answers: churn is not a per-entity family.
		expect: GUARDED(404),
	},
	{
		method: "GET",
		path: "/v2/models/{m}/experiment",
		need: "read",
		// Past the token check: a model without a traffic policy has one version and no shadows.
		expect: GUARDED(200),
	},
	{
		method: "GET",
		path: "/v2/models/{m}/monitor",
		need: "read",
		// Past the token check: this server does not monitor drift, and says how to turn it on.
		expect: GUARDED(400),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/explain",
		need: "predict",
		body: PREDICT_BODY,
		// Past the token check: the ONNX logistic regression has no tree structure to explain exactly.
		expect: GUARDED(422),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/versions/1/explain",
		need: "predict",
		body: PREDICT_BODY,
		expect: GUARDED(422),
	},
	{
		method: "POST",
		path: "/v2/models/{m}/feedback",
		need: "predict",
		body: { id: "no-such-request", reward: 1 },
		// Past the token check: the id was never answered here.
		expect: GUARDED(404),
	},
	{
		method: "GET",
		path: "/v2/models/{m}/quality",
		need: "read",
		expect: GUARDED(200),
	},
	{ method: "GET", path: "/metrics", need: "read", expect: GUARDED(200, true) },
	{
		method: "GET",
		path: "/v2/openapi.json",
		need: "read",
		expect: GUARDED(200, true),
	},
	// The dashboard's routes added by ui3 (the server of these rows runs with --ui).
	{
		method: "GET",
		path: "/ui/api/streams",
		need: "read",
		expect: GUARDED(200, true),
	},
	{
		method: "POST",
		path: "/ui/api/rollouts/{m}/production",
		need: "admin",
		body: { to: "2" },
		// Past the token check: the served models are bundle directories, not in the registry.
		expect: GUARDED(404),
	},
	{
		method: "POST",
		path: "/v2/repository/models/{m}/load",
		need: "admin",
		body: {},
		expect: GUARDED(200),
	},
	{
		method: "POST",
		path: "/v2/repository/models/{m}/unload",
		need: "admin",
		body: {},
		expect: GUARDED(200),
	},
];

interface GrpcRow {
	method: string;
	need: Scope | "open";
	/** The request for model `m`. */
	req: (m: string) => object;
	/** Expected gRPC status codes. */
	expect: Expect;
}
const G = grpc.status;
const G_OPEN: Expect = {
	none: G.OK,
	wrong: G.OK,
	expired: G.OK,
	revoked: G.OK,
	scope: G.OK,
	model: G.OK,
	right: G.OK,
	pattern: G.OK,
};
const G_GUARDED = (serverWide = false): Expect => ({
	none: G.UNAUTHENTICATED,
	wrong: G.UNAUTHENTICATED,
	expired: G.UNAUTHENTICATED,
	revoked: G.UNAUTHENTICATED,
	scope: G.PERMISSION_DENIED,
	model: G.PERMISSION_DENIED,
	right: G.OK,
	pattern: serverWide ? G.PERMISSION_DENIED : G.OK,
});
const PB_INFER = (m: string) => ({
	model_name: m,
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2] },
		},
	],
});
const GRPC_TABLE: GrpcRow[] = [
	{ method: "ServerLive", need: "open", req: () => ({}), expect: G_OPEN },
	{ method: "ServerReady", need: "open", req: () => ({}), expect: G_OPEN },
	{
		method: "ServerMetadata",
		need: "read",
		req: () => ({}),
		expect: G_GUARDED(true),
	},
	{
		method: "ModelReady",
		need: "read",
		req: (m) => ({ name: m }),
		expect: G_GUARDED(),
	},
	{
		method: "ModelMetadata",
		need: "read",
		req: (m) => ({ name: m }),
		expect: G_GUARDED(),
	},
	{ method: "ModelInfer", need: "predict", req: PB_INFER, expect: G_GUARDED() },
	{
		method: "ModelStreamInfer",
		need: "predict",
		req: PB_INFER,
		expect: G_GUARDED(),
	},
	{
		method: "RepositoryIndex",
		need: "read",
		req: () => ({}),
		expect: G_GUARDED(true),
	},
	{
		method: "RepositoryModelLoad",
		need: "admin",
		req: (m) => ({ model_name: m }),
		expect: G_GUARDED(),
	},
	{
		method: "RepositoryModelUnload",
		need: "admin",
		req: (m) => ({ model_name: m }),
		expect: G_GUARDED(),
	},
];

/** Every case: which token (by the scopes it lacks or has) and which model. */
type Case = keyof Expect;
const CASES: Case[] = [
	"none",
	"wrong",
	"expired",
	"revoked",
	"scope",
	"model",
	"right",
	"pattern",
];

interface Issued {
	/** Unrestricted token with exactly this scope. */
	only: Record<Scope, string>;
	/** Unrestricted token with every scope but this one. */
	allBut: Record<Scope, string>;
	/** Token with exactly this scope, limited to churn*. */
	churn: Record<Scope, string>;
	expired: string;
	revoked: string;
	ids: Map<string, string>;
}

async function issue(store: ModelStore): Promise<Issued> {
	const ids = new Map<string, string>();
	const make = async (
		scopes: Scope[],
		extra: { models?: string[]; expiresAt?: Date } = {},
	) => {
		const { token, info } = await store.tokens.create({ scopes, ...extra });
		ids.set(token, info.id);
		return token;
	};
	const all: Scope[] = ["predict", "read", "admin"];
	const out: Issued = {
		only: {} as Record<Scope, string>,
		allBut: {} as Record<Scope, string>,
		churn: {} as Record<Scope, string>,
		expired: await make(all, { expiresAt: new Date(Date.now() - 1000) }),
		revoked: await make(all),
		ids,
	};
	for (const s of all) {
		out.only[s] = await make([s]);
		out.allBut[s] = await make(all.filter((x) => x !== s));
		out.churn[s] = await make([s], { models: ["churn*"] });
	}
	await store.tokens.revoke(ids.get(out.revoked) as string);
	return out;
}

/** The token and model of one case for a call needing `need` (open calls use the predict tokens). */
function caseOf(
	c: Case,
	need: Scope | "open",
	t: Issued,
	model: string,
): { token: string | undefined; model: string } {
	const s: Scope = need === "open" ? "predict" : need;
	switch (c) {
		case "none":
			return { token: undefined, model };
		case "wrong":
			return { token: `mls_${"A".repeat(43)}`, model };
		case "expired":
			return { token: t.expired, model };
		case "revoked":
			return { token: t.revoked, model };
		case "scope":
			return { token: t.allBut[s], model };
		case "model":
			return { token: t.churn[s], model: "iris" };
		case "right":
			return { token: t.only[s], model };
		case "pattern":
			return { token: t.churn[s], model };
	}
}

describe("API tokens (registry with tokens, default --auth auto)", () => {
	let dir: string;
	let registry: string;
	let store: ModelStore;
	let tokens: Issued;
	let server: RunningServer;
	let client: InferenceClient;
	const calls: InferOptions[] = [];

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-auth-"));
		registry = `sqlite:${join(dir, "registry.db")}`;
		store = await openRegistry(registry);
		tokens = await issue(store);
		// With the dashboard: its routes have rows in REST_TABLE too.
		server = await start(registry, { ui: true });
		client = new InferenceClient(server.grpcPort);
		// Records what the data plane is called with, to check the caller reaches it.
		const dp = server.dataPlane;
		const infer = dp.infer.bind(dp);
		dp.infer = (name, version, request, opts) => {
			if (opts) calls.push(opts);
			return infer(name, version, request, opts);
		};
	});
	after(async () => {
		client?.close();
		await server?.close();
		await store?.close();
		await rm(dir, { recursive: true, force: true });
	});

	it("REST: every route × every kind of token gets the status its row lists", async () => {
		const wrong: string[] = [];
		for (const row of REST_TABLE)
			for (const c of CASES) {
				const { token, model } = caseOf(
					c,
					row.need,
					tokens,
					row.need === "admin" ? "churn-spare" : "churn",
				);
				const headers: Record<string, string> = {};
				if (token) headers.authorization = `Bearer ${token}`;
				if (row.body !== undefined)
					headers["content-type"] = "application/json";
				const res = await fetch(
					`http://127.0.0.1:${server.httpPort}${row.path.replace("{m}", model)}`,
					{
						method: row.method,
						headers,
						...(row.body !== undefined && { body: JSON.stringify(row.body) }),
					},
				);
				const body = await res.text();
				if (res.status !== row.expect[c])
					wrong.push(
						`${row.method} ${row.path} ${c}: expected ${row.expect[c]}, got ${res.status} ${body.slice(0, 200)}`,
					);
				if (res.status === 401) {
					// Never says which: missing, unknown, expired and revoked read the same.
					assert.equal(
						(JSON.parse(body) as { error: string }).error,
						UNAUTHENTICATED_MESSAGE,
					);
					assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
				}
				if (res.status === 403)
					assert.match(body, /token tok_[0-9a-f]{12} (has scope|is limited)/);
			}
		assert.deepEqual(wrong, []);
	});

	it("gRPC: every RPC × every kind of token gets the status its row lists", async () => {
		const wrong: string[] = [];
		for (const row of GRPC_TABLE)
			for (const c of CASES) {
				const { token, model } = caseOf(
					c,
					row.need,
					tokens,
					row.need === "admin" ? "churn-spare" : "churn",
				);
				const meta: Record<string, string> = {};
				if (token) meta.authorization = `Bearer ${token}`;
				let code: number;
				if (row.method === "ModelStreamInfer")
					code = await streamStatus(client, row.req(model), meta);
				else
					code = await client.call(row.method, row.req(model), {}, meta).then(
						() => G.OK,
						(err: grpc.ServiceError) => {
							if (err.code === G.UNAUTHENTICATED)
								assert.equal(err.details, UNAUTHENTICATED_MESSAGE);
							return err.code;
						},
					);
				if (code !== row.expect[c])
					wrong.push(
						`${row.method} ${c}: expected ${G[row.expect[c]]}, got ${G[code]}`,
					);
			}
		assert.deepEqual(wrong, []);
	});

	it("puts the caller's token id on the data plane call (REST and gRPC)", async () => {
		calls.length = 0;
		const token = tokens.only.predict;
		const res = await fetch(
			`http://127.0.0.1:${server.httpPort}/v2/models/churn/infer`,
			{
				method: "POST",
				headers: {
					authorization: `Bearer ${token}`,
					"content-type": "application/json",
				},
				body: JSON.stringify(INFER_BODY),
			},
		);
		assert.equal(res.status, 200);
		await client.infer(
			PB_INFER("churn"),
			{},
			{ authorization: `Bearer ${token}` },
		);
		const id = tokens.ids.get(token);
		assert.deepEqual(
			calls.map((c) => c.caller),
			[id, id],
		);
	});

	it("records load and unload in the audit log with the token id and the client's address", async () => {
		const token = tokens.only.admin;
		for (const op of ["load", "unload", "load"]) {
			const res = await fetch(
				`http://127.0.0.1:${server.httpPort}/v2/repository/models/churn-spare/${op}`,
				{ method: "POST", headers: { authorization: `Bearer ${token}` } },
			);
			assert.equal(res.status, 200);
		}
		await client.call(
			"RepositoryModelUnload",
			{ model_name: "churn-spare" },
			{},
			{ authorization: `Bearer ${token}` },
		);
		const events = await store.audit.list({ action: "model", limit: 4 });
		assert.deepEqual(
			events.map((e) => [
				e.action,
				e.target,
				e.actor,
				e.source,
				e.detail.transport,
			]),
			[
				[
					"model.unload",
					"churn-spare",
					tokens.ids.get(token),
					"127.0.0.1",
					"grpc",
				],
				[
					"model.load",
					"churn-spare",
					tokens.ids.get(token),
					"127.0.0.1",
					"rest",
				],
				[
					"model.unload",
					"churn-spare",
					tokens.ids.get(token),
					"127.0.0.1",
					"rest",
				],
				[
					"model.load",
					"churn-spare",
					tokens.ids.get(token),
					"127.0.0.1",
					"rest",
				],
			],
		);
	});

	it("a token revoked in the registry stops working on every replica, and a new one starts working", async () => {
		const replica = await start(registry);
		try {
			const { token, info } = await store.tokens.create({ scopes: ["read"] });
			const status = (port: number) =>
				fetch(`http://127.0.0.1:${port}/v2/models/churn`, {
					headers: { authorization: `Bearer ${token}` },
				}).then((r) => r.status);
			const ports = [server.httpPort, replica.httpPort];
			let t0 = performance.now();
			await waitUntil(
				async () =>
					(await Promise.all(ports.map(status))).every((s) => s === 200),
				"the new token to work on both replicas",
			);
			const created = performance.now() - t0;
			await store.tokens.revoke(info.id);
			t0 = performance.now();
			await waitUntil(
				async () =>
					(await Promise.all(ports.map(status))).every((s) => s === 401),
				"the revoked token to fail on both replicas",
			);
			// Measured, not asserted (the machine is shared): the refresh period is 500 ms.
			process.stdout.write(
				`# token created → accepted on 2 replicas: ${created.toFixed(0)} ms; revoked → refused: ${(performance.now() - t0).toFixed(0)} ms\n`,
			);
		} finally {
			await replica.close();
		}
	});

	it("lists every registered REST route and every gRPC method in the scope table", async () => {
		const dp = server.dataPlane;
		const app = createRestServer(dp);
		await app.ready();
		const missing = registeredRoutes(app)
			.map((r) => `${r.method} ${r.url}`)
			.filter((r) => !(r in REST_SCOPES));
		await app.close();
		assert.deepEqual(missing, []);
		const { inferenceService } = await import("../../src/server/grpc/proto.ts");
		const methods = Object.values(inferenceService()).map((m) =>
			(m as { originalName?: string; path: string }).path.split("/").pop(),
		);
		assert.deepEqual(
			methods.filter((m) => m === undefined || !(m in GRPC_SCOPES)),
			[],
		);
		// The tables tested above cover every route and method too.
		const tested = new Set(REST_TABLE.map((r) => `${r.method} ${r.path}`));
		for (const r of registeredRoutes(createRestServer(dp)))
			assert.ok(
				[...tested].some((t) => matches(t, `${r.method} ${r.url}`)),
				`${r.method} ${r.url} has no row in REST_TABLE`,
			);
		assert.deepEqual(
			GRPC_TABLE.map((r) => r.method).sort(),
			Object.keys(GRPC_SCOPES).sort(),
		);
	});
});

/** Whether a tested path (`/v2/models/{m}/versions/1`) is an instance of a fastify route (`/v2/models/:model/versions/:version`). */
function matches(tested: string, route: string): boolean {
	const re = new RegExp(`^${route.replace(/:[a-z]+/g, "[^/]+")}$`);
	return re.test(tested.replace("{m}", "churn"));
}

async function waitUntil(
	fn: () => Promise<boolean>,
	what: string,
	timeoutMs = 10_000,
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await fn())) {
		if (Date.now() > deadline)
			assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 25));
	}
}

/** Sends one request on a ModelStreamInfer stream and maps its answer to a status (errors arrive in error_message). */
async function streamStatus(
	client: InferenceClient,
	req: object,
	meta: Record<string, string>,
): Promise<number> {
	const m = new grpc.Metadata();
	for (const [k, v] of Object.entries(meta)) m.set(k, v);
	const call = (
		client.client as unknown as Record<
			string,
			(
				m: grpc.Metadata,
			) => grpc.ClientDuplexStream<object, { error_message: string }>
		>
	).ModelStreamInfer?.call(client.client, m);
	assert.ok(call);
	const answer = new Promise<{ error_message: string }>((resolve, reject) => {
		call.once("data", resolve);
		call.once("error", reject);
	});
	call.write(req);
	call.end();
	const { error_message } = await answer;
	if (error_message === "") return G.OK;
	if (error_message === UNAUTHENTICATED_MESSAGE) return G.UNAUTHENTICATED;
	if (/^token tok_/.test(error_message)) return G.PERMISSION_DENIED;
	return G.UNKNOWN;
}

describe("API tokens: the default with no token in the registry, --auth off and --auth required", () => {
	let dir: string;
	let registry: string;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-auth-default-"));
		registry = `sqlite:${join(dir, "registry.db")}`;
	});
	after(() => rm(dir, { recursive: true, force: true }));

	const post = (port: number, path: string, body: unknown, token?: string) =>
		fetch(`http://127.0.0.1:${port}${path}`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				...(token && { authorization: `Bearer ${token}` }),
			},
			body: JSON.stringify(body),
		});

	it("no flags, no tokens: predict and read are open, admin is refused with what to do; the first token locks the server", async () => {
		const s = await start(registry);
		const client = new InferenceClient(s.grpcPort);
		try {
			assert.equal(
				(await post(s.httpPort, "/v2/models/churn/infer", INFER_BODY)).status,
				200,
			);
			assert.equal(
				(await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/churn`)).status,
				200,
			);
			const load = await post(
				s.httpPort,
				"/v2/repository/models/churn/load",
				{},
			);
			assert.equal(load.status, 403);
			assert.match(
				((await load.json()) as { error: string }).error,
				/admin endpoints are disabled while no token exists: create an admin token with 'mlship tokens create --scope admin'.*--allow-open-admin/,
			);
			const err = await client
				.call("RepositoryModelUnload", { model_name: "churn" })
				.then(
					() => undefined,
					(e: grpc.ServiceError) => e,
				);
			assert.equal(err?.code, G.PERMISSION_DENIED);
			await client.infer(PB_INFER("churn"));
			// A token presented to an open server is still checked: a wrong one is refused.
			assert.equal(
				(
					await post(
						s.httpPort,
						"/v2/models/churn/infer",
						INFER_BODY,
						`mls_${"B".repeat(43)}`,
					)
				).status,
				401,
			);
			// Creating the first token (anywhere) makes every call need one.
			const store = await openRegistry(registry);
			try {
				const { token } = await store.tokens.create({ scopes: ["admin"] });
				await waitUntil(
					async () =>
						(await post(s.httpPort, "/v2/models/churn/infer", INFER_BODY))
							.status === 401,
					"the server to require tokens",
				);
				assert.equal(
					(
						await post(
							s.httpPort,
							"/v2/repository/models/churn/load",
							{},
							token,
						)
					).status,
					200,
				);
				assert.equal(
					(await fetch(`http://127.0.0.1:${s.httpPort}/v2/health/ready`))
						.status,
					200,
				);
			} finally {
				await store.close();
			}
		} finally {
			client.close();
			await s.close();
		}
	});

	it("no flags, bundle paths and no registry: predict open, admin refused; --allow-open-admin opens admin", async () => {
		const s = await start(undefined);
		try {
			assert.equal(
				(await post(s.httpPort, "/v2/models/churn/predict", PREDICT_BODY))
					.status,
				200,
			);
			assert.equal(
				(await post(s.httpPort, "/v2/repository/models/churn/load", {})).status,
				403,
			);
		} finally {
			await s.close();
		}
		const open = await start(undefined, { allow_open_admin: true });
		try {
			assert.equal(
				(await post(open.httpPort, "/v2/repository/models/churn/load", {}))
					.status,
				200,
			);
		} finally {
			await open.close();
		}
	});

	it("--auth off ignores tokens but keeps admin refused without --allow-open-admin", async () => {
		const s = await start(registry, { auth: "off" });
		try {
			assert.equal(
				(await post(s.httpPort, "/v2/models/churn/infer", INFER_BODY)).status,
				200,
			);
			const load = await post(
				s.httpPort,
				"/v2/repository/models/churn/load",
				{},
			);
			assert.equal(load.status, 403);
			assert.match(
				((await load.json()) as { error: string }).error,
				/--auth off.*--allow-open-admin/,
			);
		} finally {
			await s.close();
		}
	});

	it("--auth required without a registry refuses to start and says what to do", async () => {
		await assert.rejects(
			start(undefined, { auth: "required" }),
			/--auth required needs a registry.*--registry URI/,
		);
	});

	it("--auth required with a registry that has no token: warns at start, and every call but health needs one", async () => {
		const empty = `sqlite:${join(dir, "empty.db")}`;
		const { default: pino } = await import("pino");
		const lines: string[] = [];
		const logger = pino(
			{ level: "warn" },
			{ write: (line: string) => void lines.push(line) },
		);
		const s = await startServer(
			resolveSettings(
				{
					host: "127.0.0.1",
					http_port: 0,
					grpc_port: -1,
					workers: 1,
					auth: "required",
					registry: empty,
					models: [{ name: "churn", source: IRIS }],
				},
				undefined,
				{},
			),
			logger,
		);
		try {
			assert.ok(
				lines.some((l) =>
					l.includes(
						"--auth required and no token exists: create one with 'mlship tokens create",
					),
				),
				lines.join(""),
			);
			assert.equal(
				(await post(s.httpPort, "/v2/models/churn/infer", INFER_BODY)).status,
				401,
			);
			assert.equal(
				(await fetch(`http://127.0.0.1:${s.httpPort}/v2/health/live`)).status,
				200,
			);
		} finally {
			await s.close();
		}
	});
});

describe("docs/security.md", () => {
	it("lists exactly the scope table of src/server/auth/policy.ts", async () => {
		const { readFile } = await import("node:fs/promises");
		const text = await readFile(
			join(import.meta.dirname, "..", "..", "docs", "security.md"),
			"utf8",
		);
		const rows = [
			...text.matchAll(/^\| `([^`]+)` \| (open|read|predict|admin) \|$/gm),
		].map((m) => [m[1], m[2]]);
		assert.deepEqual(rows, [
			...Object.entries(REST_SCOPES),
			...Object.entries(GRPC_SCOPES),
		]);
	});
});

describe("OpenAPI document", () => {
	it("names each operation's scope and the bearer scheme, from the same table", async () => {
		const { openApiDocument } = await import(
			"../../src/server/rest/routes/openapi.ts"
		);
		const s = await start(undefined);
		try {
			const doc = openApiDocument(s.dataPlane) as {
				paths: Record<
					string,
					Record<
						string,
						{
							"x-mlship-scope": string;
							security: unknown[];
							responses: Record<string, unknown>;
						}
					>
				>;
				components: { securitySchemes: { bearer: { scheme: string } } };
			};
			assert.equal(doc.components.securitySchemes.bearer.scheme, "bearer");
			const op = (path: string, method: string) => doc.paths[path]?.[method];
			assert.equal(op("/v2/health/ready", "get")?.["x-mlship-scope"], "open");
			assert.deepEqual(op("/v2/health/ready", "get")?.security, []);
			assert.equal(
				op("/v2/models/{model}/infer", "post")?.["x-mlship-scope"],
				"predict",
			);
			assert.deepEqual(op("/v2/models/{model}/infer", "post")?.security, [
				{ bearer: [] },
			]);
			assert.ok(op("/v2/models/{model}/infer", "post")?.responses["401"]);
			assert.equal(
				op("/v2/models/churn/predict", "post")?.["x-mlship-scope"],
				"predict",
			);
			assert.equal(
				op("/v2/repository/models/{model}/load", "post")?.["x-mlship-scope"],
				"admin",
			);
			assert.equal(op("/metrics", "get")?.["x-mlship-scope"], "read");
		} finally {
			await s.close();
		}
	});
});

describe("tokens never reach the logs", () => {
	it("debug logs with the access log on hold token ids, never secrets (right, wrong and revoked tokens)", async () => {
		const { default: pino } = await import("pino");
		const { Writable } = await import("node:stream");
		const dir = await mkdtemp(join(tmpdir(), "mlship-auth-logs-"));
		const registry = `sqlite:${join(dir, "registry.db")}`;
		const store = await openRegistry(registry);
		const good = await store.tokens.create({ scopes: ["predict", "admin"] });
		const revoked = await store.tokens.create({ scopes: ["predict"] });
		await store.tokens.revoke(revoked.info.id);
		await store.close();
		let out = "";
		const sink = new Writable({
			write(chunk, _enc, done) {
				out += String(chunk);
				done();
			},
		});
		const s = await startServer(
			resolveSettings(
				{
					host: "127.0.0.1",
					http_port: 0,
					grpc_port: 0,
					workers: 1,
					log_level: "trace",
					access_log: true,
					registry,
					models: [{ name: "churn", source: IRIS }],
				},
				undefined,
				{},
			),
			pino({ level: "trace" }, sink),
		);
		const wrong = `mls_${"C".repeat(43)}`;
		try {
			for (const token of [good.token, wrong, revoked.token])
				for (const path of [
					"/v2/models/churn/infer",
					"/v2/repository/models/churn/load",
				])
					await fetch(`http://127.0.0.1:${s.httpPort}${path}`, {
						method: "POST",
						headers: {
							authorization: `Bearer ${token}`,
							"content-type": "application/json",
						},
						body: path.endsWith("infer") ? JSON.stringify(INFER_BODY) : "{}",
					});
		} finally {
			await s.close();
			await rm(dir, { recursive: true, force: true });
		}
		assert.match(
			out,
			new RegExp(good.info.id),
			"the admin action is logged with its token id",
		);
		for (const secret of [good.token, wrong, revoked.token]) {
			assert.ok(!out.includes(secret), "a token secret is in the logs");
			assert.ok(
				!out.includes(secret.slice(4, 20)),
				"part of a token secret is in the logs",
			);
		}
	});
});

describe("API tokens on replicas sharing a PostgreSQL registry", () => {
	it("a token created, then revoked, works and then fails on both replicas", async () => {
		const { startPostgres, createDatabase, uniqueDatabaseName } = await import(
			"../harness/postgres.ts"
		);
		const pg = await startPostgres();
		try {
			const registry = await createDatabase(pg.url, uniqueDatabaseName("auth"));
			const store = await openRegistry(registry);
			const [a, b] = await Promise.all([start(registry), start(registry)]);
			try {
				const { token, info } = await store.tokens.create({
					scopes: ["predict"],
				});
				const statuses = () =>
					Promise.all(
						[a, b].map((s) =>
							fetch(`http://127.0.0.1:${s?.httpPort}/v2/models/churn/infer`, {
								method: "POST",
								headers: {
									authorization: `Bearer ${token}`,
									"content-type": "application/json",
								},
								body: JSON.stringify(INFER_BODY),
							}).then((r) => r.status),
						),
					);
				await waitUntil(
					async () => (await statuses()).every((x) => x === 200),
					"the token to work on both",
				);
				await store.tokens.revoke(info.id);
				await waitUntil(
					async () => (await statuses()).every((x) => x === 401),
					"the token to fail on both",
				);
				const audit = await store.audit.list({ action: "token" });
				assert.deepEqual(
					audit.map((e) => e.action),
					["token.revoke", "token.create"],
				);
			} finally {
				await Promise.all([a?.close(), b?.close()]);
				await store.close();
			}
		} finally {
			await pg.stop();
		}
	});
});
