// Feedback joined to the served version by request id: a bounded map id → {model, version, prediction, at}, filled by a predict hook.
import type { PredictCall, PredictHook } from "../dataplane/instance.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import type { Tensor } from "../protocol/types.ts";
import {
	type ClassRow,
	isClassIndex,
	MAX_CLASSES,
	MAX_UNLABELLED_CLASSES,
	QualityBook,
} from "./quality.ts";
import type { FeedbackItem, FeedbackOutcome } from "./types.ts";

export type { FeedbackItem, FeedbackOutcome };

/** Told of every reward applied: model, version that served it, the reward. */
export type RewardListener = (
	model: string,
	version: string,
	reward: number,
) => void;

/** One truth joined to an answer, per row: when the answer was served (`at`, epoch ms) and what it said. */
export interface TruthEvent {
	model: string;
	version: string;
	at: number;
	/** Regression: `row.pred` and `row.truth` are values; else class indices (with probabilities when given). */
	regression: boolean;
	row: ClassRow;
	/** The entity, when the answer came from a per-entity family member. */
	entity?: string | undefined;
}

/** Told of every truth joined (the monitor's per-window quality). */
export type TruthListener = (e: TruthEvent) => void;

export interface FeedbackOptions {
	/** Most request ids kept (oldest dropped first). Default 100,000; about 400 bytes each for a one-row answer (see docs). */
	maxIds?: number;
	/** How long a request id can receive feedback, in ms. Default 1 hour. */
	retentionMs?: number;
	/** How many of the newest feedback rows the window quality figures cover. Default 1000. */
	qualityWindow?: number;
	/** Clock (ms since the epoch); tests inject theirs. */
	now?: () => number;
}

export const DEFAULT_MAX_IDS = 100_000;
export const DEFAULT_RETENTION_MS = 3_600_000;
/** Requests with more rows are not kept (their feedback is refused as unknown). */
export const MAX_ROWS_PER_ID = 1024;
/** Most items in one feedback call. */
export const MAX_ITEMS = 10_000;

/** A served request as kept: what the feedback join needs, in a few small typed arrays. */
interface Kept {
	/** The request id (a flat copy), so the age queue holds the Kept itself, not a wrapper object per id. */
	id: string;
	model: string;
	version: string;
	at: number;
	rows: number;
	/** Class names (the bundle's labels, shared, not copied), for classifiers. */
	classes: readonly string[] | undefined;
	/** Classification: per row the predicted class index; regression: per row the value (plain arrays: a typed array costs ~400 bytes more per id). */
	pred: number[];
	/** Class probabilities, rows × k (classification with a probability output). */
	probs: number[] | undefined;
	k: number;
	regression: boolean;
	done: boolean;
	/** The entity of a per-entity family member's answer. */
	entity: string | undefined;
}

function width(t: Tensor): number {
	let w = 1;
	for (let i = 1; i < t.shape.length; i++) w *= t.shape[i] as number;
	return w;
}

/** INT8…UINT64 (the first letter; not BOOL or BYTES): a per-request check, so no Set lookup. */
function isInt(datatype: string): boolean {
	const c = datatype.charCodeAt(0);
	return c === 73 || c === 85; // I, U
}

/** FP16, FP32, FP64. */
function isFloat(datatype: string): boolean {
	return datatype.charCodeAt(0) === 70; // F
}

/** A tensor's values as a plain array of numbers (a loop: `Array.from` on a typed array goes through its iterator). */
function numbers(data: ArrayLike<unknown>, n: number): number[] {
	const out: number[] = [];
	for (let i = 0; i < n; i++) out.push(Number(data[i]));
	return out;
}

/**
 * What a prediction said, per row: a class index (with its probabilities, when there are some) or a value.
 * Outputs: a width-1 integer or BYTES output is the class; a float output of width ≥ 2 the class probabilities (the
 * class is their argmax when there is no class output); a width-1 float output of a model that is not a classifier is
 * the value. Undefined when nothing fits (the request is not kept).
 */
