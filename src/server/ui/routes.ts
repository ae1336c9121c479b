// The web dashboard under /ui: static assets from the package, JSON built from the registry and the servers'
// own APIs, and live per-version figures over server-sent events (one read of each server's /metrics a second).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseDuration } from "../../protocol/duration.ts";
import { MlshipError } from "../../protocol/errors.ts";
import { withActor } from "../../registry/core/audit.ts";
import type { ModelStore, ModelVersion } from "../../registry/types.ts";
import {
	abortRollout,
	pauseRollout,
	promoteRollout,
	resumeRollout,
} from "../../rollout/control.ts";
import {
	ROLLOUT_DEFAULTS,
	type RolloutSettings,
	type SettingNames,
	startRolloutFrom,
} from "../../rollout/spec.ts";
import { actorOf } from "../rest/auth.ts";
import { isObject, jsonBody, kindOf } from "../rest/body.ts";
import { rates, type Snapshot, snapshot } from "./live.ts";
import type { UiServer, UiStream } from "./servers.ts";

/** What the dashboard reads from. */
export interface UiOptions {
	/** The registry (models, aliases, traffic policies); without one the pages say how to name one. */
	store?: ModelStore;
	/** The servers shown (this one first with `serve --ui`). */
	servers: readonly UiServer[];
	/** Stream processors shown on the Servers page (their --metrics-port endpoints). */
	streams?: readonly UiStream[];
	/** Milliseconds between live updates (default 1000). */
	intervalMs?: number;
}

/** Rollout events sent per rollout (the newest). */
export const ROLLOUT_EVENTS = 100;

/** The rollout actions of the experiments page (each `rollout.<action>` in the audit log). */
const ROLLOUT_ACTIONS = {
	pause: (s: ModelStore, m: string, a: string) => pauseRollout(s, m, a, "ui"),
	resume: (s: ModelStore, m: string, a: string) =>
		resumeRollout(s, m, a, Date.now(), "ui"),
	abort: (s: ModelStore, m: string, a: string) => abortRollout(s, m, a, "ui"),
	promote: (s: ModelStore, m: string, a: string) =>
		promoteRollout(s, m, a, "ui"),
} as const;

/** How errors name the start-a-rollout form's fields (the JSON keys it sends). */
const FORM_NAMES: SettingNames = {
	to: "to",
	steps: "steps",
	interval: "interval",
	maxErrorRate: "maxErrorRate",
	maxP99Ms: "maxP99Ms",
	minRequests: "minRequests",
	failures: "failures",
};

/** Longest range of the weights over time. */
const MAX_HISTORY_MS = 90 * 86_400_000;
/** Policy changes sent for the weights over time (the newest). */
const HISTORY_ROWS = 5000;

/** Every alias of a model's own versions and the active versions it could be rolled out to (the start-a-rollout form). */
async function aliasChoices(store: ModelStore) {
	return (await store.aliasTargets())
		.map(({ name, alias, version, active }) => ({
			name,
			alias,
			version,
			versions: active.filter((x) => x !== version),
		}))
		.sort((a, b) =>
			`${a.name}@${a.alias}`.localeCompare(`${b.name}@${b.alias}`),
		);
}

/** Versions sent with full manifests on a model page (the newest); older ones are listed without them. */
export const DETAILED_VERSIONS = 50;

interface Asset {
	body: Buffer;
	type: string;
	etag: string;
}

function asset(path: string, type: string): Asset {
	const body = readFileSync(path);
	const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
	return { body, type, etag };
}

let assets: Map<string, Asset> | undefined;

