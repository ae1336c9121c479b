// Which columns of a model are profiled as categorical and which as numeric.
import type { Manifest } from "../../bundle/manifest.ts";
import type { TablePlan } from "../../codec/table.ts";
import type { ColumnKind } from "./build.ts";

/**
 * Feature kinds: categorical when the feature lists its categories or holds text or booleans, else numeric.
 * Output kinds (from the values `mlship predict` writes): categorical for text (class names), booleans and
 * 64-bit integers, or a classifier's `label`; numeric otherwise (scores, probabilities, regression values).
 */
export function columnKinds(
	manifest: Pick<Manifest, "task">,
	plan: TablePlan,
): {
	features: Map<string, ColumnKind>;
	outputs: (name: string, values: ArrayLike<unknown>) => ColumnKind;
} {
	const features = new Map<string, ColumnKind>(
		plan.features.map((f) => [
			f.name,
			f.categories !== undefined || f.kind === "bytes" || f.kind === "bool"
				? "categorical"
				: "numeric",
		]),
	);
	return {
		features,
		outputs: (name, values) => {
			if (manifest.task === "classification" && name === "label")
				return "categorical";
			for (let i = 0; i < values.length; i++) {
				const v = values[i];
				if (v === null || v === undefined) continue;
				return typeof v === "string" ||
					typeof v === "boolean" ||
					typeof v === "bigint"
					? "categorical"
					: "numeric";
			}
			return "numeric";
		},
	};
}
