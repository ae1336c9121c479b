// Drift alerts with hysteresis: a subject (a feature, an output, the dataset) enters "drifting" when a window crosses
// its threshold, and leaves only when a window falls below a lower exit threshold or after K clean windows in a row.
import type { ColumnDrift } from "./drift.ts";
import { isPValueTest } from "./drift.ts";

/** How alerts enter and leave. */
export interface HysteresisOptions {
	/** Clean windows in a row (no drift) after which an alert ends (default 3). */
	clearWindows?: number;
	/**
	 * Exit threshold as a share of the entry threshold for distances (default 0.5: a Wasserstein-normed distance
	 * entering at 0.1 ends at once below 0.05); for p-values the exit is the threshold divided by it (p ≥ 0.2 at 0.05).
	 */
	exitRatio?: number;
}

/** An alert starting or ending, as posted to the webhook. */
export interface AlertEvent {
	type: "drift.started" | "drift.ended";
	model: string;
	version: number;
	/** `feature:<name>`, `output:<name>` or `dataset`. */
	subject: string;
	method: string;
	statistic: number | null;
	threshold: number;
	/** The window that decided it (ISO times). */
	window_start: string;
	window_end: string;
	/** Why it ended: "below exit threshold" or "N clean windows". */
	reason?: string;
}

interface State {
	active: boolean;
	clean: number;
}

/** The verdict of one window for one subject, as the hysteresis reads it. */
export interface Verdict {
	drifted: boolean | null;
	/** Below the exit threshold: clearly clean (ends an alert at once). */
	clear: boolean;
	method: string;
	statistic: number | null;
	threshold: number;
}

/** A column's verdict with its exit threshold applied. */
export function columnVerdict(d: ColumnDrift, exitRatio = 0.5): Verdict {
	let clear = false;
	if (d.statistic !== null)
		clear = isPValueTest(d.method)
			? d.statistic >= Math.min(1, d.threshold / exitRatio)
			: d.statistic < d.threshold * exitRatio;
	return {
		drifted: d.drifted,
		clear,
		method: d.method,
		statistic: d.statistic,
		threshold: d.threshold,
	};
}

/** Keeps each subject's alert state; `observe` returns the events a window causes. */
export class Hysteresis {
	readonly #states = new Map<string, State>();
	readonly #clearWindows: number;

	constructor(opts: HysteresisOptions = {}) {
		this.#clearWindows = opts.clearWindows ?? 3;
	}

	/** Whether a subject's alert is active. */
	active(key: string): boolean {
		return this.#states.get(key)?.active ?? false;
	}

	/**
	 * One window's verdict for `key` (model, version, subject): returns "started", "ended" (with why) or nothing.
	 * A window without a verdict (not enough data) changes nothing.
	 */
	observe(
		key: string,
		v: Verdict,
	): { change: "started" } | { change: "ended"; reason: string } | undefined {
		if (v.drifted === null) return undefined;
		const s = this.#states.get(key) ?? { active: false, clean: 0 };
		this.#states.set(key, s);
		if (v.drifted) {
			s.clean = 0;
			if (!s.active) {
				s.active = true;
				return { change: "started" };
			}
			return undefined;
		}
		if (!s.active) return undefined;
		s.clean++;
		if (v.clear) {
			s.active = false;
			s.clean = 0;
			return { change: "ended", reason: "below exit threshold" };
		}
		if (s.clean >= this.#clearWindows) {
			s.active = false;
			s.clean = 0;
			return {
				change: "ended",
				reason: `${this.#clearWindows} clean windows`,
			};
		}
		return undefined;
	}
}

/**
 * Posts alert events to a webhook (JSON, one event per request), in order, off the request path. A failed post is
 * retried twice (1 s apart), then reported to `onError`; it never throws.
 */
export class WebhookSender {
	readonly #url: string;
	readonly #onError: (err: Error) => void;
	#tail: Promise<void> = Promise.resolve();
	/** Events delivered and failed, for metrics and tests. */
	sent = 0;
	failed = 0;

	constructor(url: string, onError: (err: Error) => void = () => {}) {
		this.#url = url;
		this.#onError = onError;
	}

	send(e: AlertEvent): Promise<void> {
		this.#tail = this.#tail.then(() => this.#post(e));
		return this.#tail;
	}

	/** Waits for queued events. */
	drain(): Promise<void> {
		return this.#tail;
	}

	async #post(e: AlertEvent): Promise<void> {
		let last: Error | undefined;
		for (let attempt = 0; attempt < 3; attempt++) {
			if (attempt > 0) await new Promise((r) => setTimeout(r, 1000));
			try {
				const res = await fetch(this.#url, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: JSON.stringify(e),
					signal: AbortSignal.timeout(5000),
				});
				await res.arrayBuffer().catch(() => undefined);
				if (res.ok) {
					this.sent++;
					return;
				}
				last = new Error(`alert webhook answered HTTP ${res.status}`);
			} catch (err) {
				last = new Error(
					`alert webhook unreachable: ${(err as Error).message}`,
				);
			}
		}
		this.failed++;
		this.#onError(last as Error);
	}
}
