// Live drift monitoring on the one core: a predict hook profiles each version's traffic per time window (on the
// reference's bin edges), writes windows to the registry so replicas merge, and judges closed windows (gauges,
// alerts with hysteresis).
import { hostname } from "node:os";
import { Counter, Gauge, Registry } from "prom-client";
import { outputsToColumns, type TablePlan } from "../codec/table.ts";
import type { TruthEvent, TruthListener } from "../feedback/join.ts";
import { QualityStats } from "../feedback/quality.ts";
import {
	type AlertEvent,
	columnVerdict,
	Hysteresis,
	type HysteresisOptions,
	WebhookSender,
} from "../monitor/alerts.ts";
import type { DriftOptions, WindowDrift } from "../monitor/drift.ts";
import { windowDrift } from "../monitor/drift.ts";
import {
	addValue,
	layoutOf,
	ProfileAccumulator,
} from "../monitor/profile/build.ts";
import {
	type Profile,
	parseProfile,
	stringifyProfile,
} from "../monitor/profile/format.ts";
import { LATENCY_BOUNDS_MS, type StatsRow } from "../monitor/stats.ts";
import {
	type MonitorReport,
	mergeWindowRows,
	monitorReport,
	type WindowRow,
} from "../monitor/windows.ts";
import { parseDuration } from "../protocol/duration.ts";
import type { Tensor } from "../protocol/types.ts";
import { defaultRegistryUri, openRegistry } from "../registry/open.ts";
import type { ModelStore, VersionTotals } from "../registry/types.ts";
import { isRegistryRef } from "./entry.ts";
import type { PredictCall, PredictHook } from "./instance.ts";
import type { ServedTotals } from "./types.ts";

/** A drift monitor and its close (which closes the registry connection it opened). */
export interface OpenedMonitor {
	monitor: DriftMonitor;
	close(): Promise<void>;
}

/**
 * The drift monitor of a serve or stream process: windows of `window` (30s, 5m), written to the registry the models
 * come from (`registry`, else the default registry when a source is a registry reference) so replicas merge, or kept
 * in memory when every source is a bundle directory.
 */
export async function openDriftMonitor(o: {
	window: string;
	registry?: string | undefined;
	sources: readonly string[];
	minRows?: number | undefined;
	method?: "default" | "psi" | undefined;
	webhook?: string | undefined;
	/** How long feedback can still arrive for an answer (the server's --feedback-retention), in ms. */
	feedbackRetentionMs?: number | undefined;
	onError?: (err: Error) => void;
}): Promise<OpenedMonitor> {
	const windowMs = parseDuration(o.window, "--monitor-window");
	const uri =
		o.registry ??
		(o.sources.some((s) => isRegistryRef(s))
			? defaultRegistryUri()
			: undefined);
	const store = uri ? await openRegistry(uri) : undefined;
	const monitor = new DriftMonitor({
		windowSeconds: windowMs / 1000,
		drift: {
			...(o.minRows !== undefined ? { minRows: o.minRows } : {}),
			...(o.method === "psi" ? { method: "psi" as const } : {}),
		},
		...(store ? { store } : {}),
		...(o.webhook ? { webhook: o.webhook } : {}),
		...(o.feedbackRetentionMs !== undefined
			? { feedbackRetentionMs: o.feedbackRetentionMs }
			: {}),
		...(o.onError ? { onError: o.onError } : {}),
	});
	return {
		monitor,
		async close() {
			await monitor.close();
			await store?.close();
		},
	};
}

/** Windows kept in memory when there is no registry (the oldest are dropped). */
const MEMORY_WINDOWS = 2000;
/** Writes a window row to a list kept in memory (no registry): replaces its earlier version, drops the oldest. */
function keepInMemory<
	T extends { model: string; version: number; start: number },
>(list: T[], row: T): void {
	const i = list.findIndex(
		(r) =>
			r.model === row.model &&
			r.version === row.version &&
			r.start === row.start,
	);
	if (i >= 0) list[i] = row;
	else {
		list.push(row);
		if (list.length > MEMORY_WINDOWS) list.shift();
	}
}

