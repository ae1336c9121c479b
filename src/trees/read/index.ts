// Reads a model file into the tree representation, choosing the reader by content (and extension for messages).
import { MlshipError } from "../../protocol/errors.ts";
import type { TreeModel } from "../ir.ts";
import { readLightgbm } from "./lightgbm.ts";
import { readOnnx } from "./onnx.ts";
import { readPmml } from "./pmml.ts";
import { readXgboost } from "./xgboost.ts";

/** Bare model file extensions the tree runtime reads. */
export const TREE_EXTENSIONS = [".pmml", ".json", ".txt"] as const;

/**
 * Reads XGBoost JSON, LightGBM text, PMML or ONNX bytes. `source` names the file in errors; a file in none of
 * these formats fails with MLSHIP_INVALID_BUNDLE, a model the representation cannot hold with
 * MLSHIP_UNSUPPORTED_MODEL naming the node or element.
 */
export function readTreeModel(bytes: Uint8Array, source: string): TreeModel {
	let i = 0;
	while (
		i < bytes.length &&
		i < 4096 &&
		/\s/.test(String.fromCharCode(bytes[i] as number))
	)
		i++;
	const first = bytes[i];
	const text = () => new TextDecoder().decode(bytes);
	if (first === 0x7b /* { */) return readXgboost(text(), source);
	if (first === 0x3c /* < */) return readPmml(text(), source);
	if (
		bytes.length >= i + 4 &&
		bytes.subarray(i, i + 4).every((b, k) => b === "tree".charCodeAt(k))
	)
		return readLightgbm(text(), source);
	if (first === 0x08 /* ONNX ModelProto field 1 (ir_version), varint */)
		return readOnnx(bytes, source);
	throw new MlshipError(
		"MLSHIP_INVALID_BUNDLE",
		`${source}${bytes.length === 0 ? " is empty" : ""}: not an XGBoost JSON, LightGBM text, PMML or ONNX model; give the file the library wrote (xgboost save_model("m.json"), lightgbm save_model("m.txt"), sklearn2pmml, skl2onnx)`,
	);
}
