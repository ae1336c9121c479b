// What the readers share: the refusal error naming the unsupported element, and the default signatures.
import type { Datatype } from "../../protocol/datatypes.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature } from "../../protocol/types.ts";
import { MAX_TARGETS } from "../ir.ts";

/** Most input columns a model may declare (a hostile header cannot make us allocate more). */
export const MAX_FEATURES = 1_000_000;

/** Checks a count of outputs (classes, targets) read from a file before anything is allocated for it. */
export function checkTargets(n: number, where: string): number {
	if (!Number.isInteger(n) || n < 1 || n > MAX_TARGETS)
		refuse(where, `${n} outputs (from 1 to ${MAX_TARGETS} are supported)`);
	return n;
}

/** Refuses a model: `where` names the file and the node or element the reader cannot represent. */
export function refuse(where: string, why: string): never {
	throw new MlshipError("MLSHIP_UNSUPPORTED_MODEL", `${where}: ${why}`);
}

/**
 * The signature of a model with one float input of `features` columns: classifiers (`classes` > 0) output
 * `label` INT64 [-1] and `probabilities` FP32 [-1, classes]; regressors `variable` FP32 [-1, targets].
 */
export function floatInputSignature(
	features: number,
	datatype: Datatype,
	classes: number,
	targets: number,
): Signature {
	return {
		inputs: [{ name: "float_input", datatype, shape: [-1, features] }],
		outputs:
			classes > 0
				? [
						{ name: "label", datatype: "INT64", shape: [-1] },
						{ name: "probabilities", datatype: "FP32", shape: [-1, classes] },
					]
				: [{ name: "variable", datatype: "FP32", shape: [-1, targets] }],
	};
}
