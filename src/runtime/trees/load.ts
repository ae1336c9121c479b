// Reads a trees-runtime artifact and fits it to the bundle's declared signature (names checked, inputs by name).

import type { Manifest } from "../../bundle/manifest.ts";
import { effectiveFeatures } from "../../codec/table.ts";
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

/**
 * Names features as the manifest's table columns do (explanations speak the user's column names): a feature that
 * reads a column as it is takes that column's name; an encoded one (one-hot) keeps "column=value".
 */
export function nameFeatures(
	m: TreeModel,
	manifest: Pick<Manifest, "signature" | "features">,
): TreeModel {
	let cols: { name: string; input?: string | undefined }[];
	try {
		cols = effectiveFeatures(manifest);
	} catch {
		return m;
	}
	const at = new Map<string, string>();
	const next = new Map<string, number>();
	const only =
		manifest.signature.inputs.length === 1
			? manifest.signature.inputs[0]?.name
			: undefined;
	for (const c of cols) {
		const input = c.input ?? only ?? c.name;
		const k = next.get(input) ?? 0;
		next.set(input, k + 1);
		at.set(`${input}\u0000${k}`, c.name);
	}
	const features = m.features.map((f) => {
		const col = at.get(`${m.signature.inputs[f.input]?.name}\u0000${f.column}`);
		if (!col) return f;
		return { ...f, name: f.equals === undefined ? col : `${col}=${f.equals}` };
	});
	return { ...m, features };
}
