// Bandit arm choice from rewards shared by replicas: Thompson sampling, ε-greedy, UCB1; state merged through the registry.
import type { ArmChooser, TrafficPolicy } from "../experiments/policy.ts";
import type { ArmStats } from "../registry/types.ts";

type Bandit = NonNullable<TrafficPolicy["bandit"]>;

/** Where arm totals are shared: the registry (ModelStore's addArmStats/armStats). */
export interface ArmStore {
	addArmStats(deltas: readonly ArmStats[]): Promise<void>;
	armStats(name?: string, alias?: string): Promise<ArmStats[]>;
}

export interface BanditOptions {
	/** How often deltas are flushed and merged totals read, ms. Default 1000. */
	syncMs?: number;
	/** Uniform [0, 1) source (seed it in tests). Default Math.random. */
	random?: () => number;
	/** ε of `epsilon` bandits whose policy gives none. Default 0.1. */
	epsilon?: number;
	/** A flush or read failed (the deltas are kept and retried at the next sync). */
	onError?: (err: unknown) => void;
}

interface Arm {
	pulls: number;
	sum: number;
}

interface Experiment {
	name: string;
	alias: string;
	/** Totals as last read from the registry (every replica's flushed deltas). */
	merged: Map<number, Arm>;
	/** This replica's rewards not flushed yet. */
	pending: Map<number, Arm>;
	/** Rewards being flushed: still counted until the merged totals that include them are read. */
	flushing: Map<number, Arm>;
}