/**
 * Most stats windows held (open for late feedback, or waiting for the registry); a truth for a window beyond them is
 * dropped and counted, and past it the oldest windows go, counted.
 */
const MAX_OPEN_STATS = 10_000;

/** The ticks of a window: an integer number of them per window, each 0.1–10 s (window/5 when that fits). */
export function tickMsOf(windowMs: number): number {
	const n = Math.max(
		1,
		Math.min(
			Math.floor(windowMs / 100),
			Math.max(5, Math.ceil(windowMs / 10_000)),
		),
	);
	return windowMs / n;
}

/** Where a monitor reads traffic and feedback: a data plane (ServingDataPlane). */
export interface MonitoredPlane {
	requestTotals?(): Promise<ServedTotals[]>;
	onTruth?(fn: TruthListener): () => void;
}

export interface DriftMonitorOptions {
	/** Window length in seconds (default 300). */
	windowSeconds?: number;
	/** Test choice, thresholds, minimum rows per window (default 50) and dataset drift share. */
	drift?: DriftOptions;
	/** Where windows go so replicas merge (the registry database); without one they stay in this process. */
	store?: ModelStore;
	/** POST alert events here (JSON), with hysteresis. */
	webhook?: string;
	hysteresis?: HysteresisOptions;
	/** Names this process in stored windows (default host:pid:random). */
	replica?: string;
	/** Told of failures off the request path (a window not written, a webhook that failed). */
	onError?: (err: Error) => void;
	/** The clock (epoch ms), for tests that place traffic in windows; default Date.now. */
	now?: () => number;
	/** How long stored windows are kept (default 30 days); older ones are deleted, at most once an hour. */
	retentionSeconds?: number;
	/** Judge windows on a timer (default true); false: only flush() does (tests). */
	timer?: boolean;
	/** How long feedback can arrive after an answer (default 1 h): its window's quality is kept open that long. */
	feedbackRetentionMs?: number;
	/** Most traffic/quality windows held in memory (default 10,000; see MAX_OPEN_STATS). */
	maxOpenWindows?: number;
}

/** One version's traffic and quality in one window, as this process counts it. */
interface StatsWin {
	model: string;
	version: number;
	start: number;
	requests: number;
	errors: number;
	buckets: number[];
	quality: QualityStats | undefined;
	dirty: boolean;
}

interface OpenWindow {
	model: string;
	version: number;
	start: number;
	acc: ProfileAccumulator;
	reference: Profile;
	dirty: boolean;
	closed: boolean;
}

const LAYOUTS = new WeakMap<Profile, ReturnType<typeof layoutOf>>();

function layout(p: Profile): ReturnType<typeof layoutOf> {
	let l = LAYOUTS.get(p);
	if (!l) {
		l = layoutOf(p);
		LAYOUTS.set(p, l);
	}
	return l;
}

/** Adds one call's inputs (read through the table plan) and outputs (as table columns) to a window. */
function addCall(acc: ProfileAccumulator, call: PredictCall): void {
	const plan: TablePlan = call.plan;
	let rows = 0;
	for (const input of plan.inputs) {
		const t: Tensor | undefined = call.inputs.find(
			(x) => x.name === input.spec.name,
		);
		if (!t) continue;
		const n = t.shape[0] ?? 0;
		rows = Math.max(rows, n);
		const data = t.data as ArrayLike<unknown>;
		for (const f of input.features) {
			const a = acc.features.get(f.name);
			if (!a) continue;
			for (let r = 0; r < n; r++) addValue(a, data[r * input.width + f.col]);
		}
	}
	acc.rows += rows;
	if (acc.outputs.size === 0) return;
	for (const c of outputsToColumns(plan, call.outputs)) {
		const a = acc.outputs.get(c.name);
		if (!a) continue;
		for (const v of c.values) addValue(a, v);
	}
}

/**
 * Profiles live traffic per window and judges drift. Add `hook` to the instances to watch (a server passes it in
 * `DataPlaneOptions.hooks`); `report()` serves `GET /v2/models/{m}/monitor`; `metricsText()` the drift gauges.
 * @example const mon = new DriftMonitor({ windowSeconds: 300, store }); createDataPlane({ models, hooks: [mon.hook] })
 */
