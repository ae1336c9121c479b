// The manifest's signature checked against the ONNX graph it describes.
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature } from "../../protocol/types.ts";

/** Checks that the manifest's signature names tensors the graph really has, with the same datatypes. */
export function checkSignature(
	declared: Signature,
	graph: Signature,
	source: string,
): void {
	for (const [kind, decl, real] of [
		["input", declared.inputs, graph.inputs],
		["output", declared.outputs, graph.outputs],
	] as const) {
		const byName = new Map(real.map((t) => [t.name, t]));
		for (const t of decl) {
			const g = byName.get(t.name);
			if (!g)
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`${source}: manifest ${kind} '${t.name}' is not in the ONNX graph (graph ${kind}s: ${real.map((x) => x.name).join(", ")})`,
				);
			if (g.datatype !== t.datatype)
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`${source}: manifest says ${kind} '${t.name}' is ${t.datatype} but the graph has ${g.datatype}`,
				);
		}
	}
	const declaredInputs = new Set(declared.inputs.map((t) => t.name));
	for (const g of graph.inputs)
		if (!declaredInputs.has(g.name))
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`${source}: graph input '${g.name}' is missing from the manifest signature`,
			);
}
