// What the readers share: the refusal error naming the unsupported element, and the default signatures.
import type { Datatype } from "../../protocol/datatypes.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature } from "../../protocol/types.ts";

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