export class DriftMonitor {
	readonly windowSeconds: number;
	readonly hook: PredictHook;
	readonly registry = new Registry();
	readonly #opts: DriftMonitorOptions;
	readonly #replica: string;
	readonly #open = new Map<string, OpenWindow>();
	/** Windows stored in this process (no registry). */
	readonly #memory: WindowRow[] = [];
	/** References by `model@version`, from the calls seen (and from the registry for other versions). */
	readonly #references = new Map<string, Profile | null>();
	readonly #hysteresis: Hysteresis;
	readonly #webhook: WebhookSender | undefined;
	#timer: NodeJS.Timeout | undefined;
	/** Traffic and quality per (model, version, window), open while feedback can still arrive for it. */
	readonly #stats = new Map<string, StatsWin>();
	/** Stats windows stored in this process (no registry). */
	readonly #memoryStats: StatsRow[] = [];
	/** Where traffic is read (attach) and the cumulative totals read last, per model and version. */
	#traffic: (() => Promise<ServedTotals[]>) | undefined;
	readonly #lastTotals = new Map<string, VersionTotals>();
	#detach: (() => void) | undefined;
	readonly #maxOpen: number;
	readonly #tickMs: number;
	readonly #now: () => number;
	#ticking: Promise<void> = Promise.resolve();
	#prunedAt = 0;
	#closed = false;
	readonly #featureDrift = new Gauge({
		name: "mlship_feature_drift",
		help: "Drift statistic of a feature in the newest closed window: a p-value for ks/chisquare/z (drift below the threshold), a distance for wasserstein/jensenshannon/psi (drift at or above)",
		labelNames: ["model", "version", "feature", "method"] as const,
		registers: [this.registry],
	});
	readonly #featureDrifted = new Gauge({
		name: "mlship_feature_drift_detected",
		help: "1 when a feature drifted in the newest closed window with enough data, else 0",
		labelNames: ["model", "version", "feature"] as const,
		registers: [this.registry],
	});
	readonly #predictionDrift = new Gauge({
		name: "mlship_prediction_drift",
		help: "Drift statistic of a model output in the newest closed window (method as mlship_feature_drift)",
		labelNames: ["model", "version", "output", "method"] as const,
		registers: [this.registry],
	});
	readonly #datasetShare = new Gauge({
		name: "mlship_dataset_drift_share",
		help: "Share of features that drifted in the newest closed window (dataset drift at or above 0.5)",
		labelNames: ["model", "version"] as const,
		registers: [this.registry],
	});
	readonly #alerts = new Counter({
		name: "mlship_drift_alerts_total",
		help: "Drift alerts started and ended (type) as this replica's hysteresis decided them; with a webhook, the replica that claims one in the registry posts it",
		labelNames: ["model", "type"] as const,
		registers: [this.registry],
	});
	readonly #qualityDropped = new Counter({
		name: "mlship_monitor_quality_dropped_total",
		help: "Feedback truths left out of the per-window quality: their window was no longer held (more than 10,000 windows open)",
		registers: [this.registry],
	});
	readonly #statsDropped = new Counter({
		name: "mlship_monitor_stats_dropped_total",
		help: "Traffic/quality windows dropped before they were written: more than 10,000 were waiting (the registry unreachable for long)",
		registers: [this.registry],
	});
	readonly #alertsClaimedElsewhere = new Counter({
		name: "mlship_drift_alerts_deduplicated_total",
		help: "Alerts this replica did not post because another replica sharing the registry claimed (and sent) them",
		registers: [this.registry],
	});
	readonly #writeFailures = new Counter({
		name: "mlship_monitor_write_failures_total",
		help: "Profile windows that could not be written to the registry (the window is kept and written again)",
		registers: [this.registry],
	});

	constructor(opts: DriftMonitorOptions = {}) {
		this.#opts = opts;
		this.windowSeconds = opts.windowSeconds ?? 300;
		if (!(this.windowSeconds > 0))
			throw new RangeError("windowSeconds must be > 0");
		this.#replica =
			opts.replica ??
			`${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
		this.#hysteresis = new Hysteresis(opts.hysteresis);
		this.#maxOpen = opts.maxOpenWindows ?? MAX_OPEN_STATS;
		this.#webhook = opts.webhook
			? new WebhookSender(opts.webhook, (e) => this.#error(e))
			: undefined;
		// Partial windows are written a few times per window, so other replicas' reports see fresh traffic. Ticks
		// fall on multiples of the tick (a whole number per window), so traffic read at a tick belongs to the
		// window that just ran.
		this.#tickMs = tickMsOf(this.windowSeconds * 1000);
		this.#now = opts.now ?? Date.now;
		if (opts.timer !== false) this.#schedule();
		this.hook = (call) => this.#observe(call);
	}

	#schedule(): void {
		if (this.#closed) return;
		const now = this.#now();
		const at = (Math.floor(now / this.#tickMs) + 1) * this.#tickMs;
		this.#timer = setTimeout(() => {
			// The tick's own time (not the timer's late firing): the traffic read belongs before it.
			this.#ticking = this.#ticking.then(() => this.#safeTick(at));
			this.#schedule();
		}, at - now);
		this.#timer.unref();
	}

	/**
	 * Records traffic (requests, errors, latency histogram) of every version `plane` serves, read from its request
	 * metrics at each tick, and the quality of its answers from feedback truths, per window. Returns the detach.
	 */
	attach(plane: MonitoredPlane): () => void {
		const read = plane.requestTotals?.bind(plane);
		if (read) {
			this.#traffic = read;
			// The baseline: traffic before attaching (warm-ups) is not counted.
			this.#ticking = this.#ticking.then(() =>
				this.#readTraffic(undefined).catch((e: unknown) =>
					this.#error(e as Error),
				),
			);
		}
		const off = plane.onTruth?.((e) => this.#truth(e));
		this.#detach = () => {
			off?.();
			this.#traffic = undefined;
		};
		return this.#detach;
	}

	#statsWin(model: string, version: number, start: number): StatsWin {
		const key = `${model}\u0000${version}\u0000${start}`;
		let w = this.#stats.get(key);
		if (!w) {
			w = {
				model,
				version,
				start,
				requests: 0,
				errors: 0,
				buckets: new Array(LATENCY_BOUNDS_MS.length + 1).fill(0),
				quality: undefined,
				dirty: false,
			};
			this.#stats.set(key, w);
		}
		return w;
	}

	/** A truth joined to an answer: into the quality of the window the answer was served in. */
	#truth(e: TruthEvent): void {
		// Family members are not monitored (see #observe), their feedback neither: windows would grow with the entities.
		if (this.#closed || e.entity !== undefined) return;
		const version = Number(e.version);
		if (!Number.isInteger(version) || version < 1) return;
		const w = this.windowSeconds * 1000;
		const start = Math.floor(e.at / w) * w;
		const key = `${e.model}\u0000${version}\u0000${start}`;
		if (!this.#stats.has(key) && this.#stats.size >= this.#maxOpen) {
			this.#qualityDropped.inc();
			return;
		}
		const win = this.#statsWin(e.model, version, start);
		const task = e.regression ? "regression" : "classification";
		if (win.quality?.task !== task) win.quality = new QualityStats(task);
		if (e.regression) win.quality.addValue(e.row.pred, e.row.truth);
		else win.quality.addClass(e.row);
		win.dirty = true;
	}

	/**
	 * Reads the plane's cumulative totals and adds what grew since the last read to the window that ends at or
	 * after `at` − 1 ms (`at` undefined: only takes the baseline).
	 */
	async #readTraffic(at: number | undefined): Promise<void> {
		const read = this.#traffic;
		if (!read) return;
		const totals = await read();
		const w = this.windowSeconds * 1000;
		for (const t of totals) {
			const key = `${t.model}\u0000${t.version}`;
			const last = this.#lastTotals.get(key);
			this.#lastTotals.set(key, t.totals);
			if (at === undefined) continue;
			// A counter that went down was started again (the version was reloaded): all of it is new.
			const base =
				last && last.requests <= t.totals.requests ? last : undefined;
			const requests = t.totals.requests - (base?.requests ?? 0);
			if (requests <= 0) continue;
			const win = this.#statsWin(
				t.model,
				t.version,
				Math.floor((at - 1) / w) * w,
			);
			win.requests += requests;
			win.errors += t.totals.errors - (base?.errors ?? 0);
			for (let i = 0; i < win.buckets.length; i++)
				win.buckets[i] =
					(win.buckets[i] as number) +
					Math.max(0, (t.totals.buckets[i] ?? 0) - (base?.buckets[i] ?? 0));
			win.dirty = true;
		}
	}

	async #saveStats(win: StatsWin): Promise<void> {
		const row: StatsRow = {
			model: win.model,
			version: win.version,
			start: win.start,
			seconds: this.windowSeconds,
			replica: this.#replica,
			requests: win.requests,
			errors: win.errors,
			buckets: [...win.buckets],
		};
		if (win.quality) row.quality = JSON.stringify(win.quality.toJSON());
		win.dirty = false;
		const store = this.#opts.store;
		if (!store) {
			keepInMemory(this.#memoryStats, row);
			return;
		}
		try {
			await store.saveStatsWindow(row);
		} catch (err) {
			win.dirty = true;
			this.#writeFailures.inc();
			this.#error(
				new Error(
					`monitor: cannot write the traffic window of ${win.model}@${win.version}: ${(err as Error).message}`,
				),
			);
		}
	}

	async #statsRows(model: string, since: number): Promise<StatsRow[]> {
		const store = this.#opts.store;
		if (store) return store.statsWindows(model, since);
		return this.#memoryStats.filter(
			(r) => r.model === model && r.start >= since,
		);
	}

	/** Writes dirty stats windows; forgets those no feedback can reach any more. */
	async #tickStats(now: number): Promise<void> {
		await this.#readTraffic(now).catch((e: unknown) => this.#error(e as Error));
		const w = this.windowSeconds * 1000;
		const keep = this.#opts.feedbackRetentionMs ?? 3_600_000;
		for (const [key, win] of this.#stats) {
			if (win.dirty) await this.#saveStats(win);
			if (!win.dirty && now >= win.start + w + keep) this.#stats.delete(key);
		}
		// A registry down for long keeps every window dirty: the oldest go (counted) rather than grow without bound.
		for (const key of this.#stats.keys()) {
			if (this.#stats.size <= this.#maxOpen) break;
			this.#stats.delete(key);
			this.#statsDropped.inc();
		}
	}

	#error(e: Error): void {
		this.#opts.onError?.(e);
	}

	#observe(call: PredictCall): void {
		const ref = call.reference;
		// Per-entity family members (thousands of small models, each its own reference) are not monitored: their
		// windows and gauges would be per entity version, without bound.
		if (ref === undefined || call.entity !== undefined || this.#closed) return;
		// A bundle directory is version 1, as the server answers (model_version, mlship-model-version).
		const version = call.version ?? 1;
		const w = this.windowSeconds * 1000;
		const start = Math.floor(this.#now() / w) * w;
		const key = `${call.model}\u0000${version}\u0000${start}`;
		let win = this.#open.get(key);
		if (!win) {
			win = {
				model: call.model,
				version,
				start,
				acc: new ProfileAccumulator(layout(ref)),
				reference: ref,
				dirty: false,
				closed: false,
			};
			this.#open.set(key, win);
			this.#references.set(`${call.model}@${version}`, ref);
		}
		addCall(win.acc, call);
		win.dirty = true;
	}

	async #save(win: OpenWindow): Promise<void> {
		const row: WindowRow = {
			model: win.model,
			version: win.version,
			start: win.start,
			seconds: this.windowSeconds,
			replica: this.#replica,
			rows: win.acc.rows,
			profile: stringifyProfile(win.acc.profile()),
		};
		win.dirty = false;
		const store = this.#opts.store;
		if (!store) {
			keepInMemory(this.#memory, row);
			return;
		}
		try {
			await store.saveProfileWindow(row);
		} catch (err) {
			win.dirty = true;
			this.#writeFailures.inc();
			this.#error(
				new Error(
					`drift monitor: cannot write the window of ${win.model}@${win.version}: ${(err as Error).message}`,
				),
			);
		}
	}

	async #rows(model: string, since: number): Promise<WindowRow[]> {
		const store = this.#opts.store;
		if (store) return store.profileWindows(model, since);
		return this.#memory.filter((r) => r.model === model && r.start >= since);
	}

	/** A tick that never rejects (a failure is reported), so one failure does not stop later ticks. */
	async #safeTick(now: number): Promise<void> {
		try {
			await this.#tick(now);
		} catch (err) {
			this.#error(err instanceof Error ? err : new Error(String(err)));
		}
	}

	/** Writes dirty windows; closes windows whose end has passed, and judges them once every replica had time to write. */
	async #tick(now: number): Promise<void> {
		const retention = (this.#opts.retentionSeconds ?? 30 * 86_400) * 1000;
		if (now - this.#prunedAt >= 3_600_000) {
			this.#prunedAt = now;
			const before = now - retention;
			const i = this.#memory.findIndex((r) => r.start >= before);
			this.#memory.splice(0, i < 0 ? this.#memory.length : i);
			const j = this.#memoryStats.findIndex((r) => r.start >= before);
			this.#memoryStats.splice(0, j < 0 ? this.#memoryStats.length : j);
			await this.#opts.store
				?.pruneProfileWindows(before)
				.catch((e: unknown) => this.#error(e as Error));
		}
		await this.#tickStats(now);
		const w = this.windowSeconds * 1000;
		for (const [key, win] of this.#open) {
			const end = win.start + w;
			if (win.dirty || (now >= end && !win.closed)) await this.#save(win);
			if (now >= end) win.closed = true;
			// Judged one tick after the end: other replicas write their last part of it meanwhile.
			if (now >= end + this.#tickMs && !win.dirty) {
				this.#open.delete(key);
				await this.#judge(win).catch((e: unknown) => this.#error(e as Error));
			}
		}
	}

	async #judge(win: OpenWindow): Promise<void> {
		const rows = (await this.#rows(win.model, win.start)).filter(
			(r) => r.start === win.start && r.version === win.version,
		);
		const merged = mergeWindowRows(rows)[0];
		if (!merged) return;
		const d = windowDrift(win.reference, merged.profile, this.#opts.drift);
		this.#gauges(win.model, win.version, d);
		await this.#alert(win, d);
	}

	#gauges(model: string, version: number, d: WindowDrift): void {
		const v = String(version);
		for (const [feature, c] of Object.entries(d.features)) {
			if (c.statistic === null) continue;
			this.#featureDrift.set(
				{ model, version: v, feature, method: c.method },
				c.statistic,
			);
			this.#featureDrifted.set(
				{ model, version: v, feature },
				c.drifted ? 1 : 0,
			);
		}
		for (const [output, c] of Object.entries(d.outputs))
			if (c.statistic !== null)
				this.#predictionDrift.set(
					{ model, version: v, output, method: c.method },
					c.statistic,
				);
		if (d.dataset.share !== null)
			this.#datasetShare.set({ model, version: v }, d.dataset.share);
	}

	async #alert(win: OpenWindow, d: WindowDrift): Promise<void> {
		const exit = this.#opts.hysteresis?.exitRatio ?? 0.5;
		const subjects: [string, ReturnType<typeof columnVerdict>][] = [];
		for (const [name, c] of Object.entries(d.features))
			subjects.push([`feature:${name}`, columnVerdict(c, exit)]);
		for (const [name, c] of Object.entries(d.outputs))
			subjects.push([`output:${name}`, columnVerdict(c, exit)]);
		subjects.push([
			"dataset",
			{
				drifted: d.dataset.drifted_dataset,
				clear:
					d.dataset.share !== null &&
					d.dataset.share < d.dataset.drift_share * exit,
				method: "share",
				statistic: d.dataset.share,
				threshold: d.dataset.drift_share,
			},
		]);
		const start = new Date(win.start).toISOString();
		const end = new Date(win.start + this.windowSeconds * 1000).toISOString();
		for (const [subject, v] of subjects) {
			const r = this.#hysteresis.observe(
				`${win.model}\u0000${win.version}\u0000${subject}`,
				v,
			);
			if (!r) continue;
			this.#alerts.inc({ model: win.model, type: r.change });
			if (
				this.#webhook &&
				!(await this.#claim(win, subject, r.change).catch((err: unknown) => {
					// Without the registry an alert is sent rather than lost (maybe twice).
					this.#error(
						new Error(
							`drift monitor: cannot claim the alert in the registry, sending it anyway: ${(err as Error).message}`,
						),
					);
					return true;
				}))
			) {
				this.#alertsClaimedElsewhere.inc();
				continue;
			}
			const e: AlertEvent = {
				type: r.change === "started" ? "drift.started" : "drift.ended",
				model: win.model,
				version: win.version,
				subject,
				method: v.method,
				statistic: v.statistic,
				threshold: v.threshold,
				window_start: start,
				window_end: end,
				...(r.change === "ended" ? { reason: r.reason } : {}),
			};
			await this.#webhook?.send(e);
		}
	}

	/**
	 * Whether this replica sends an alert: the first replica to insert its row in the registry (model, version,
	 * subject, window, change) does; replicas judging the same merged window find it taken. Without a registry,
	 * always. Limits (docs/monitoring.md): the claim precedes the post, so a claimant whose post fails loses the
	 * event for all; replicas whose hysteresis decides the change in different windows each claim and post.
	 */
	async #claim(
		win: OpenWindow,
		subject: string,
		change: string,
	): Promise<boolean> {
		const store = this.#opts.store;
		if (!store) return true;
		return store.claimAlert({
			model: win.model,
			version: win.version,
			subject,
			windowStart: win.start,
			change,
			replica: this.#replica,
		});
	}

	/** A version's reference profile: seen in traffic, else read from the registry (null: it has none). */
	async #reference(
		model: string,
		version: number,
	): Promise<Profile | undefined> {
		const key = `${model}@${version}`;
		if (this.#references.has(key))
			return this.#references.get(key) ?? undefined;
		let p: Profile | null = null;
		const store = this.#opts.store;
		if (store && version > 0)
			try {
				const b = await store.openBundle(key);
				const f = b.manifest.profile;
				const bytes = f ? b.files.get(f.path) : undefined;
				if (f && bytes) p = parseProfile(bytes, `${key}: ${f.path}`);
			} catch {
				p = null;
			}
		this.#references.set(key, p);
		return p ?? undefined;
	}

	/** Windows of a model since `since` (epoch ms), every replica's merged, with their drift. */
	async report(model: string, since: number): Promise<MonitorReport> {
		await this.#ticking;
		// This process's newest traffic is included even before its next write.
		for (const win of this.#open.values())
			if (win.model === model && win.dirty) await this.#save(win);
		for (const win of this.#stats.values())
			if (win.model === model && win.dirty) await this.#saveStats(win);
		const rows = await this.#rows(model, since);
		const stats = await this.#statsRows(model, since);
		const refs = new Map<number, Profile | undefined>();
		for (const v of new Set([...rows, ...stats].map((r) => r.version)))
			refs.set(v, await this.#reference(model, v));
		return monitorReport(
			model,
			since,
			rows,
			(v) => refs.get(v),
			this.#opts.drift,
			this.#now(),
			stats,
		);
	}

	/** Prometheus exposition of the drift gauges and alert counters. */
	async metricsText(): Promise<{ contentType: string; body: string }> {
		return {
			contentType: this.registry.contentType,
			body: await this.registry.metrics(),
		};
	}

	/** Runs one tick now (tests and shutdown): writes, closes and judges what is due at `now`. */
	async flush(now: number = this.#now()): Promise<void> {
		this.#ticking = this.#ticking.then(() => this.#safeTick(now));
		await this.#ticking;
		await this.#webhook?.drain();
	}

	/** Writes what is open and stops the timer. The store is the caller's to close. */
	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		clearTimeout(this.#timer);
		await this.#ticking;
		// The traffic since the last tick goes into the window running now.
		await this.#readTraffic(this.#now() + 1).catch((e: unknown) =>
			this.#error(e as Error),
		);
		this.#detach?.();
		for (const win of this.#open.values()) if (win.dirty) await this.#save(win);
		for (const win of this.#stats.values())
			if (win.dirty) await this.#saveStats(win);
		await this.#webhook?.drain();
	}
}
