// The rows a freshly loaded model answers before it serves: the bundle's own examples, or one synthesized row.
import type { Manifest } from "../bundle/manifest.ts";
import type { Row, TablePlan } from "./table.ts";

/** What to warm a model up on, and whether it was made up (a failure on made-up data is not the model's fault). */
export interface WarmupRows {
	rows: Row[];
	/** True when `rows` was synthesized from the features, false for the bundle's `examples`. */
	synthesized: boolean;
}

/**
 * The bundle's `examples` when it has them; else one row that each feature accepts: a categorical feature's
 * first category (read from mlship.yaml, or from the graph's encoders for a bare ONNX model), a string
 * feature's empty string, a number feature's 0 clamped into its [min, max].
 * @example const { rows, synthesized } = warmupRows(model.manifest, model.plan);
 */
export function warmupRows(
	manifest: Pick<Manifest, "examples">,
	plan: TablePlan,
): WarmupRows {
	if (manifest.examples) return { rows: manifest.examples, synthesized: false };
	const row: Row = {};
	for (const f of plan.features) {
		const first = f.categories?.values().next();
		if (first && !first.done) row[f.name] = first.value;
		else if (f.kind === "bytes") row[f.name] = "";
		else row[f.name] = Math.min(Math.max(0, f.min), f.max);
	}
	return { rows: [row], synthesized: true };
}
