// Traffic policies at the core: which loaded version serves a request (split, sticky hash, bandit), and shadow copies.
import {
	type ArmChooser,
	pickArm,
	stickyBucket,
	type TrafficPolicy,
} from "../experiments/policy.ts";
import type { Metrics } from "../monitor/metrics.ts";
import type { InferenceRequest, Tensor } from "../protocol/types.ts";
import type { RouteState, Served } from "./entry.ts";
import type { CallContext } from "./instance.ts";
import type { InferOptions, ShadowSummary } from "./types.ts";

/** Most shadow copies in flight per shadow version; past it, copies are dropped (and counted). */
export const SHADOW_MAX_IN_FLIGHT = 64;

/** The version a request is sent to: a split (weighted or sticky), a bandit arm, or the only serving version. */
export function chooseVersion(
	r: RouteState,
	key: string | undefined,
	chooser: ArmChooser,
): string {
	const p = r.route.policy;
	if (p.split) {
		const bucket =
			key !== undefined && p.sticky
				? stickyBucket(p.salt, key)
				: Math.random() * 100;
		return String(pickArm(p.split, bucket));
	}
	if (p.bandit)
		return String(chooser.choose(r.route.name, r.route.alias, p.bandit));
	// Shadow only: the alias's version serves (the first arm).
	return r.arms.keys().next().value as string;
}

/** A scalar request value as a sticky key (strings, numbers and booleans; anything else is no key). */
export function keyText(v: unknown): string | undefined {
	if (typeof v === "string") return v;
	if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean")
		return String(v);
	return undefined;
}

/**
 * The sticky key of a whole request from a header or a request parameter (a `feature` key is read per row by
 * the caller); undefined when the policy has none or the request does not carry it (then the split is random).
 */
export function requestKey(
	p: TrafficPolicy,
	opts: InferOptions,
	parameters: Record<string, unknown> | undefined,
): string | undefined {
	const s = p.sticky;
	if (!s) return undefined;
	if (s.from === "header") return opts.header?.(s.key.toLowerCase());
	if (s.from === "param") return keyText(parameters?.[s.key]);
	return undefined;
}

/** An OIP request's feature key: the first element of the input tensor of that name. */
export function tensorKey(
	request: InferenceRequest,
	name: string,
): string | undefined {
	for (const t of request.inputs)
		if (t.name === name) return keyText((t.data as ArrayLike<unknown>)[0]);
	return undefined;
}

/** Comparison figures of one shadow version against the versions that answered, since the server started. */
export interface ShadowStats {
	model: string;
	version: string;
	/** Copies scored and compared. */
	compared: number;
	/** Copies that failed in the shadow (the primary answered anyway). */
	errors: number;
	/** Copies dropped because the shadow's queue was full. */
	dropped: number;
	/** Label elements compared (integer, boolean and string outputs) and how many agreed. */
	labels: number;
	agreements: number;
	/** Score elements compared (floating-point outputs): sum and max of |primary − shadow|. */
	scores: number;
	diffSum: number;
	diffMax: number;
	/** Sums of latencies (seconds) of the primary answers and of the shadow copies compared. */
	primarySeconds: number;
	shadowSeconds: number;
}

export function summarize(s: ShadowStats): ShadowSummary {
	const out: ShadowSummary = {
		version: s.version,
		compared: s.compared,
		errors: s.errors,
		dropped: s.dropped,
	};
	if (s.labels > 0) out.agreement = s.agreements / s.labels;
	if (s.scores > 0) {
		out.meanAbsDiff = s.diffSum / s.scores;
		out.maxAbsDiff = s.diffMax;
	}
	if (s.compared > 0) {
		out.primaryMs = (s.primarySeconds / s.compared) * 1000;
		out.shadowMs = (s.shadowSeconds / s.compared) * 1000;
	}
	return out;
}

function isFloat(t: Tensor): boolean {
	return (
		t.datatype === "FP32" || t.datatype === "FP64" || t.datatype === "FP16"
	);
}