/** Read once per process: the page, its script and style, and uPlot from its own package. */
function loadAssets(): Map<string, Asset> {
	if (assets) return assets;
	const pub = (f: string) => new URL(`./public/${f}`, import.meta.url);
	const require = createRequire(import.meta.url);
	const uplot = require.resolve("uplot/dist/uPlot.esm.js");
	const js = "text/javascript; charset=utf-8";
	assets = new Map([
		[
			"index.html",
			asset(pub("index.html").pathname, "text/html; charset=utf-8"),
		],
		["app.js", asset(pub("app.js").pathname, js)],
		["app.css", asset(pub("app.css").pathname, "text/css; charset=utf-8")],
		["uplot.js", asset(uplot, js)],
		[
			"uplot.css",
			asset(
				uplot.replace(/uPlot\.esm\.js$/, "uPlot.min.css"),
				"text/css; charset=utf-8",
			),
		],
	]);
	return assets;
}

function sendAsset(req: FastifyRequest, reply: FastifyReply, a: Asset) {
	// Revalidated on every load (cheap 304s): a new mlship version's assets are never served stale.
	reply
		.header("cache-control", "no-cache")
		.header("etag", a.etag)
		.header("x-content-type-options", "nosniff");
	if (req.headers["if-none-match"] === a.etag) return reply.code(304).send();
	return reply.type(a.type).send(a.body);
}

function needStore(store: ModelStore | undefined): ModelStore {
	if (!store)
		throw new MlshipError(
			"MLSHIP_UNAVAILABLE",
			"no registry: start the dashboard with --registry URI (mlship ui --registry sqlite:./registry.db)",
		);
	return store;
}

function serverOf(servers: readonly UiServer[], id: string): UiServer {
	const s = servers.find((x) => x.id === id);
	if (!s)
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`no server '${id.slice(0, 50)}' in this dashboard (known: ${servers.map((x) => x.id).join(", ")})`,
		);
	return s;
}

/** Serving state of each model on each server; unreachable servers are named with their error. */
async function serving(servers: readonly UiServer[], auth: string | undefined) {
	return Promise.all(
		servers.map(async (s) => {
			try {
				return { id: s.id, label: s.label, index: await s.index(auth) };
			} catch (err) {
				return {
					id: s.id,
					label: s.label,
					error: (err as Error).message,
					index: [],
				};
			}
		}),
	);
}

function manifestView(v: ModelVersion) {
	const m = v.manifest as Record<string, unknown>;
	return {
		description: v.description ?? m.description,
		runtime: m.runtime,
		task: m.task,
		signature: m.signature,
		features: m.features,
		labels: m.labels,
		metadata: m.metadata,
		registration: v.metadata,
	};
}

/**
 * Registers `/ui/` (the page), `/ui/assets/*`, and the JSON and event-stream routes under `/ui/api/`.
 * @example registerUi(app, { store, servers: [localServer(dp, audit)] });
 */
