// The rollout agent every serving replica runs: it publishes its per-version request totals to the registry and,
// holding a rollout's lease, checks the new version and advances, promotes or rolls back the alias's split.
import { hostname } from "node:os";
import { MlshipError } from "../protocol/errors.ts";
import { withActor } from "../registry/core/audit.ts";
import {
	type ModelStore,
	ROLLOUT_LATENCY_BUCKETS_MS,
	type Rollout,
	type VersionTotals,
} from "../registry/types.ts";

export interface RolloutAgentOptions {
	/** The registry (opened on first use). */
	store: () => Promise<ModelStore>;
	/** This replica's cumulative totals per registry name and version (from its request metrics). */
	totals: () => Promise<
		{ name: string; version: number; totals: VersionTotals }[]
	>;
	/** This replica's name in leases and published stats. Default host-pid-random. */
	replica?: string;
	/** How often it publishes and checks, ms. Default 1000. */
	tickMs?: number;
	/** How long a lease lasts without renewal, ms. Default 10 × tickMs (a dead driver is replaced after it). */
	leaseMs?: number;
	/** Clock, ms since the epoch. */
	now?: () => number;
	log?: (
		level: "info" | "warn" | "error",
		msg: string,
		fields?: object,
	) => void;
}

/** A check window: what `to` did since the baseline. */
export interface CheckFigures {
	requests: number;
	errors: number;
	errorRate: number;
	/** Upper bound of the bucket holding the 99th percentile (ms); Infinity past the last bucket. */
	p99Ms: number;
}

/** `cur − base`, per counter. */
export function since(cur: VersionTotals, base: VersionTotals): VersionTotals {
	return {
		requests: cur.requests - base.requests,
		errors: cur.errors - base.errors,
		buckets: cur.buckets.map((b, i) => b - (base.buckets[i] ?? 0)),
	};
}

/** The figures a check judges. */
export function figures(d: VersionTotals): CheckFigures {
	const ok = d.buckets.reduce((a, b) => a + b, 0);
	let p99Ms = 0;
	if (ok > 0) {
		const want = Math.ceil(ok * 0.99);
		let seen = 0;
		for (let i = 0; i < d.buckets.length; i++) {
			seen += d.buckets[i] as number;
			if (seen >= want) {
				p99Ms = ROLLOUT_LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY;
				break;
			}
		}
	}
	return {
		requests: d.requests,
		errors: d.errors,
		errorRate: d.requests > 0 ? d.errors / d.requests : 0,
		p99Ms,
	};
}

/**
 * Publishes this replica's totals every tick and drives the rollouts whose lease it holds (a lease row with an
 * expiry: exactly one replica drives a rollout; when it dies another takes over after the lease, and a restart
 * resumes from the registry). A due check looks at the new version's requests since the last check, summed over
 * every replica: fewer than `minRequests` waits; an error rate above the bound or a p99 above the bound fails (after
 * `failures` failed checks the alias goes back to the old version); otherwise the split advances to the next step,
 * and the last step promotes (the alias moves to the new version, the split is cleared). Each move is an event.
 */
export class RolloutAgent {
	readonly replica: string;
	readonly #o: RolloutAgentOptions;
	readonly #tickMs: number;
	readonly #leaseMs: number;
	readonly #now: () => number;
	#timer: NodeJS.Timeout | undefined;
	#running: Promise<void> | undefined;
	#closed = false;

