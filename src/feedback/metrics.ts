// Prometheus gauges of feedback: live quality by model and version (window and cumulative), rewards, ids kept.
import { Gauge, type Registry } from "prom-client";
import type { FeedbackJoin } from "./join.ts";
import type { QualityFigures } from "./quality.ts";

const FIGURES = [
	"accuracy",
	"f1_macro",
	"roc_auc",
	"log_loss",
	"mae",
	"rmse",
] as const;

/**
 * Registers, on `registry`, gauges computed from `join` at each scrape (nothing on the request path):
 * `mlship_live_quality{model,version,metric,scope}` (scope `window` | `cumulative`),
 * `mlship_live_quality_rows{model,version,scope}`, `mlship_feedback_rewards{model,version}` (count) and
 * `mlship_feedback_reward_mean{model,version}`, `mlship_feedback_ids` (request ids kept) and
 * `mlship_feedback_ids_evicted` (dropped by the cap before their window ended).
 */
export function registerFeedbackMetrics(
	registry: Registry,
	join: FeedbackJoin,
): void {
	// Registered first: its collect() fills the three gauges below, which the registry reads after it.
	new Gauge({
		name: "mlship_live_quality",
		help: "Live quality from feedback by model, version, metric (accuracy, f1_macro, roc_auc, log_loss, mae, rmse) and scope (window, cumulative)",
		labelNames: ["model", "version", "metric", "scope"] as const,
		registers: [registry],
		collect() {
			this.reset();
			rows.reset();
			rewards.reset();
			rewardMean.reset();
			for (const q of join.quality.list()) {
				const l = { model: q.model, version: q.version };
				for (const [scope, f] of [
					["window", q.window],
					["cumulative", q.cumulative],
				] as [string, QualityFigures][]) {
					if (f.rows > 0) rows.set({ ...l, scope }, f.rows);
					for (const metric of FIGURES) {
						const v = f[metric];
						if (v !== undefined) this.set({ ...l, metric, scope }, v);
					}
				}
				if (q.rewards.count > 0) {
					rewards.set(l, q.rewards.count);
					rewardMean.set(l, q.rewards.sum / q.rewards.count);
				}
			}
		},
	});
	const rows = new Gauge({
		name: "mlship_live_quality_rows",
		help: "Rows with a truth from feedback, by model, version and scope (window: the newest N; cumulative)",
		labelNames: ["model", "version", "scope"] as const,
		registers: [registry],
	});
	const rewards = new Gauge({
		name: "mlship_feedback_rewards",
		help: "Rewards received by model and version (since start)",
		labelNames: ["model", "version"] as const,
		registers: [registry],
	});
	const rewardMean = new Gauge({
		name: "mlship_feedback_reward_mean",
		help: "Mean reward by model and version (since start)",
		labelNames: ["model", "version"] as const,
		registers: [registry],
	});
	new Gauge({
		name: "mlship_feedback_ids",
		help: "Request ids kept for feedback (bounded by the id cap and the retention window)",
		registers: [registry],
		collect() {
			this.set(join.size);
		},
	});
	new Gauge({
		name: "mlship_feedback_ids_evicted",
		help: "Request ids dropped by the id cap before their retention window ended (since start); raise the cap if it grows",
		registers: [registry],
		collect() {
			this.set(join.evicted);
		},
	});
}