export function keptOf(
	call: PredictCall,
	at: number,
	id = "",
): Kept | undefined {
	const rows = call.outputs[0]?.shape[0] ?? 0;
	if (rows === 0 || rows > MAX_ROWS_PER_ID) return undefined;
	let label: Tensor | undefined;
	let probs: Tensor | undefined;
	let value: Tensor | undefined;
	for (const t of call.outputs) {
		const w = width(t);
		if (w === 1 && (isInt(t.datatype) || t.datatype === "BYTES")) label ??= t;
		else if (w >= 2 && isFloat(t.datatype)) probs ??= t;
		else if (w === 1 && isFloat(t.datatype)) value ??= t;
	}
	const regression =
		call.task === "regression" ||
		(call.task !== "classification" && !label && !probs && value !== undefined);
	const kept: Kept = {
		id,
		model: call.model,
		// A bundle loaded without a registry is version 1, as `serve` numbers it.
		version: String(call.version ?? 1),
		at,
		rows,
		classes: call.plan.labels,
		pred: [],
		probs: undefined,
		k: 0,
		regression,
		done: false,
		entity: call.entity,
	};
	if (regression) {
		if (!value) return undefined;
		kept.pred = numbers(value.data, rows);
		return kept;
	}
	if (probs) {
		kept.k = width(probs);
		kept.probs = numbers(probs.data, rows * kept.k);
	}
	if (label?.datatype === "BYTES") {
		// Class names as text need the bundle's labels to become indices.
		if (!call.plan.labels) return undefined;
		for (let r = 0; r < rows; r++) {
			const i = call.plan.labels.indexOf(String(label.data[r]));
			if (i < 0) return undefined;
			kept.pred.push(i);
		}
	} else if (label) kept.pred = numbers(label.data, rows);
	else if (kept.probs) {
		const k = kept.k;
		for (let r = 0; r < rows; r++) {
			let best = 0;
			for (let j = 1; j < k; j++)
				if (
					(kept.probs[r * k + j] as number) >
					(kept.probs[r * k + best] as number)
				)
					best = j;
			kept.pred.push(best);
		}
	} else return undefined;
	return kept;
}

/**
 * Keeps what each request id was answered with (a predict hook), for a window, and joins feedback to it: truths
 * update live quality by version, rewards are handed to listeners (bandits) and counted by version.
 * @example const fb = new FeedbackJoin(); dataPlane options: { hooks: [fb.hook] }; fb.apply("churn", [{ id, truth: 1 }]);
 */
export class FeedbackJoin {
	readonly maxIds: number;
	readonly retentionMs: number;
	readonly quality: QualityBook;
	readonly #now: () => number;
	readonly #ids = new Map<string, Kept>();
	/**
	 * Age order, oldest at `#head`: ids and what was kept for them (an entry whose id was answered again later is
	 * stale and skipped). Not the Map's own order: iterating a Map from the front walks every deleted slot since its
	 * last rehash (measured: ~70 µs per call at a 100,000-id cap), a queue is O(1).
	 */
	#queue: Kept[] = [];
	#head = 0;
	readonly #listeners: RewardListener[] = [];
	readonly #truthListeners: TruthListener[] = [];
	/** Ids dropped by the cap before their window ended. */
	evicted = 0;

	constructor(opts: FeedbackOptions = {}) {
		this.maxIds = opts.maxIds ?? DEFAULT_MAX_IDS;
		this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
		if (!Number.isInteger(this.maxIds) || this.maxIds < 1)
			throw new RangeError(
				`feedback max ids must be a whole number ≥ 1, got ${this.maxIds}`,
			);
		if (!(this.retentionMs > 0))
			throw new RangeError(
				`feedback retention must be > 0 ms, got ${this.retentionMs}`,
			);
		this.quality = new QualityBook(opts.qualityWindow);
		this.#now = opts.now ?? Date.now;
	}

	/** The predict hook: keeps the answer of every request with an id. */
	readonly hook: PredictHook = (call) => {
		// A shadow copy answered nobody: the id belongs to the primary's answer.
		if (call.requestId === undefined || call.shadow) return;
		const now = this.#now();
		// A flat copy: a generated UUID is a rope of ~20 pieces that would cost ~450 bytes more per id kept.
		const kept = keptOf(
			call,
			now,
			Buffer.from(call.requestId, "utf8").toString("utf8"),
		);
		if (!kept) return;
		// A reused id is the newest answer (its older queue entry becomes stale).
		this.#ids.set(kept.id, kept);
		this.#queue.push(kept);
		this.#prune(now);
	};

	/** Request ids kept now. */
	get size(): number {
		return this.#ids.size;
	}

	/** Calls `fn` for every reward applied (a bandit's state). Returns its removal. */
	onReward(fn: RewardListener): () => void {
		this.#listeners.push(fn);
		return () => {
			const i = this.#listeners.indexOf(fn);
			if (i >= 0) this.#listeners.splice(i, 1);
		};
	}

