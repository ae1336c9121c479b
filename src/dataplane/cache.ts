// The model cache: what is loaded. Load (registry or disk), warm up, swap in, drain the old version, evict least recently used.
import { type Bundle, readBundle } from "../bundle/bundle.ts";
import type { StoredRoute } from "../experiments/policy.ts";
import { policyVersions } from "../experiments/policy.ts";
import {
	counterSeries,
	gaugeSeries,
	histogramSeries,
} from "../monitor/fast-series.ts";
import type { Metrics } from "../monitor/metrics.ts";
import { MlshipError, toMlshipError } from "../protocol/errors.ts";
import { didYouMean, listNames } from "../protocol/suggest.ts";
import { tracer } from "../protocol/trace.ts";
import { type ModelStore, parseRef } from "../registry/types.ts";
import { runtime } from "../runtime/registry.ts";
import type {
	LoadOptions,
	SharedBytes,
	SharedExecutor,
} from "../runtime/types.ts";
import {
	type DataPlaneOptions,
	type Entry,
	isRegistryRef,
	label,
	type ModelEvent,
	type RouteState,
	type Served,
} from "./entry.ts";
import { loadInstance } from "./instance.ts";

/** How long a member that failed to load answers with that failure before it is tried again. */
const RETRY_FAILED_MS = 5_000;

/**
 * The loaded instances of a data plane's entries. A reload loads the new version, warms it up, swaps it in,
 * then lets the old one finish its in-flight requests and unloads it. Limits (max_loaded_models,
 * memory_budget) unload the least recently used; an evicted model loads again on its next request.
 */
export class ModelCache {
	readonly #opts: DataPlaneOptions;
	readonly #metrics: Metrics;
	/** The named models; family members hang off their family (see `all`). */
	readonly entries = new Map<string, Entry>();
	closing = false;
	#storeOpen: Promise<ModelStore> | undefined;
	#storeNow: ModelStore | undefined;
	/** Worker threads per runtime, shared by every model that does not size its own pool (started on first load). */
	readonly #shared = new Map<string, Promise<SharedExecutor>>();
	/**
	 * What the last eviction walk counted (instances, estimated bytes, users of each shared session), carried
	 * forward by loads that only added instances since; undefined when something else may have changed it.
	 */
	#tally:
		| { count: number; bytes: number; users: Map<string, number> }
		| undefined;
	/** The last walk's eviction candidates, least recently used first, from `next` on, and when it walked. */
	#lru: { at: number; list: Entry[]; next: number } | undefined;

	constructor(opts: DataPlaneOptions, metrics: Metrics) {
		this.#opts = opts;
		this.#metrics = metrics;
	}