/** Adds one primary/shadow pair of outputs to the stats: labels by equality, scores by absolute difference. */
export function compareOutputs(
	stats: ShadowStats,
	primary: readonly Tensor[],
	shadow: readonly Tensor[],
): void {
	for (const p of primary) {
		const s = shadow.find((t) => t.name === p.name);
		if (!s) continue;
		const a = p.data as ArrayLike<unknown>;
		const b = s.data as ArrayLike<unknown>;
		const n = Math.min(a.length, b.length);
		if (isFloat(p) && isFloat(s)) {
			const x = a as ArrayLike<number>;
			const y = b as ArrayLike<number>;
			for (let i = 0; i < n; i++) {
				const d = Math.abs((x[i] as number) - (y[i] as number));
				stats.diffSum += d;
				if (d > stats.diffMax) stats.diffMax = d;
			}
			stats.scores += n;
		} else if (!isFloat(p) && !isFloat(s)) {
			for (let i = 0; i < n; i++) if (a[i] === b[i]) stats.agreements++;
			stats.labels += n;
		}
	}
}

/** The shadow side of a data plane: bounded in-flight copies per version, their stats, and their metrics. */
export class Shadows {
	readonly #metrics: Metrics;
	readonly #stats = new Map<string, ShadowStats>();
	readonly #inFlight = new Map<Served, number>();
	readonly #max: number;

	constructor(metrics: Metrics, maxInFlight = SHADOW_MAX_IN_FLIGHT) {
		this.#metrics = metrics;
		this.#max = maxInFlight;
	}

	stats(model: string, version: string): ShadowStats {
		const k = `${model}\0${version}`;
		let s = this.#stats.get(k);
		if (!s) {
			s = {
				model,
				version,
				compared: 0,
				errors: 0,
				dropped: 0,
				labels: 0,
				agreements: 0,
				scores: 0,
				diffSum: 0,
				diffMax: 0,
				primarySeconds: 0,
				shadowSeconds: 0,
			};
			this.#stats.set(k, s);
		}
		return s;
	}

	/** Every shadow's stats of a model (all models without a name). */
	list(model?: string): ShadowStats[] {
		return [...this.#stats.values()].filter(
			(s) => model === undefined || s.model === model,
		);
	}

	/**
	 * Sends a copy of an answered request to each shadow of the route (each with its percent), after the fact (on
	 * the next turn of the event loop, so the answer goes out first): it never delays or fails the primary. A shadow
	 * with SHADOW_MAX_IN_FLIGHT copies scheduled or running drops the copy.
	 */
	mirror(
		model: string,
		r: RouteState,
		inputs: Tensor[],
		outputs: readonly string[] | undefined,
		primary: readonly Tensor[],
		primarySeconds: number,
		context: CallContext | undefined,
	): void {
		for (const sh of r.shadows) {
			if (sh.percent < 100 && Math.random() * 100 >= sh.percent) continue;
			const version = sh.served.version;
			const stats = this.stats(model, version);
			const n = this.#inFlight.get(sh.served) ?? 0;
			if (n >= this.#max) {
				stats.dropped++;
				this.#metrics.shadowRequests.inc({
					model,
					version,
					outcome: "dropped",
				});
				continue;
			}
			this.#inFlight.set(sh.served, n + 1);
			const copy = { ...context, shadow: true };
			// A model that runs inline would otherwise score the copy before the caller got its answer.
			setImmediate(() => {
				const started = performance.now();
				sh.served.model
					.predictTensors(inputs, outputs, undefined, copy)
					.then(
						(outs) => {
							stats.compared++;
							stats.primarySeconds += primarySeconds;
							stats.shadowSeconds += (performance.now() - started) / 1000;
							compareOutputs(stats, primary, outs);
							this.#metrics.shadowRequests.inc({
								model,
								version,
								outcome: "compared",
							});
						},
						() => {
							stats.errors++;
							this.#metrics.shadowRequests.inc({
								model,
								version,
								outcome: "error",
							});
						},
					)
					.finally(() => {
						const left = (this.#inFlight.get(sh.served) ?? 1) - 1;
						if (left > 0) this.#inFlight.set(sh.served, left);
						else this.#inFlight.delete(sh.served);
					});
			});
		}
	}

	/** Sets the comparison gauges from the stats, before a scrape. */
	collect(): void {
		const m = this.#metrics;
		for (const s of this.#stats.values()) {
			const sum = summarize(s);
			const l = { model: s.model, version: s.version };
			if (sum.agreement !== undefined) m.shadowAgreement.set(l, sum.agreement);
			if (sum.meanAbsDiff !== undefined)
				m.shadowDiffMean.set(l, sum.meanAbsDiff);
			if (sum.maxAbsDiff !== undefined) m.shadowDiffMax.set(l, sum.maxAbsDiff);
		}
	}
}