export function registerUi(app: FastifyInstance, opts: UiOptions): void {
	const { store, servers } = opts;
	const interval = opts.intervalMs ?? 1000;
	const files = loadAssets();
	// Open event streams end when the server closes (they would hold its close() open otherwise).
	const streams = new Set<() => void>();
	app.addHook("preClose", async () => {
		for (const stop of streams) stop();
	});
	app.get("/ui", (_req, reply) => reply.redirect("/ui/"));
	app.get("/ui/", (req, reply) =>
		sendAsset(req, reply, files.get("index.html") as Asset),
	);
	app.get<{ Params: { file: string } }>("/ui/assets/:file", (req, reply) => {
		const a = files.get(req.params.file);
		if (!a || req.params.file === "index.html")
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`no dashboard asset '${req.params.file.slice(0, 100)}'`,
			);
		return sendAsset(req, reply, a);
	});

	app.get("/ui/api/models", async (req) => {
		const auth = req.headers.authorization;
		const state = await serving(servers, auth);
		if (!store) return { registry: false, models: [], servers: state };
		const all = await store.list({ includeArchived: true });
		const byName = new Map<string, ModelVersion[]>();
		for (const v of all) {
			const list = byName.get(v.name) ?? [];
			list.push(v);
			byName.set(v.name, list);
		}
		const models = [...byName].map(([name, versions]) => {
			const aliases: Record<string, number> = {};
			const entities = new Set<string>();
			let last = "";
			for (const v of versions) {
				for (const a of v.aliases) aliases[a] = v.version;
				if (v.entity !== undefined) entities.add(v.entity);
				if (v.createdAt > last) last = v.createdAt;
			}
			return {
				name,
				versions: versions.length,
				active: versions.filter((v) => v.status === "active").length,
				latest: Math.max(...versions.map((v) => v.version)),
				aliases,
				entities: entities.size,
				lastChange: last,
				serving: state.map((s) => {
					const e = s.index.find((x) => x.name === name);
					return {
						server: s.id,
						state: s.error ? "UNREACHABLE" : (e?.state ?? "NOT SERVED"),
						version: e?.version ?? "",
					};
				}),
			};
		});
		models.sort((a, b) => a.name.localeCompare(b.name));
		return {
			registry: true,
			models,
			servers: state.map(({ id, label, error }) => ({ id, label, error })),
		};
	});

	app.get<{ Params: { model: string } }>(
		"/ui/api/models/:model",
		async (req) => {
			const s = needStore(store);
			const name = req.params.model;
			const versions = (await s.list({ name, includeArchived: true })).sort(
				(a, b) => b.version - a.version,
			);
			if (versions.length === 0)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`no model '${name.slice(0, 100)}' in the registry: register one with 'mlship models register ./bundle --name ${name.slice(0, 100)}'`,
				);
			const aliases: Record<string, number> = {};
			const entities = new Set<string>();
			for (const v of versions) {
				for (const a of v.aliases) aliases[a] = v.version;
				if (v.entity !== undefined) entities.add(v.entity);
			}
			return {
				name,
				aliases,
				routes: await s.routes(name),
				entities: [...entities].sort(),
				versions: versions.map((v, i) => ({
					version: v.version,
					status: v.status,
					createdAt: v.createdAt,
					aliases: v.aliases,
					...(v.entity !== undefined && { entity: v.entity }),
					...(i < DETAILED_VERSIONS && { detail: manifestView(v) }),
				})),
				servers: servers.map((x) => ({ id: x.id, label: x.label })),
			};
		},
	);

	// Drift per feature from the first server that monitors the model (mon-drift's GET /v2/models/:model/monitor);
	// without one, why not, so the page can say what to run.
	app.get<{ Params: { model: string }; Querystring: { since?: string } }>(
		"/ui/api/models/:model/drift",
		async (req) => {
			const since = req.query.since ?? "24h";
			if (!/^\d{1,6}[smhd]$/.test(since))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`since must be a duration such as 15m, 24h or 7d, got '${since.slice(0, 50)}'`,
				);
			const reasons: string[] = [];
			for (const s of servers) {
				try {
					return {
						available: true,
						server: s.id,
						report: await s.monitor(
							req.params.model,
							since,
							req.headers.authorization,
						),
					};
				} catch (err) {
					reasons.push(`${s.label}: ${(err as Error).message}`);
				}
			}
			return { available: false, reasons };
		},
	);

	// Live quality by version from each server that takes feedback for the model (exp-feedback's GET /v2/models/:model/quality).
	app.get<{ Params: { model: string } }>(
		"/ui/api/models/:model/quality",
		async (req) => {
			const results = await Promise.all(
				servers.map(async (s) => {
					try {
						const q = (await s.quality(
							req.params.model,
							req.headers.authorization,
						)) as { versions?: unknown[] };
						return { server: s.id, label: s.label, versions: q.versions ?? [] };
					} catch (err) {
						return {
							server: s.id,
							label: s.label,
							error: (err as Error).message,
							versions: [],
						};
					}
				}),
			);
			return { servers: results };
		},
	);

	app.get<{ Querystring: { since?: string } }>(
		"/ui/api/experiments",
		async (req) => {
			const since = req.query.since ?? "1h";
			const sinceMs = parseDuration(since, "since");
			if (sinceMs > MAX_HISTORY_MS)
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`since is at most 90d, got '${since.slice(0, 50)}'`,
				);
			const now = Date.now();
			const routes = store ? await store.routes() : [];
			const auth = req.headers.authorization;
			const figures = await Promise.all(
				routes.flatMap((r) =>
					servers.map(async (srv) => {
						try {
							return {
								server: srv.id,
								model: r.name,
								info: await srv.experiment(r.name, auth),
							};
						} catch (err) {
							return {
								server: srv.id,
								model: r.name,
								error: (err as Error).message,
							};
						}
					}),
				),
			);
			// Bandit arm totals (rewards by arm, merged over the replicas) and rollouts with their newest events.
			const arms = store ? await store.armStats() : [];
			const rollouts = store
				? await Promise.all(
						(await store.rollouts()).map(async (r) => ({
							name: r.name,
							alias: r.alias,
							from: r.from,
							to: r.to,
							state: r.state,
							steps: r.steps,
							step: r.step,
							failed: r.failed,
							failures: r.failures,
							intervalMs: r.intervalMs,
							maxErrorRate: r.maxErrorRate,
							maxP99Ms: r.maxP99Ms ?? null,
							minRequests: r.minRequests,
							startedAt: r.startedAt,
							updatedAt: r.updatedAt,
							nextCheckAt: r.nextCheckAt,
							// This rollout's own events (the alias's log also holds earlier rollouts').
							events: (
								await store.rolloutEvents(r.name, r.alias, ROLLOUT_EVENTS)
							).filter((e) => e.at >= r.startedAt),
						})),
					)
				: [];
			// What each alias was configured to serve over the range (the weights over time), from the registry's history.
			const history = store
				? await store.trafficHistory({
						since: now - sinceMs,
						limit: HISTORY_ROWS,
					})
				: [];
			return {
				registry: store !== undefined,
				routes,
				figures,
				arms,
				rollouts,
				since,
				now,
				history,
				rolloutDefaults: ROLLOUT_DEFAULTS,
				aliases: store ? await aliasChoices(store) : [],
			};
		},
	);

	// Start a rollout (admin scope): the same settings, defaults and registry call as `mlship rollout start`, made as
	// the caller (audited as `rollout.started` in the rollout's transaction).
	app.post<{ Params: { model: string; alias: string } }>(
		"/ui/api/rollouts/:model/:alias",
		async (req) => {
			const s = needStore(store);
			const { model, alias } = req.params;
			const body = jsonBody(req.body, req.headers);
			if (!isObject(body))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`start a rollout with a JSON object such as {"to": "4", "steps": "5,25,50,100"}, got ${kindOf(body)}`,
				);
			const settings: Record<string, string> = {};
			for (const [k, v] of Object.entries(body)) {
				if (!Object.hasOwn(FORM_NAMES, k))
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`unknown rollout setting '${k.slice(0, 50)}': use ${Object.keys(FORM_NAMES).join(", ")}`,
					);
				if (v === null || v === undefined) continue;
				if (typeof v !== "string" && typeof v !== "number")
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`rollout setting '${k}' must be text or a number`,
					);
				settings[k] = String(v);
			}
			if (settings.to === undefined)
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					'say which version to roll out: {"to": VERSION}',
				);
			const r = await withActor(actorOf(req), () =>
				startRolloutFrom(
					s,
					model,
					alias,
					settings as unknown as RolloutSettings,
					FORM_NAMES,
				),
			);
			const { name, from, to, state, steps } = r;
			return { name, alias: r.alias, from, to, state, steps };
		},
	);

	// Rollout actions (admin scope): the registry change is made as the caller, and audited as `rollout.<action>`
	// (abort and promote also change the alias's route or the alias itself, audited by the registry).
	app.post<{ Params: { model: string; alias: string; action: string } }>(
		"/ui/api/rollouts/:model/:alias/:action",
		async (req) => {
			const s = needStore(store);
			const { model, alias, action } = req.params;
			if (!Object.hasOwn(ROLLOUT_ACTIONS, action))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`unknown rollout action '${action.slice(0, 50)}': use pause, resume, abort or promote`,
				);
			const fn = ROLLOUT_ACTIONS[action as keyof typeof ROLLOUT_ACTIONS];
			return withActor(actorOf(req), async () => {
				const r = await fn(s, model, alias);
				await s.audit.record({
					action: `rollout.${action}`,
					target: `${model}@${alias}`,
					detail: { transport: "ui", state: r.state, to: r.to, from: r.from },
				});
				return { name: r.name, alias: r.alias, state: r.state };
			});
		},
	);

	app.get("/ui/api/servers", async (req) => {
		const auth = req.headers.authorization;
		return Promise.all(
			servers.map(async (s) => {
				const ready = await s.ready(auth);
				let models: unknown[] = [];
				let snap: Snapshot | undefined;
				let error: string | undefined;
				try {
					models = await s.index(auth);
					snap = snapshot(await s.metrics(auth), Date.now());
				} catch (err) {
					error = (err as Error).message;
				}
				return {
					id: s.id,
					label: s.label,
					ready,
					models,
					loadedBytes: snap?.loadedBytes ?? null,
					residentBytes: snap?.residentBytes ?? null,
					registryAvailable: snap?.registryAvailable ?? null,
					...(error !== undefined && { error }),
				};
			}),
		);
	});

	// Stream processors: each one's /status (model, source and sink, counts, last message), or why it is unreachable.
	app.get("/ui/api/streams", async () =>
		Promise.all(
			(opts.streams ?? []).map(async (t) => {
				try {
					return { id: t.id, label: t.label, status: await t.status() };
				} catch (err) {
					return { id: t.id, label: t.label, error: (err as Error).message };
				}
			}),
		),
	);

	app.post<{ Params: { server: string; model: string } }>(
		"/ui/api/servers/:server/models/:model/unload",
		async (req) => {
			const s = serverOf(servers, req.params.server);
			await s.unload(req.params.model, req.headers.authorization, actorOf(req));
			return {};
		},
	);

	app.get<{ Params: { model: string } }>(
		"/ui/api/models/:model/live",
		(req, reply) => {
			const model = req.params.model;
			const auth = req.headers.authorization;
			reply.hijack();
			const res = reply.raw;
			res.writeHead(200, {
				"content-type": "text/event-stream; charset=utf-8",
				"cache-control": "no-store",
				connection: "keep-alive",
				"x-accel-buffering": "no",
			});
			res.write("retry: 1000\n\n");
			const prev = new Map<string, Snapshot>();
			let closed = false;
			let timer: NodeJS.Timeout | undefined;
			const tick = async () => {
				const t = Date.now();
				const out = await Promise.all(
					servers.map(async (s) => {
						try {
							const snap = snapshot(await s.metrics(auth), Date.now());
							const r = rates(prev.get(s.id), snap).filter(
								(x) => x.model === model,
							);
							prev.set(s.id, snap);
							return { id: s.id, label: s.label, versions: r };
						} catch (err) {
							prev.delete(s.id);
							return {
								id: s.id,
								label: s.label,
								error: (err as Error).message,
								versions: [],
							};
						}
					}),
				);
				if (closed) return;
				res.write(`data: ${JSON.stringify({ t, servers: out })}\n\n`);
				timer = setTimeout(() => void tick().catch(stop), interval);
			};
			const stop = () => {
				closed = true;
				streams.delete(stop);
				clearTimeout(timer);
				if (!res.writableEnded) res.end();
			};
			streams.add(stop);
			req.raw.on("close", stop);
			res.on("close", stop);
			void tick().catch(stop);
		},
	);
}
