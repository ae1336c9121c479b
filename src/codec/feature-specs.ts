// What each feature column accepts, as a transport describes it (model metadata parameters, OpenAPI schemas).
import type { Manifest } from "../bundle/manifest.ts";
import type { TablePlan } from "./table.ts";

/** A table column the model reads, with what it accepts. */
export interface FeatureSpec {
	name: string;
	/** OIP datatype of the column (FP32, INT64, BYTES, ...). */
	datatype: string;
	/** Allowed values of a categorical column, as the manifest lists them. */
	categories?: (string | number)[];
	min?: number;
	max?: number;
	/** null/NaN is accepted (and passed to the model as NaN). */
	allow_missing?: boolean;
}

/** Each feature of a model in column order: from the manifest where it says, else from the planned columns. */
export function featureSpecs(
	manifest: Manifest,
	plan: TablePlan,
): FeatureSpec[] {
	const declared = new Map((manifest.features ?? []).map((f) => [f.name, f]));
	return plan.features.map((f) => {
		const spec: FeatureSpec = { name: f.name, datatype: f.datatype };
		const categories = declared.get(f.name)?.categories ?? f.categories;
		if (categories) spec.categories = [...categories];
		if (Number.isFinite(f.min)) spec.min = f.min;
		if (Number.isFinite(f.max)) spec.max = f.max;
		if (f.allowMissing) spec.allow_missing = true;
		return spec;
	});
}
