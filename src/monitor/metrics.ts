// Prometheus metrics of a data plane: one registry, bounded labels (model, version, outcome).
import {
	Counter,
	collectDefaultMetrics,
	Gauge,
	Histogram,
	Registry,
} from "prom-client";

const LATENCY_BUCKETS = [
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	0.5, 1, 2.5, 5, 10,
];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/** The data plane's metrics. Observing costs ~0.4 µs; labels are model name, version and outcome only. */
export class Metrics {
	readonly registry = new Registry();
	readonly requests = new Counter({
		name: "mlship_requests_total",
		help: "Inference requests by model, version and outcome (ok, invalid, overloaded, timeout, error)",
		labelNames: ["model", "version", "outcome"] as const,
		registers: [this.registry],
	});
	readonly latency = new Histogram({
		name: "mlship_request_duration_seconds",
		help: "End-to-end time of an inference request inside the data plane (queue + compute)",
		labelNames: ["model", "version"] as const,
		buckets: LATENCY_BUCKETS,
		registers: [this.registry],
	});
	readonly queueTime = new Histogram({
		name: "mlship_queue_duration_seconds",
		help: "Time a request waited in its model's queue before its batch started",
		labelNames: ["model", "version"] as const,
		buckets: LATENCY_BUCKETS,
		registers: [this.registry],
	});
	readonly computeTime = new Histogram({
		name: "mlship_compute_duration_seconds",
		help: "Time a batch took to run on the model",
		labelNames: ["model", "version"] as const,
		buckets: LATENCY_BUCKETS,
		registers: [this.registry],
	});
	readonly batchSize = new Histogram({
		name: "mlship_batch_size",
		help: "Rows per executed batch",
		labelNames: ["model", "version"] as const,
		buckets: BATCH_BUCKETS,
		registers: [this.registry],
	});
	readonly queueDepth = new Gauge({
		name: "mlship_queue_depth",
		help: "Requests waiting in a model's queue",
		labelNames: ["model", "version"] as const,
		registers: [this.registry],
	});
	readonly updates = new Counter({
		name: "mlship_model_updates_total",
		help: "Hot updates of served models by outcome (ok, failed: the old version kept serving)",
		labelNames: ["model", "outcome"] as const,
		registers: [this.registry],
	});
	readonly loads = new Counter({
		name: "mlship_model_loads_total",
		help: "Model versions loaded (first load, reload, hot update, lazy load after eviction)",
		labelNames: ["model"] as const,
		registers: [this.registry],
	});
	readonly warmupFailures = new Counter({
		name: "mlship_warmup_failures_total",
		help: "Model versions whose warm-up on a synthesized row failed; they serve anyway (a failure on the bundle's own examples stops the load instead)",
		labelNames: ["model"] as const,
		registers: [this.registry],
	});
	readonly evictions = new Counter({
		name: "mlship_model_evictions_total",
		help: "Models unloaded to stay within max_loaded_models or memory_budget (least recently used first)",
		labelNames: ["model"] as const,
		registers: [this.registry],
	});
	readonly registryAvailable = new Gauge({
		name: "mlship_registry_available",
		help: "1 while the model registry is reachable (loaded models keep serving when it is not)",
		registers: [this.registry],
	});
	readonly loadedBytes = new Gauge({
		name: "mlship_models_loaded_bytes",
		help: "Estimated memory of the loaded models (what memory_budget is held against)",
		registers: [this.registry],
	});
	readonly loaded = new Gauge({
		name: "mlship_models_loaded",
		help: "Model versions loaded and serving",
		registers: [this.registry],
	});

	readonly shadowRequests = new Counter({
		name: "mlship_shadow_requests_total",
		help: "Shadow copies of answered requests by model, shadow version and outcome (compared, error, dropped: its queue was full)",
		labelNames: ["model", "version", "outcome"] as const,
		registers: [this.registry],
	});
	readonly shadowAgreement = new Gauge({
		name: "mlship_shadow_label_agreement_ratio",
		help: "Share of label outputs on which a shadow version agrees with the version that answered",
		labelNames: ["model", "version"] as const,
		registers: [this.registry],
	});
	readonly shadowDiffMean = new Gauge({
		name: "mlship_shadow_score_abs_diff_mean",
		help: "Mean absolute difference of score outputs between a shadow version and the version that answered",
		labelNames: ["model", "version"] as const,
		registers: [this.registry],
	});
	readonly shadowDiffMax = new Gauge({
		name: "mlship_shadow_score_abs_diff_max",
		help: "Largest absolute difference of score outputs between a shadow version and the version that answered",
		labelNames: ["model", "version"] as const,
		registers: [this.registry],
	});

	readonly rows = rowsCounter(this.registry);

	constructor(processMetrics = true) {
		if (processMetrics)
			collectDefaultMetrics({ register: this.registry, prefix: "mlship_" });
	}
}