	constructor(opts: RolloutAgentOptions) {
		this.#o = opts;
		this.replica =
			opts.replica ??
			`${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
		this.#tickMs = opts.tickMs ?? 1000;
		this.#leaseMs = opts.leaseMs ?? 10 * this.#tickMs;
		this.#now = opts.now ?? Date.now;
	}

	start(): void {
		if (this.#timer || this.#closed) return;
		this.#timer = setInterval(() => {
			if (this.#running) return;
			this.#running = this.tick()
				.catch((err: unknown) =>
					this.#o.log?.("warn", "rollout agent tick failed; retrying", {
						error: err instanceof Error ? err.message : String(err),
					}),
				)
				.finally(() => {
					this.#running = undefined;
				});
		}, this.#tickMs);
		this.#timer.unref();
	}

	/** One round: publish, take leases, run the checks that are due (audited as this replica's agent). */
	tick(): Promise<void> {
		return withActor(
			{ actor: `rollout-agent:${this.replica}`, source: hostname() },
			() => this.#tick(),
		);
	}

	async #tick(): Promise<void> {
		const store = await this.#o.store();
		const rows = await this.#o.totals();
		if (rows.length > 0) await store.publishVersionStats(this.replica, rows);
		const now = this.#now();
		for (const r of await store.leaseRollouts(this.replica, this.#leaseMs, now))
			if (now >= r.nextCheckAt) await this.#check(store, r, now);
	}

	async #check(store: ModelStore, r: Rollout, now: number): Promise<void> {
		const cur = await store.versionTotals(r.name, r.to);
		const f = figures(since(cur, r.baseline));
		const owner = { owner: this.replica, now };
		const weight = r.steps[r.step] as number;
		const detail = {
			weight,
			...f,
			p99Ms: Number.isFinite(f.p99Ms) ? f.p99Ms : null,
		};
		if (f.requests < r.minRequests) {
			await store.updateRollout(
				r.name,
				r.alias,
				["running"],
				{ nextCheckAt: now + r.intervalMs },
				{ type: "waiting", detail: { ...detail, minRequests: r.minRequests } },
				owner,
			);
			return;
		}
		const passed =
			f.errorRate <= r.maxErrorRate &&
			(r.maxP99Ms === undefined || f.p99Ms <= r.maxP99Ms);
		if (!passed) {
			const failed = r.failed + 1;
			if (failed >= r.failures) {
				await clearSplit(store, r);
				await store.updateRollout(
					r.name,
					r.alias,
					["running"],
					{ state: "rolled_back", failed },
					{ type: "rolled_back", detail: { ...detail, version: r.from } },
					owner,
				);
				this.#o.log?.("warn", "rollout rolled back", {
					model: r.name,
					alias: r.alias,
					to: r.to,
					back_to: r.from,
					...detail,
				});
				return;
			}
			await store.updateRollout(
				r.name,
				r.alias,
				["running"],
				{ failed, nextCheckAt: now + r.intervalMs, baseline: cur },
				{ type: "check_failed", detail: { ...detail, failed } },
				owner,
			);
			return;
		}
		const next = r.step + 1;
		const nextWeight = r.steps[next];
		if (nextWeight === undefined || weight >= 100) {
			await promote(store, r);
			await store.updateRollout(
				r.name,
				r.alias,
				["running"],
				{ state: "promoted" },
				{ type: "promoted", detail: { ...detail, version: r.to } },
				owner,
			);
			return;
		}
		if (nextWeight >= 100) await promote(store, r);
		else await setSplit(store, r, nextWeight);
		const moved = await store.updateRollout(
			r.name,
			r.alias,
			["running"],
			nextWeight >= 100
				? { state: "promoted", step: next }
				: {
						step: next,
						stepStartedAt: now,
						nextCheckAt: now + r.intervalMs,
						baseline: cur,
					},
			nextWeight >= 100
				? { type: "promoted", detail: { ...detail, version: r.to } }
				: { type: "step", detail: { ...detail, weight: nextWeight } },
			owner,
		);
		// Aborted (or its lease lost) while the split moved: an aborted rollout's alias serves the old version.
		if (!moved && (await store.rollout(r.name, r.alias))?.state === "aborted")
			await clearSplit(store, r);
	}

	/** Stops ticking (waits for a round in progress). */
	async close(): Promise<void> {
		this.#closed = true;
		if (this.#timer) clearInterval(this.#timer);
		this.#timer = undefined;
		await this.#running;
	}
}

/** The alias splits `100 − weight` to the old version and `weight` to the new one. */
export async function setSplit(
	store: ModelStore,
	r: Pick<Rollout, "name" | "alias" | "from" | "to">,
	weight: number,
): Promise<void> {
	await store.setRoute(
		r.name,
		r.alias,
		{
			split: [
				{ version: r.from, weight: 100 - weight },
				{ version: r.to, weight },
			],
		},
		"rollout",
	);
}

/** The alias serves its own version again (the old one): the rollout's split goes. */
export async function clearSplit(
	store: ModelStore,
	r: Pick<Rollout, "name" | "alias">,
): Promise<void> {
	try {
		await store.clearRoute(r.name, r.alias);
	} catch (err) {
		// Already gone (a restart between the two writes): the goal holds.
		if (!(err instanceof MlshipError && err.code === "MLSHIP_MODEL_NOT_FOUND"))
			throw err;
	}
}

/** The alias moves to the new version and the split goes. */
export async function promote(
	store: ModelStore,
	r: Pick<Rollout, "name" | "alias" | "to">,
): Promise<void> {
	await store.setAlias(r.name, r.alias, r.to);
	await clearSplit(store, r);
}
