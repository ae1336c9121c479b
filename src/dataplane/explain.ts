// Explanations as users read them: per row and target, the base value, the raw output, every feature's
// contribution by column name, and the top-k by magnitude.
import { invalidInput } from "../protocol/errors.ts";
import type {
	InferenceRequest,
	Parameters,
	Tensor,
} from "../protocol/types.ts";
import type { Explanation } from "../runtime/types.ts";

/** One feature's contribution to one output. */
export interface Contribution {
	feature: string;
	value: number;
}

/** One row's explanation of one target (a class of a classifier, or a regression output). */
export interface TargetExplanation {
	/** Class name (classifiers; the positive class of a binary one) or output name. */
	target: string;
	/** Expected raw output over the training data. */
	base: number;
	/** The raw output for this row (margin, before the link): base + Σ values. */
	output: number;
	/** Contribution of every feature. */
	values: Record<string, number>;
	/** The `top` largest contributions by magnitude, largest first. */
	top: Contribution[];
}

export interface ExplainResult {
	/** How the values were computed: "tree_path_dependent" (exact TreeSHAP), "linear" (exact), "kernel" (KernelSHAP). */
	method: string;
	/**
	 * The space contributions add up in: `raw`, the model's raw output (log-odds for logistic models; exact
	 * methods), or `output`, the model's output as served (probabilities; KernelSHAP).
	 */
	space: "raw" | "output";
	/** KernelSHAP: coalitions evaluated per row. */
	samples?: number;
	/** Per input row, per target. */
	explanations: TargetExplanation[][];
}

/** How to explain: `exact` (the runtime's own method) or `kernel` (KernelSHAP, any model with a reference profile). */
export interface ExplainOptions {
	top?: number | undefined;
	/** Default: exact when the runtime can explain, else KernelSHAP when the bundle has a reference profile. */
	method?: "exact" | "kernel" | undefined;
	/** KernelSHAP: most coalitions per row (default 2048; every one when 2^features − 2 fit). */
	samples?: number | undefined;
	/** KernelSHAP: the sampler's seed (default 1). */
	seed?: number | undefined;
}

/** Checks a top-k request: an integer from 1 to 1000 (default 5). */
export function topK(k: unknown, where = "top"): number {
	if (k === undefined) return 5;
	const n = typeof k === "string" ? Number(k) : k;
	if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 1000)
		throw invalidInput(
			`${where} must be an integer from 1 to 1000, got ${JSON.stringify(k)}`,
		);
	return n;
}

/** Shapes a runtime's explanation; `targets` names the raw outputs (class names or the output name). */
export function shapeExplanation(
	e: Explanation,
	targets: readonly string[],
	top: number,
): ExplainResult {
	const nf = e.features.length;
	const T = e.targets;
	const explanations: TargetExplanation[][] = [];
	for (let r = 0; r < e.rows; r++) {
		const row: TargetExplanation[] = [];
		for (let t = 0; t < T; t++) {
			const o = (r * T + t) * nf;
			const values: Record<string, number> = {};
			const all: Contribution[] = [];
			let output = e.base[t] as number;
			for (let j = 0; j < nf; j++) {
				const v = e.values[o + j] as number;
				const name = e.features[j] as string;
				values[name] = (values[name] ?? 0) + v;
				output += v;
			}
			for (const [feature, value] of Object.entries(values))
				all.push({ feature, value });
			all.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
			row.push({
				target: targets[t] ?? String(t),
				base: e.base[t] as number,
				output,
				values,
				top: all.slice(0, top),
			});
		}
		explanations.push(row);
	}
	return { method: e.method, space: "raw", explanations };
}

/** Name of the extra output tensor an infer request with `parameters.explain` gets. */
export const EXPLANATION_OUTPUT = "explanation";

/**
 * Reads `explain` (bool, or "true"/"false") and `explain_top` (integer 1..1000, default 5) from an OIP infer
 * request's parameters: undefined when no explanation is asked for.
 */
export function explainRequest(
	parameters: Parameters | undefined,
): { top: number } | undefined {
	const on = parameters?.explain;
	if (on === undefined || on === false || on === "false") {
		if (parameters?.explain_top !== undefined)
			throw invalidInput(
				"parameters.explain_top needs parameters.explain: true",
			);
		return undefined;
	}
	if (on !== true && on !== "true")
		throw invalidInput(
			`parameters.explain must be true or false, got ${JSON.stringify(on)}`,
		);
	return { top: topK(parameters?.explain_top, "parameters.explain_top") };
}

/**
 * An explanation as one output tensor: BYTES, shape [rows], each element the JSON of that row's explanation (the
 * array of per-target `{target, base, output, values, top}` the /explain endpoint gives).
 */
export function explanationTensor(x: ExplainResult): Tensor {
	return {
		name: EXPLANATION_OUTPUT,
		datatype: "BYTES",
		shape: [x.explanations.length],
		data: x.explanations.map((row) => JSON.stringify(row)),
	};
}

/** An OIP request with `parameters.explain` (and `explain_top: k`) set; the request itself when `k` is not. */
export function explainOip(
	request: InferenceRequest,
	k: number | undefined,
): InferenceRequest {
	if (!k) return request;
	return {
		...request,
		parameters: { ...request.parameters, explain: true, explain_top: k },
	};
}

/**
 * One row's top-k contributions as `explain_<i>_feature`/`explain_<i>_value` keys (what `batch run --explain` adds
 * as columns): of the target with the largest raw output (a classifier's predicted class); "" and 0 past the
 * features there are.
 */
export function explainKeys(
	row: readonly TargetExplanation[],
	k: number,
): Record<string, string | number> {
	let best: TargetExplanation | undefined;
	for (const t of row) if (!best || t.output > best.output) best = t;
	const out: Record<string, string | number> = {};
	for (let i = 0; i < k; i++) {
		const c = best?.top[i];
		out[`explain_${i + 1}_feature`] = c?.feature ?? "";
		out[`explain_${i + 1}_value`] = c?.value ?? 0;
	}
	return out;
}
