// Retry delays with jitter, shared by every reconnect and retry loop, so that many clients losing one broker or
// database at once do not come back in lockstep.

/** Bounds of a {@link Backoff}, and its random source (injected by tests; default Math.random). */
export interface BackoffOptions {
	/** First and smallest delay, ms. */
	minMs: number;
	/** Largest delay, ms. */
	maxMs: number;
	/** Uniform in [0, 1). */
	random?: () => number;
}

/**
 * Decorrelated jitter (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog 2015): each delay is drawn
 * uniformly between `minMs` and three times the previous delay, capped at `maxMs`. Delays grow about
 * exponentially on average, but two clients that fail together draw different delays and spread apart.
 * @example const b = new Backoff({ minMs: 100, maxMs: 2000 }); await sleep(b.next()); ... b.reset(); // after a success
 */
export class Backoff {
	readonly #min: number;
	readonly #max: number;
	readonly #random: () => number;
	#prev: number;

	constructor(opts: BackoffOptions) {
		if (!(opts.minMs > 0 && opts.maxMs >= opts.minMs))
			throw new RangeError(
				`backoff: need 0 < minMs <= maxMs, got ${opts.minMs} and ${opts.maxMs}`,
			);
		this.#min = opts.minMs;
		this.#max = opts.maxMs;
		this.#random = opts.random ?? Math.random;
		this.#prev = opts.minMs;
	}

	/** The next delay in ms (an integer in [minMs, maxMs]). */
	next(): number {
		const hi = Math.min(this.#max, this.#prev * 3);
		const d = Math.min(
			this.#max,
			Math.round(this.#min + this.#random() * (hi - this.#min)),
		);
		this.#prev = d;
		return d;
	}

	/** After a success: the next delay starts again from `minMs`. */
	reset(): void {
		this.#prev = this.#min;
	}
}
