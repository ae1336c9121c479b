// The registry follower: the registry's change feed → the model cache (hot updates) and the families' entity indexes.
import type { Metrics } from "../monitor/metrics.ts";
import { toMlshipError } from "../protocol/errors.ts";
import { parseRef } from "../registry/types.ts";
import type { ModelCache } from "./cache.ts";
import type { EntityRouter } from "./entities.ts";
import { type Entry, isRegistryRef, label } from "./entry.ts";

/**
 * Follows the registry: when a served reference (an alias, or a bare name = newest version) resolves to another
 * version, that version is loaded, warmed up and swapped in; the old one finishes its in-flight requests and is
 * unloaded. A version that fails to load or warm up is not swapped in. Families also keep their entity index
 * current and hot-update loaded members.
 */
export class RegistryFollower {
	readonly #cache: ModelCache;
	readonly #router: EntityRouter;
	readonly #metrics: Metrics;
	#unwatch: (() => void) | undefined;
	/** Entries with a registry refresh running, and whether another change arrived meanwhile. */
	readonly #refreshing = new Map<Entry, boolean>();

	constructor(cache: ModelCache, router: EntityRouter, metrics: Metrics) {
		this.#cache = cache;
		this.#router = router;
		this.#metrics = metrics;
	}

	/** Starts following (once); resolves when the families' entity indexes are read. */
	async start(): Promise<void> {
		const refs = [...this.#cache.entries.values()].filter((e) =>
			isRegistryRef(e.spec.source),
		);
		if (refs.length === 0 || this.#unwatch) return;
		const store = await this.#cache.store();
		this.#unwatch = store.watch((ev) => {
			for (const e of refs) {
				const f = e.family;
				const registryName = f?.registryName ?? parseRef(e.spec.source).name;
				if (registryName !== ev.name) continue;
				if (f && ev.entity !== undefined) {
					void this.#router
						.entityChanged(f, ev.entity, ev.type, ev.version)
						.then((m) => {
							if (!m) return;
							// A load in progress may be reading the old version: check again once it is done.
							if (m.loading)
								void m.loading.then(
									() => this.refresh(m),
									() => {},
								);
							else void this.refresh(m);
						});
					// Only an alias moved onto an entity version can change what the default means.
					if (ev.alias === undefined) continue;
				}
				if (f && ev.type === "deleted" && ev.version === undefined) {
					f.index = undefined;
					for (const m of f.members.values()) void this.refresh(m);
				}
				void this.refresh(e);
			}
		});
		await Promise.all(
			refs.map((e) =>
				e.family ? this.#router.index(e.family).catch(() => {}) : undefined,
			),
		);
	}

	/** Reloads an entry when its reference now resolves to another version (changes during a refresh are not lost). */
	async refresh(e: Entry): Promise<void> {
		if (this.#refreshing.has(e)) {
			this.#refreshing.set(e, true);
			return;
		}
		const cache = this.#cache;
		const name = label(e);
		this.#refreshing.set(e, false);
		try {
			do {
				this.#refreshing.set(e, false);
				if (cache.closing || e.state === "UNLOADED") return;
				const from = e.served?.version;
				let to: string;
				try {
					// A version and, for an alias with a traffic policy, the policy: either changing reloads.
					const t = await cache.target(e);
					if (t.key === cache.servingKey(e)) continue;
					to = String(t.version);
				} catch (err) {
					e.reason = `registry: ${toMlshipError(err).message}; still serving version ${from ?? "none"}`;
					cache.emit({
						type: "update_failed",
						model: name,
						from,
						error: e.reason,
					});
					continue;
				}
				try {
					await cache.load(e);
					this.#metrics.updates.inc({ model: e.spec.name, outcome: "ok" });
				} catch (err) {
					this.#metrics.updates.inc({ model: e.spec.name, outcome: "failed" });
					e.reason = `update to version ${to} failed: ${toMlshipError(err).message}; still serving version ${from ?? "none"}`;
					cache.emit({
						type: "update_failed",
						model: name,
						from,
						to,
						error: e.reason,
					});
				}
			} while (this.#refreshing.get(e));
		} finally {
			this.#refreshing.delete(e);
		}
	}

	stop(): void {
		this.#unwatch?.();
	}
}
