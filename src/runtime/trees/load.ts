// Reads a trees-runtime artifact and fits it to the bundle's declared signature (names checked, inputs by name).
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature } from "../../protocol/types.ts";
import type { TreeModel } from "../../trees/ir.ts";
import { readTreeModel } from "../../trees/read/index.ts";

/**
 * The model in `bytes`, answering with the manifest's signature: every manifest input and output must be one the
 * model file has (and every model input must be declared); features read inputs by name, outputs take the
 * manifest's datatypes. Without `declared` the file's own signature is used.
 */
export function loadTreeModel(
	bytes: Uint8Array,
	source: string,
	declared?: Signature,
): TreeModel {
	const m = readTreeModel(bytes, source);
	if (!declared) return m;
	const own = m.signature;
	for (const [kind, decl, real] of [
		["input", declared.inputs, own.inputs],
		["output", declared.outputs, own.outputs],
	] as const) {
		const names = new Set(real.map((t) => t.name));
		for (const t of decl)
			if (!names.has(t.name))
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`${source}: manifest ${kind} '${t.name}' is not in the model file (its ${kind}s: ${real.map((x) => x.name).join(", ")})`,
				);
	}
	const index = new Map(declared.inputs.map((t, i) => [t.name, i]));
	const features = m.features.map((f) => {
		const name = own.inputs[f.input]?.name ?? "";
		const i = index.get(name);
		if (i === undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`${source}: model input '${name}' is missing from the manifest signature`,
			);
		return { ...f, input: i };
	});
	return { ...m, features, signature: declared };
}
