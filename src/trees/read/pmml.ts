// Reads PMML 4.x TreeModel, MiningModel, RegressionModel and GeneralRegressionModel into the tree representation.
import type { TreeModel } from "../ir.ts";
import { refuse } from "./common.ts";

export function readPmml(_text: string, source: string): TreeModel {
	return refuse(source, "PMML is not supported yet");
}
