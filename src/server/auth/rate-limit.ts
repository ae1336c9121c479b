// Per-caller rate limits by scope (`predict=1000/s`): one token bucket per token id, or per client IP without a token.
import { MlshipError } from "../../protocol/errors.ts";
import type { Scope } from "../../registry/access.ts";
import { SCOPES } from "../../registry/access.ts";

/** One limit: `count` calls per `periodMs`, with bursts of up to `count`. */
export interface RateLimit {
	scope: Scope;
	count: number;
	periodMs: number;
}

const PERIOD_MS: Record<string, number> = {
	s: 1000,
	m: 60_000,
	h: 3_600_000,
};
/** Buckets kept at most; past it, full (idle) ones are dropped first, then the oldest. */
const MAX_BUCKETS = 100_000;
const SWEEP_MS = 10_000;

/**
 * Parses `predict=1000/s` (units s, m, h).
 * @example parseRateLimit("read=100/m") // { scope: "read", count: 100, periodMs: 60000 }
 */
export function parseRateLimit(text: string): RateLimit {
	const m = /^\s*([a-z]+)\s*=\s*(\d{1,9})\s*\/\s*([smh])\s*$/.exec(text);
	const scope = m?.[1];
	if (
		!m ||
		!(SCOPES as readonly string[]).includes(scope as string) ||
		Number(m[2]) < 1
	)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--rate-limit expects SCOPE=COUNT/UNIT with a scope of ${SCOPES.join(", ")} and a unit of s, m or h (e.g. predict=1000/s), got '${text.slice(0, 60)}'`,
		);
	return {
		scope: scope as Scope,
		count: Number(m[2]),
		periodMs: PERIOD_MS[m[3] as string] as number,
	};
}

/** A call refused by a rate limit: 429 with Retry-After (gRPC RESOURCE_EXHAUSTED). */
export class RateLimitedError extends MlshipError {
	/** Whole seconds until the next call would be let through (≥ 1). */
	readonly retryAfterSeconds: number;
	constructor(scope: Scope, who: string, limit: RateLimit, waitMs: number) {
		const seconds = Math.max(1, Math.ceil(waitMs / 1000));
		super(
			"MLSHIP_RATE_LIMITED",
			`rate limit of ${limit.count} ${scope} calls per ${limit.periodMs / 1000} s exceeded for ${who}; retry after ${seconds} s`,
		);
		this.retryAfterSeconds = seconds;
	}
}

interface Bucket {
	tokens: number;
	at: number;
}

/**
 * Token buckets per scope and caller: a token id when the call carried one, else the client's address (so anonymous
 * callers share nothing but their own address's budget). Costs one map lookup per call; buckets of idle callers are
 * swept, and the map is bounded.
 */
export class RateLimiter {
	readonly #limits = new Map<Scope, RateLimit>();
	readonly #buckets = new Map<string, Bucket>();
	#timer: NodeJS.Timeout | undefined;
	readonly #now: () => number;

	constructor(
		limits: readonly RateLimit[],
		now: () => number = performance.now.bind(performance),
	) {
		for (const l of limits) this.#limits.set(l.scope, l);
		this.#now = now;
		if (this.#limits.size > 0)
			this.#timer = setInterval(() => this.#sweep(), SWEEP_MS).unref();
	}

	/** Whether any limit is set (when not, callers skip the check entirely). */
	get active(): boolean {
		return this.#limits.size > 0;
	}

	/** Takes one call from the caller's bucket for `scope`; throws RateLimitedError when it is empty. */
	take(
		scope: Scope | "open",
		caller: string | undefined,
		address: string,
	): void {
		if (scope === "open") return;
		const limit = this.#limits.get(scope);
		if (!limit) return;
		const who = caller ?? address;
		const key = `${scope}\u0000${caller === undefined ? "ip" : "tok"}\u0000${who}`;
		const now = this.#now();
		const rate = limit.count / limit.periodMs;
		let b = this.#buckets.get(key);
		if (b === undefined) {
			if (this.#buckets.size >= MAX_BUCKETS) this.#sweep(true);
			b = { tokens: limit.count, at: now };
			this.#buckets.set(key, b);
		} else {
			b.tokens = Math.min(limit.count, b.tokens + (now - b.at) * rate);
			b.at = now;
		}
		if (b.tokens >= 1) {
			b.tokens -= 1;
			return;
		}
		throw new RateLimitedError(
			scope,
			caller === undefined ? `address ${address}` : `token ${caller}`,
			limit,
			(1 - b.tokens) / rate,
		);
	}

	/** Drops buckets that have refilled (their callers are idle); when `force`, the oldest half too. */
	#sweep(force = false): void {
		const now = this.#now();
		for (const [key, b] of this.#buckets) {
			const limit = this.#limits.get(
				key.slice(0, key.indexOf("\u0000")) as Scope,
			);
			if (
				!limit ||
				b.tokens + (now - b.at) * (limit.count / limit.periodMs) >= limit.count
			)
				this.#buckets.delete(key);
		}
		if (force && this.#buckets.size >= MAX_BUCKETS) {
			let drop = this.#buckets.size / 2;
			for (const key of this.#buckets.keys()) {
				if (drop-- <= 0) break;
				this.#buckets.delete(key);
			}
		}
	}

	close(): void {
		clearInterval(this.#timer);
	}
}