	/** The entry of a named model; MLSHIP_MODEL_NOT_FOUND for others. */
	entry(name: string): Entry {
		const e = this.entries.get(name);
		if (!e)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`unknown model '${name}'${didYouMean(name, this.entries.keys())} (serving: ${listNames(this.entries.keys())})`,
			);
		return e;
	}

	/** Every entry: the named models and the loaded (or loading) members of families. */
	*all(): Generator<Entry> {
		for (const e of this.entries.values()) {
			yield e;
			if (e.family) yield* e.family.members.values();
		}
	}

	/** The registry, opened once (registry references only). */
	store(): Promise<ModelStore> {
		const reg = this.#opts.registry;
		if (typeof reg === "object") return Promise.resolve(reg);
		this.#storeOpen ??= import("../registry/open.ts")
			.then((m) => m.openRegistry(reg))
			.then((store) => {
				this.#storeNow = store;
				return store;
			});
		return this.#storeOpen;
	}

	/** The registry's health, once it is open. */
	storeHealth(): { available: boolean; reason?: string } | undefined {
		const reg = this.#opts.registry;
		return (typeof reg === "object" ? reg : this.#storeNow)?.health();
	}

	/** The serving instance of an entry, or a typed error saying why there is none. */
	served(e: Entry, version: string | undefined): Served {
		const s = e.served;
		const name = label(e);
		if (!s || e.state !== "READY")
			throw new MlshipError(
				"MLSHIP_UNAVAILABLE",
				`model '${name}' is not ready (state ${e.state}${e.reason ? `: ${e.reason}` : ""})`,
			);
		if (version !== undefined && version !== s.version) {
			const arm = e.route?.arms.get(version);
			if (arm) return arm;
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' has no version '${version}' (serving: ${e.route ? [...e.route.arms.keys()].join(", ") : s.version})`,
			);
		}
		return s;
	}

	/**
	 * What an entry should serve now, from the registry: the version its reference resolves to and, for an alias
	 * with a traffic policy, that policy; `key` differs whenever a reload is needed.
	 */
	async target(
		e: Entry,
	): Promise<{ version: number; route?: StoredRoute; key: string }> {
		const store = await this.store();
		const version = (await store.get(e.spec.source)).version;
		const ref = parseRef(e.spec.source);
		const route =
			ref.alias !== undefined && e.entity === undefined && !e.family
				? await store.route(ref.name, ref.alias)
				: undefined;
		if (!route) return { version, key: String(version) };
		return {
			version,
			route,
			key: `${version}|${JSON.stringify(route.policy)}`,
		};
	}

	/** The `target` key of what an entry serves now (undefined: nothing loaded). */
	servingKey(e: Entry): string | undefined {
		return e.route?.key ?? e.served?.version;
	}

	/** What an entry serves, for events and logs: its version, or its policy's versions (`1+2+3`). */
	#serving(e: Entry): string | undefined {
		return e.route ? [...e.route.arms.keys()].join("+") : e.served?.version;
	}

	/**
	 * The serving instance of an entry for a request: loads a lazy, evicted or family-member model on first use
	 * (concurrent first requests share one load) and marks it recently used.
	 */
	async use(e: Entry, version: string | undefined): Promise<Served> {
		if (this.#mustLoad(e)) {
			if (e.failedAt !== undefined && Date.now() - e.failedAt < RETRY_FAILED_MS)
				throw new MlshipError(
					"MLSHIP_UNAVAILABLE",
					`model '${label(e)}' failed to load: ${e.reason}`,
				);
			await this.load(e);
		}
		e.lastUsed = performance.now();
		return this.served(e, version);
	}

	/**
	 * `use` without a promise when nothing has to load (every request to a loaded model: one async call and one
	 * await fewer per request); undefined when the caller must `use` (a lazy, evicted or family-member model).
	 */
	useNow(e: Entry, version: string | undefined): Served | undefined {
		if (this.#mustLoad(e)) return undefined;
		e.lastUsed = performance.now();
		return this.served(e, version);
	}

	#mustLoad(e: Entry): boolean {
		return (
			!e.served &&
			(this.#opts.lazy || e.entity !== undefined || e.evicted === true) &&
			!this.closing
		);
	}

	/** Loads an entry, or reloads it: the new instance is loaded first, then swapped in, then the old one drains. */
	load(e: Entry): Promise<void> {
		if (this.closing)
			return Promise.reject(
				new MlshipError("MLSHIP_UNAVAILABLE", "the server is shutting down"),
			);
		if (e.loading) return e.loading;
		if (!e.served) e.state = "LOADING";
		const p = (async () => {
			// Traced (when on): the load (read, start, warm up) with the swap and the old version's drain as a child.
			const span = tracer()?.start("model load", {
				attributes: { "mlship.model": label(e) },
			});
			try {
				const before = instancesOf(e);
				const was = this.#serving(e);
				const { served: next, route } = await this.#openAll(e, before);
				const old = e.served;
				span?.set("mlship.version", next.version);
				const swap =
					old &&
					span?.child("model swap", { "mlship.from_version": old.version });
				e.served = next;
				if (route) e.route = route;
				else delete e.route;
				e.state = "READY";
				e.reason = "";
				delete e.failedAt;
				delete e.evicted;
				this.#metrics.loads.inc({ model: e.spec.name });
				e.lastUsed = performance.now();
				// Counts what is loaded (the metrics) and evicts past the limits; a first load only adds instances.
				void this.#evict(e, before.length === 0 ? instancesOf(e) : undefined);
				// Emitted at the swap itself: from here on new requests get the new version.
				if (old)
					this.emit({
						type: "updated",
						model: label(e),
						from: was,
						to: this.#serving(e),
					});
				// Versions the new policy still uses keep serving; the others drain and unload.
				const kept = new Set(instancesOf(e));
				await Promise.all(
					before.filter((s) => !kept.has(s)).map((s) => s.model.close()),
				);
				swap?.end();
			} catch (err) {
				const m = toMlshipError(err);
				span?.fail(m);
				if (!e.served) {
					e.state = "UNAVAILABLE";
					e.failedAt = Date.now();
				}
				e.reason = m.message;
				throw m;
			} finally {
				e.loading = undefined;
				span?.end();
			}
		})();
		e.loading = p;
		return p;
	}

	emit(ev: ModelEvent): void {
		this.#opts.onEvent?.(ev);
	}

	async #bundle(
		e: Entry,
		pin?: number,
	): Promise<{ bundle: Bundle; version: string }> {
		const source = e.spec.source;
		// A family member always comes from the registry: no look for a directory of that name (a failed stat per
		// cold load, with its error object).
		if (
			pin === undefined &&
			e.entity === undefined &&
			(!isRegistryRef(source) || (await exists(source)))
		)
			return { bundle: await readBundle(source), version: "1" };
		const store = await this.store();
		const v = await store.get(
			pin === undefined
				? source
				: { name: parseRef(source).name, version: pin },
		);
		return { bundle: await store.openBundle(v), version: String(v.version) };
	}

	/**
	 * Opens what an entry should serve: its one version, or, for an alias with a traffic policy, every version the
	 * policy names (reusing the instances in `current` of versions already loaded). All load or none.
	 */
	async #openAll(
		e: Entry,
		current: readonly Served[],
	): Promise<{ served: Served; route?: RouteState }> {
		const source = e.spec.source;
		const routable =
			e.entity === undefined &&
			!e.family &&
			isRegistryRef(source) &&
			parseRef(source).alias !== undefined &&
			!(await exists(source));
		const t = routable ? await this.target(e) : undefined;
		if (!t?.route) {
			const reuse = current.find((s) => s.version === t?.key);
			return {
				served: reuse && current.length > 1 ? reuse : await this.#open(e),
			};
		}
		const versions = policyVersions(t.route.policy, t.version);
		const have = new Map(current.map((s) => [s.version, s]));
		const opened = await Promise.allSettled(
			versions.map(async (v) => have.get(String(v)) ?? this.#open(e, v)),
		);
		const failed = opened.find((r) => r.status === "rejected");
		if (failed) {
			await Promise.all(
				opened.map((r) =>
					r.status === "fulfilled" && !have.has(r.value.version)
						? r.value.model.close()
						: undefined,
				),
			);
			throw failed.reason;
		}
		const arms = new Map<string, Served>();
		for (const r of opened)
			if (r.status === "fulfilled") arms.set(r.value.version, r.value);
		const shadows = (t.route.policy.shadow ?? []).map((sh) => ({
			served: arms.get(String(sh.version)) as Served,
			percent: sh.percent,
		}));
		return {
			served: arms.values().next().value as Served,
			route: { route: t.route, key: t.key, arms, shadows },
		};
	}

	async #open(e: Entry, pin?: number): Promise<Served> {
		const spec = e.spec;
		const load: LoadOptions = { ...this.#opts.load };
		const { bundle, version } = await this.#bundle(e, pin);
		// Every model runs on its runtime's shared worker threads (one per core ÷ intra-op threads), so a hot swap
		// or a lazy load adds sessions, not threads; a bundle that sizes its own pool keeps a dedicated one.
		const ex = bundle.manifest.executor;
		if (ex?.workers === undefined && ex?.intra_op_threads === undefined) {
			const shared = await this.#sharedFor(bundle.manifest.runtime, load);
			if (shared) load.shared = shared;
		}
		// Members of a family share one label value: thousands of entity versions must not become series.
		const metricVersion = e.entity !== undefined ? "entity" : version;
		// Series are found once and updated in place: prom-client hashes label objects on every call otherwise
		// (even through a labelled child), several times per request.
		const m = this.#metrics;
		const series = { model: spec.name, version: metricVersion };
		const batchSize = { observe: histogramSeries(m.batchSize, series) };
		const computeTime = { observe: histogramSeries(m.computeTime, series) };
		const queueTime = { observe: histogramSeries(m.queueTime, series) };
		const queueDepth = { set: gaugeSeries(m.queueDepth, series) };
		const ok = {
			inc: counterSeries(m.requests, { ...series, outcome: "ok" }),
		};
		const latency = { observe: histogramSeries(m.latency, series) };
		const extra = this.#opts.observer;
		const model = await loadInstance(bundle, {
			mode: "auto",
			...load,
			name: spec.name,
			version: Number(version),
			batching: this.#opts.batching,
			batchingOverride: this.#opts.batchingOverride,
			observer: {
				batch: (rows, secs) => {
					batchSize.observe(rows);
					computeTime.observe(secs);
					extra?.batch?.(rows, secs);
				},
				request: (secs) => {
					queueTime.observe(secs);
					extra?.request?.(secs);
				},
				depth: (n) => {
					queueDepth.set(n);
					extra?.depth?.(n);
				},
				done: (outcome, secs) => {
					extra?.done?.(outcome, secs);
					if (outcome === "ok") {
						ok.inc();
						latency.observe(secs);
					} else
						m.requests.inc({
							model: spec.name,
							version: metricVersion,
							outcome,
						});
				},
			},
		});
		let warmupProblem: string | undefined;
		try {
			warmupProblem = await model.warmUp();
		} catch (err) {
			await model.close();
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`version ${version} of '${label(e)}' failed its warm-up: ${toMlshipError(err).message}`,
				{ cause: err },
			);
		}
		if (warmupProblem !== undefined) {
			m.warmupFailures.inc({ model: spec.name });
			process.emitWarning(
				`mlship: version ${version} of '${label(e)}' serves, but its warm-up on a synthesized row failed: ${warmupProblem}`,
			);
		}
		for (const hook of this.#opts.hooks ?? []) model.addHook(hook);
		return { model, version, metricVersion };
	}

	/** The shared worker threads of a runtime (undefined: it has none), started once; a failed start is retried. */
	async #sharedFor(
		name: string,
		load: LoadOptions,
	): Promise<SharedExecutor | undefined> {
		const rt = await runtime(name);
		if (!rt.startShared) return undefined;
		let p = this.#shared.get(name);
		if (!p) {
			p = rt.startShared(load.workers, load.intraOpThreads ?? 1);
			p.catch(() => this.#shared.delete(name)); // the next load tries again
			this.#shared.set(name, p);
		}
		return p;
	}

	#countLoaded(): number {
		let n = 0;
		for (const e of this.all()) n += instancesOf(e).length;
		return n;
	}

	/** Estimated memory of every loaded instance; sessions byte-identical artifacts share are counted once. */
	loadedBytes(): number {
		const instances: Served[] = [];
		for (const e of this.all()) instances.push(...instancesOf(e));
		return estimatedBytes(instances.map((s) => s.model));
	}

	/**
	 * Unloads least recently used models while more than maxLoadedModels are loaded or their estimated memory
	 * passes memoryBudget (never `keep`, never one that is loading). Evicted family members are forgotten.
	 * One pass over the entries counts the instances, their estimated bytes (a shared session once, with how many
	 * instances use it) and the candidates; each eviction then updates the totals instead of recounting, so a cold
	 * load with 10,000 models loaded costs one walk of them, not several per evicted model.
	 */
	async #evict(keep: Entry, added?: readonly Served[]): Promise<void> {
		const max = this.#opts.maxLoadedModels ?? 0;
		const budget = this.#opts.memoryBudget ?? 0;
		let count = 0;
		let bytes = 0;
		/** Instances using each shared session. */
		let users = new Map<string, number>();
		const candidates: Entry[] = [];
		const over = () =>
			(max > 0 && count > max) || (budget > 0 && bytes > budget);
		const add = (s: Served) => {
			count++;
			const { shared } = s.model;
			const u = shared ? (users.get(shared.key) ?? 0) : 0;
			bytes += u > 0 ? s.model.bytes - (shared?.bytes ?? 0) : s.model.bytes;
			if (shared) users.set(shared.key, u + 1);
		};
		const visit = (e: Entry) => {
			// instancesOf without its array: this runs on every load, over every loaded member.
			if (e.route) for (const s of e.route.arms.values()) add(s);
			else if (e.served) add(e.served);
			if (e !== keep && e.served && !e.loading) candidates.push(e);
		};
		const retiring: Promise<void>[] = [];
		const drop = (lru: Entry) => {
			const all = instancesOf(lru);
			lru.served = undefined;
			delete lru.route;
			lru.state = "UNLOADED";
			lru.evicted = true;
			lru.reason = `evicted (least recently used, ${max > 0 && count > max ? "max_loaded_models" : "memory_budget"}); loads again on its next request`;
			if (lru.entity !== undefined)
				this.entries.get(lru.spec.name)?.family?.members.delete(lru.entity);
			this.#metrics.evictions.inc({ model: lru.spec.name });
			for (const s of all) {
				retiring.push(s.model.close());
				count--;
				const { shared } = s.model;
				if (!shared) bytes -= s.model.bytes;
				else {
					// A shared session is freed only with its last user.
					const u = (users.get(shared.key) ?? 1) - 1;
					users.set(shared.key, u);
					bytes -= s.model.bytes - (u === 0 ? 0 : shared.bytes);
				}
			}
		};
		// A load that only added instances: the last walk's totals plus these, no walk (a walk visits every loaded
		// member: with 10,000 loaded it was most of a cold load's CPU on the main thread). Past a limit, the least
		// recently used go in the last walk's order: members not used since that walk are still in LRU order, and
		// any member used or loaded since is more recent than all of them.
		const t = this.#tally;
		if (added && t) {
			({ count, bytes, users } = t);
			for (const s of added) add(s);
			const order = this.#lru;
			while (over() && order && order.next < order.list.length) {
				const c = order.list[order.next++] as Entry;
				if (c !== keep && c.served && !c.loading && c.lastUsed <= order.at)
					drop(c);
			}
			if (!over()) {
				this.#tally = { count, bytes, users };
				this.#metrics.loaded.set(count);
				this.#metrics.loadedBytes.set(bytes);
				await Promise.all(retiring);
				return;
			}
			// still over (the order ran out): walk from scratch (the walk rewrites the tally and the order)
			count = 0;
			bytes = 0;
			users = new Map();
		}
		for (const e of this.entries.values()) {
			visit(e);
			if (e.family) for (const m of e.family.members.values()) visit(m);
		}
		candidates.sort((a, b) => a.lastUsed - b.lastUsed);
		let next = 0;
		while (over() && next < candidates.length)
			drop(candidates[next++] as Entry);
		this.#lru = { at: performance.now(), list: candidates, next };
		this.#tally = { count, bytes, users };
		this.#metrics.loaded.set(count);
		this.#metrics.loadedBytes.set(bytes);
		await Promise.all(retiring);
	}

	/** Unloads a named model and its family's members; in-flight requests finish first. */
	async unload(name: string): Promise<void> {
		const e = this.entry(name);
		const all = [e, ...(e.family?.members.values() ?? [])];
		e.family?.members.clear();
		await Promise.all(
			all.map(async (x) => {
				if (x.loading) await x.loading.catch(() => {});
				const all = instancesOf(x);
				x.served = undefined;
				delete x.route;
				x.state = "UNLOADED";
				x.reason = "unloaded by request";
				delete x.evicted;
				await Promise.all(all.map((s) => s.model.close()));
			}),
		);
		this.#tally = undefined; // the next load walks again
		this.#lru = undefined;
		this.#metrics.loaded.set(this.#countLoaded());
	}

	/** Stops loading, drains and unloads everything, stops shared threads, closes the registry it opened. */
	async close(): Promise<void> {
		this.closing = true;
		await Promise.all(
			[...this.all()].map(async (e) => {
				if (e.loading) await e.loading.catch(() => {});
				const all = instancesOf(e);
				e.served = undefined;
				delete e.route;
				e.state = "UNLOADED";
				await Promise.all(all.map((s) => s.model.close()));
			}),
		);
		for (const p of this.#shared.values())
			await (await p.catch(() => undefined))?.close();
		if (this.#storeOpen) await (await this.#storeOpen).close();
	}
}

/**
 * Estimated bytes of these models, counting the part they share with others of the same key (LoadedModel.shared:
 * one session for byte-identical artifacts) once.
 * @example estimatedBytes([a, b]) // a.bytes + b.bytes - shared part when a and b share a session
 */
export function estimatedBytes(
	models: Iterable<{ bytes: number; shared?: SharedBytes | undefined }>,
): number {
	const seen = new Set<string>();
	let n = 0;
	for (const m of models) {
		if (m.shared && seen.has(m.shared.key)) n += m.bytes - m.shared.bytes;
		else n += m.bytes;
		if (m.shared) seen.add(m.shared.key);
	}
	return n;
}

/** Every instance an entry holds: its policy's versions, or its one served version. */
function instancesOf(e: Entry): Served[] {
	if (e.route) return [...e.route.arms.values()];
	return e.served ? [e.served] : [];
}

async function exists(p: string): Promise<boolean> {
	const { stat } = await import("node:fs/promises");
	return stat(p).then(
		() => true,
		() => false,
	);
}