/** A standard normal draw (Box–Muller). */
function normal(random: () => number): number {
	const u = 1 - random();
	return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A Gamma(shape, 1) draw (Marsaglia–Tsang; shape < 1 through the boost u^(1/shape)). */
function gamma(shape: number, random: () => number): number {
	if (shape < 1)
		return gamma(shape + 1, random) * (1 - random()) ** (1 / shape);
	const d = shape - 1 / 3;
	const c = 1 / Math.sqrt(9 * d);
	for (;;) {
		let x: number;
		let v: number;
		do {
			x = normal(random);
			v = 1 + c * x;
		} while (v <= 0);
		v = v * v * v;
		const u = 1 - random();
		if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
	}
}

/** A Beta(a, b) draw. */
export function betaSample(a: number, b: number, random: () => number): number {
	const x = gamma(a, random);
	return x / (x + gamma(b, random));
}

/**
 * Chooses bandit arms from rewards (feedback) shared by every replica through the registry. Each replica adds its
 * rewards to local deltas; every `syncMs` it flushes them with additive updates and reads the merged totals; on
 * close it flushes what is left, so nothing is lost on restart.
 *
 * - `thompson` (Beta–Bernoulli): arm ~ Beta(1 + Σr, 1 + n − Σr); a reward is clipped to [0, 1] and counts as a
 *   fractional success (0.3 = 0.3 of a success and 0.7 of a failure).
 * - `epsilon`: with probability ε a uniform arm, else the best mean reward (an arm without rewards first).
 * - `ucb1`: an arm without rewards first, else the best mean + √(2 ln N / n) (rewards are meant to lie in [0, 1]).
 *
 * A pull is a reward received: requests whose answer never gets feedback do not count.
 * @example const chooser = new BanditChooser(store); createDataPlane({ ..., armChooser: chooser, feedback: {} })
 */
export class BanditChooser implements ArmChooser {
	readonly #store: ArmStore;
	readonly #random: () => number;
	readonly #epsilon: number;
	readonly #onError: ((err: unknown) => void) | undefined;
	readonly #experiments = new Map<string, Experiment>();
	readonly #timer: NodeJS.Timeout;
	#syncing: Promise<void> | undefined;
	#closed = false;

	constructor(store: ArmStore, opts: BanditOptions = {}) {
		this.#store = store;
		this.#random = opts.random ?? Math.random;
		this.#epsilon = opts.epsilon ?? 0.1;
		this.#onError = opts.onError;
		this.#timer = setInterval(() => {
			void this.sync().catch((err: unknown) => this.#onError?.(err));
		}, opts.syncMs ?? 1000);
		this.#timer.unref();
	}

	#experiment(name: string, alias: string): Experiment {
		const key = `${name}@${alias}`;
		let x = this.#experiments.get(key);
		if (!x) {
			x = {
				name,
				alias,
				merged: new Map(),
				pending: new Map(),
				flushing: new Map(),
			};
			this.#experiments.set(key, x);
			// Its totals so far (other replicas', earlier runs') are read at the next sync; start one now.
			void this.sync().catch((err: unknown) => this.#onError?.(err));
		}
		return x;
	}

	/** Totals of an arm as this replica sees them: merged plus its own unflushed rewards. */
	#arm(x: Experiment, version: number): Arm {
		const m = x.merged.get(version);
		const p = x.pending.get(version);
		const f = x.flushing.get(version);
		return {
			pulls: (m?.pulls ?? 0) + (p?.pulls ?? 0) + (f?.pulls ?? 0),
			sum: (m?.sum ?? 0) + (p?.sum ?? 0) + (f?.sum ?? 0),
		};
	}

	choose(name: string, alias: string, bandit: Bandit): number {
		const arms = bandit.arms;
		const x = this.#experiment(name, alias);
		const rnd = this.#random;
		const pick = (score: (a: Arm) => number): number => {
			let best = arms[0] as number;
			let bestScore = Number.NEGATIVE_INFINITY;
			for (const v of arms) {
				const s = score(this.#arm(x, v));
				if (s > bestScore) {
					best = v;
					bestScore = s;
				}
			}
			return best;
		};
		switch (bandit.algorithm) {
			case "thompson":
				return pick((a) =>
					betaSample(1 + a.sum, 1 + Math.max(0, a.pulls - a.sum), rnd),
				);
			case "epsilon": {
				if (rnd() < (bandit.epsilon ?? this.#epsilon))
					return arms[Math.floor(rnd() * arms.length)] as number;
				return pick((a) =>
					a.pulls === 0 ? Number.POSITIVE_INFINITY : a.sum / a.pulls,
				);
			}
			case "ucb1": {
				let total = 0;
				for (const v of arms) total += this.#arm(x, v).pulls;
				return pick((a) =>
					a.pulls === 0
						? Number.POSITIVE_INFINITY
						: a.sum / a.pulls + Math.sqrt((2 * Math.log(total)) / a.pulls),
				);
			}
		}
	}

	/** A reward for `version` of the bandit on `name@alias` (Thompson clips it to [0, 1]). */
	reward(
		name: string,
		alias: string,
		version: number,
		reward: number,
		algorithm?: Bandit["algorithm"],
	): void {
		if (!Number.isFinite(reward)) return;
		const r =
			algorithm === "thompson" ? Math.min(1, Math.max(0, reward)) : reward;
		const x = this.#experiment(name, alias);
		const p = x.pending.get(version) ?? { pulls: 0, sum: 0 };
		p.pulls++;
		p.sum += r;
		x.pending.set(version, p);
	}

	/** The merged totals as this replica sees them now, by arm. */
	stats(
		name: string,
		alias: string,
	): { version: number; pulls: number; rewardSum: number }[] {
		const x = this.#experiments.get(`${name}@${alias}`);
		if (!x) return [];
		const versions = new Set([
			...x.merged.keys(),
			...x.pending.keys(),
			...x.flushing.keys(),
		]);
		return [...versions]
			.sort((a, b) => a - b)
			.map((version) => {
				const a = this.#arm(x, version);
				return { version, pulls: a.pulls, rewardSum: a.sum };
			});
	}

	/** Flushes this replica's deltas (additive updates), then reads the merged totals. One at a time. */
	sync(): Promise<void> {
		this.#syncing ??= this.#sync().finally(() => {
			this.#syncing = undefined;
		});
		return this.#syncing;
	}

	async #sync(): Promise<void> {
		if (this.#experiments.size === 0) return;
		const deltas: ArmStats[] = [];
		for (const x of this.#experiments.values()) {
			if (x.pending.size === 0) continue;
			for (const [version, a] of x.pending)
				deltas.push({
					name: x.name,
					alias: x.alias,
					version,
					pulls: a.pulls,
					rewardSum: a.sum,
				});
			// Rewards arriving during the flush go to a fresh map; the flushed ones still count meanwhile.
			x.flushing = x.pending;
			x.pending = new Map();
		}
		try {
			await this.#store.addArmStats(deltas);
		} catch (err) {
			// Not flushed: back to pending, so the next sync (or close) retries them.
			for (const x of this.#experiments.values()) {
				for (const [v, a] of x.flushing) {
					const p = x.pending.get(v) ?? { pulls: 0, sum: 0 };
					p.pulls += a.pulls;
					p.sum += a.sum;
					x.pending.set(v, p);
				}
				x.flushing = new Map();
			}
			throw err;
		}
		for (const x of this.#experiments.values()) {
			const rows = await this.#store.armStats(x.name, x.alias);
			// The deltas just flushed are in `rows` now.
			x.merged = new Map(
				rows.map((r) => [r.version, { pulls: r.pulls, sum: r.rewardSum }]),
			);
			x.flushing = new Map();
		}
	}

	/** Stops syncing and flushes what is left (so a restart loses nothing). */
	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		clearInterval(this.#timer);
		await this.#syncing?.catch(() => {});
		await this.sync();
	}
}