/** `mlship_rows_total`: rows (or messages) a long-running pattern scored, by outcome. */
function rowsCounter(
	registry: Registry,
	collect?: (c: Counter<"model" | "version" | "outcome">) => void,
) {
	return new Counter({
		name: "mlship_rows_total",
		help: "Rows (stream: messages) by model, version and outcome (scored, rejected: bad values, dead: dead-lettered)",
		labelNames: ["model", "version", "outcome"] as const,
		registers: [registry],
		...(collect
			? {
					collect(this: Counter<"model" | "version" | "outcome">) {
						collect(this);
					},
				}
			: {}),
	});
}

/** The shape of a model scheduler's observer (see dataplane/scheduler.ts), so a runner can report into these metrics. */
export interface BatchObserver {
	batch(rows: number, computeSeconds: number): void;
	request(queueSeconds: number): void;
	depth(waiting: number): void;
}

/**
 * Serve's metrics for a runner that scores rows with a model of its own (`batch work`, `batch schedule`,
 * `pg worker`): pass `observer` when loading the model, `bind` its name and version once loaded (that makes
 * it ready), and report the runner's cumulative row counts with `totals` after each chunk (one request each).
 * @example const m = new RunnerMetrics(); const model = await loadModel(ref, { observer: m.observer }); m.bind(model.name, model.version);
 */
export class RunnerMetrics {
	readonly metrics: Metrics;
	#model = "";
	#version = "";
	#bound = false;
	#queueSeconds = 0;
	#scored = 0;
	#rejected = 0;
	readonly observer: BatchObserver = {
		batch: (rows, secs) => {
			const l = [this.#model, this.#version] as const;
			this.metrics.batchSize.labels(...l).observe(rows);
			this.metrics.computeTime.labels(...l).observe(secs);
			// A runner's request is its batch: queue wait (none, mostly) plus compute is its latency.
			this.metrics.latency.labels(...l).observe(this.#queueSeconds + secs);
		},
		request: (secs) => {
			this.#queueSeconds = secs;
			this.metrics.queueTime.labels(this.#model, this.#version).observe(secs);
		},
		depth: (n) =>
			this.metrics.queueDepth.labels(this.#model, this.#version).set(n),
	};

	constructor(processMetrics = true) {
		this.metrics = new Metrics(processMetrics);
	}

	/** A run loaded its model: names the model and version the metrics are labelled with; ready from then on. */
	bind(model: string, version: number | string | null | undefined): void {
		// Each bind starts a run, whose totals count from zero.
		this.#scored = 0;
		this.#rejected = 0;
		this.#model = model;
		// As serve labels it: a bundle outside a registry is version 1.
		this.#version = String(version ?? 1);
		this.#bound = true;
		this.metrics.loaded.set(1);
	}

	/**
	 * A followed model's event (followModel's `onEvent`): when it moved to another version, later series carry the
	 * new labels; totals go on. Bound: pass it as the callback.
	 */
	readonly onModelEvent = (e: {
		type: string;
		model: string;
		to?: string | undefined;
	}): void => {
		if (e.type !== "updated" || e.to === undefined) return;
		this.#model = e.model;
		this.#version = e.to;
	};

	get ready(): boolean {
		return this.#bound;
	}

	/** A chunk finished: the run's cumulative scored and rejected rows (the increase is counted). Bound: pass it as a callback. */
	readonly totals = (scored: number, rejected: number): void => {
		const l = [this.#model, this.#version] as const;
		if (scored > this.#scored)
			this.metrics.rows.labels(...l, "scored").inc(scored - this.#scored);
		if (rejected > this.#rejected)
			this.metrics.rows.labels(...l, "rejected").inc(rejected - this.#rejected);
		this.#scored = Math.max(this.#scored, scored);
		this.#rejected = Math.max(this.#rejected, rejected);
		this.metrics.requests.labels(...l, "ok").inc();
	};

	/** A run or chunk failed (the process may keep going, as `batch schedule` does). */
	failed(): void {
		this.metrics.requests.labels(this.#model, this.#version, "error").inc();
	}

	/** Prometheus exposition. */
	async exposition(): Promise<{ contentType: string; body: string }> {
		return {
			contentType: this.metrics.registry.contentType,
			body: await this.metrics.registry.metrics(),
		};
	}
}

/**
 * `mlship_rows_total` on a registry of its own, filled at scrape time from a stream's live counters (the data
 * plane's registry carries the request, latency and batch metrics beside it).
 */
export function streamRowMetrics(
	read: () => { model: string; versions: Record<string, number>; dead: number },
): Registry {
	const registry = new Registry();
	collectDefaultMetrics({ register: registry, prefix: "mlship_" });
	rowsCounter(registry, (c) => {
		const s = read();
		c.reset();
		for (const [version, n] of Object.entries(s.versions))
			c.labels(s.model, version, "scored").inc(n);
		if (s.dead > 0) c.labels(s.model, "", "dead").inc(s.dead);
	});
	return registry;
}
