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

	constructor(processMetrics = true) {
		if (processMetrics)
			collectDefaultMetrics({ register: this.registry, prefix: "mlship_" });
	}
}