	/** Calls `fn` for every truth joined, one call per row (the monitor's quality windows). Returns its removal. */
	onTruth(fn: TruthListener): () => void {
		this.#truthListeners.push(fn);
		return () => {
			const i = this.#truthListeners.indexOf(fn);
			if (i >= 0) this.#truthListeners.splice(i, 1);
		};
	}

	#tellTruth(e: TruthEvent): void {
		for (const l of this.#truthListeners)
			try {
				l(e);
			} catch {
				// A listener never fails the feedback that fed it.
			}
	}

	#prune(now: number): void {
		const oldest = now - this.retentionMs;
		const q = this.#queue;
		while (this.#head < q.length) {
			const e = q[this.#head] as Kept;
			if (this.#ids.get(e.id) !== e) {
				this.#head++; // stale: the id was answered again
				continue;
			}
			if (this.#ids.size > this.maxIds) this.evicted++;
			else if (e.at >= oldest) break;
			this.#ids.delete(e.id);
			this.#head++;
		}
		// Drop the consumed front now and then (amortized O(1) per id).
		if (this.#head > 1024 && this.#head * 2 > q.length) {
			this.#queue = q.slice(this.#head);
			this.#head = 0;
		}
	}

	/**
	 * Applies feedback for `model`'s requests: every item is checked first (unknown or expired id: 404; a reward
	 * that is not a finite number or a truth of the wrong type: 400; feedback twice for one id: 409), then all are
	 * applied, so a bad item changes nothing.
	 */
	apply(model: string, items: readonly FeedbackItem[]): FeedbackOutcome {
		if (items.length === 0)
			throw invalidInput(
				"no feedback: send {id, reward} or {id, truth}, or a list of them",
			);
		if (items.length > MAX_ITEMS)
			throw invalidInput(
				`at most ${MAX_ITEMS} feedback items per call, got ${items.length}: send them in parts`,
			);
		this.#prune(this.#now());
		const plan: (() => void)[] = [];
		const seen = new Set<string>();
		let joined = 0;
		let byVersion = 0;
		for (let i = 0; i < items.length; i++) {
			const it = items[i] as FeedbackItem;
			const where = items.length > 1 ? `feedback item ${i}` : "feedback";
			if (typeof it !== "object" || it === null || Array.isArray(it))
				throw invalidInput(
					`${where} must be an object {id, reward} or {id, truth}`,
				);
			if (typeof it.id !== "string" || it.id === "")
				throw invalidInput(
					`${where}: 'id' must be the request id (a non-empty string) the answer carried`,
				);
			if (seen.has(it.id))
				throw invalidInput(
					`${where}: request id '${it.id}' appears twice in this call`,
				);
			seen.add(it.id);
			const hasReward = it.reward !== undefined;
			const hasTruth = it.truth !== undefined;
			if (!hasReward && !hasTruth)
				throw invalidInput(`${where}: give 'reward' (a number) or 'truth'`);
			if (
				hasReward &&
				(typeof it.reward !== "number" || !Number.isFinite(it.reward))
			)
				throw invalidInput(
					`${where}: 'reward' must be a finite number, got ${JSON.stringify(it.reward) ?? typeof it.reward}`,
				);
			const kept = this.#ids.get(it.id);
			if (kept === undefined || kept.model !== model) {
				if (hasReward && !hasTruth && it.version !== undefined) {
					const v = String(it.version);
					if (!/^[1-9][0-9]{0,9}$/.test(v))
						throw invalidInput(
							`${where}: 'version' must be a version number, got ${JSON.stringify(it.version)}`,
						);
					const reward = it.reward as number;
					plan.push(() => this.#reward(model, v, reward));
					byVersion++;
					continue;
				}
				throw new MlshipError(
					"MLSHIP_REQUEST_NOT_FOUND",
					`${where}: no answer of model '${model}' with request id '${it.id}' is kept on this server: it was not served here, or it is older than the feedback window (${this.retentionMs / 1000} s), or was pushed out by the ${this.maxIds}-id cap. A reward can name the serving version ('version', from the answer's model_version) to be applied on any replica`,
				);
			}
			if (kept.done)
				throw new MlshipError(
					"MLSHIP_ALREADY_EXISTS",
					`${where}: request id '${it.id}' already received feedback (each answer takes one)`,
				);
			if (it.version !== undefined && String(it.version) !== kept.version)
				throw invalidInput(
					`${where}: request id '${it.id}' was served by version ${kept.version}, not ${JSON.stringify(it.version)}`,
				);
			const truthRows = hasTruth
				? this.#truths(kept, it.truth, where)
				: undefined;
			const reward = it.reward;
			plan.push(() => {
				kept.done = true;
				if (reward !== undefined)
					this.#reward(kept.model, kept.version, reward);
				if (truthRows) this.#observe(kept, truthRows);
			});
			joined++;
		}
		for (const p of plan) p();
		return { accepted: plan.length, joined, byVersion };
	}

	#reward(model: string, version: string, reward: number): void {
		this.quality.addReward(model, version, reward);
		for (const l of this.#listeners)
			try {
				l(model, version, reward);
			} catch {
				// A listener (a bandit's buffer) never fails the feedback that fed it.
			}
	}

	/** The truths of a kept request, one per row, checked against what the model predicts (class or value). */
	#truths(kept: Kept, truth: unknown, where: string): number[] {
		const list = Array.isArray(truth) ? truth : [truth];
		if (list.length !== kept.rows)
			throw invalidInput(
				`${where}: the request had ${kept.rows} row${kept.rows === 1 ? "" : "s"}, so 'truth' must be ${kept.rows === 1 ? "one value" : `a list of ${kept.rows}`}; got ${Array.isArray(truth) ? `a list of ${list.length}` : "one value"}`,
			);
		return list.map((t, r) => {
			const at = kept.rows > 1 ? ` (row ${r})` : "";
			if (kept.regression) {
				if (typeof t !== "number" || !Number.isFinite(t))
					throw invalidInput(
						`${where}: 'truth'${at} must be a finite number for regression model '${kept.model}', got ${JSON.stringify(t)}`,
					);
				return t;
			}
			const classes = kept.classes;
			if (typeof t === "string" && classes) {
				const i = classes.indexOf(t);
				if (i < 0)
					throw invalidInput(
						`${where}: 'truth'${at} '${t}' is not a class of '${kept.model}' (classes: ${classes.slice(0, 20).join(", ")}${classes.length > 20 ? ", …" : ""})`,
					);
				return i;
			}
			const n = typeof t === "string" && /^[0-9]{1,9}$/.test(t) ? Number(t) : t;
			// Without labels or probabilities the class count is unknown: indices are bounded (they size the
			// per-class counts every stats window writes).
			const known = classes?.length ?? (kept.k > 0 ? kept.k : undefined);
			const limit = Math.min(known ?? MAX_UNLABELLED_CLASSES, MAX_CLASSES);
			if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n >= limit)
				throw invalidInput(
					`${where}: 'truth'${at} must be ${classes ? "a class name or index" : "a class index"} of classification model '${kept.model}' (0–${limit - 1}${known === undefined ? `: the model gives neither labels nor probabilities, so quality counts at most ${MAX_UNLABELLED_CLASSES.toLocaleString("en-US")} classes; add 'labels' to the bundle for more` : ""}), got ${JSON.stringify(t)}`,
				);
			const pred = kept.pred[r] as number;
			if (!isClassIndex(pred))
				throw invalidInput(
					`${where}: the answer${at} predicted class ${pred}, which is not a class index (0–${MAX_CLASSES - 1}), so a truth cannot be scored against it; give the bundle 'labels' so the model's classes become indices`,
				);
			return n;
		});
	}

	#observe(kept: Kept, truths: number[]): void {
		for (let r = 0; r < kept.rows; r++) {
			const truth = truths[r] as number;
			if (kept.regression) {
				this.quality.addValue(
					kept.model,
					kept.version,
					kept.pred[r] as number,
					truth,
				);
				if (this.#truthListeners.length > 0)
					this.#tellTruth({
						model: kept.model,
						version: kept.version,
						at: kept.at,
						regression: true,
						row: { pred: kept.pred[r] as number, truth },
						entity: kept.entity,
					});
				continue;
			}
			const row: ClassRow = { pred: kept.pred[r] as number, truth };
			if (kept.probs)
				row.probs = kept.probs.slice(r * kept.k, (r + 1) * kept.k);
			this.quality.addClass(kept.model, kept.version, row);
			if (this.#truthListeners.length > 0)
				this.#tellTruth({
					model: kept.model,
					version: kept.version,
					at: kept.at,
					regression: false,
					row,
					entity: kept.entity,
				});
		}
	}
}
