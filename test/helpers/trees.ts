// A tree fixture read as the trees runtime reads it: the bundle, its model in the tree representation (with the
// manifest's signature) and its golden records encoded as input tensors.
import assert from "node:assert/strict";
import { type Bundle, readBundle } from "../../src/bundle/bundle.ts";
import { artifactBytes } from "../../src/bundle/types.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { loadTreeModel } from "../../src/runtime/trees/load.ts";
import type { TreeModel } from "../../src/trees/ir.ts";
import { bundleDir, golden } from "./fixtures.ts";

export async function treeFixture(
	name: string,
): Promise<{ bundle: Bundle; model: TreeModel; tensors: Tensor[] }> {
	const bundle = await readBundle(bundleDir(name));
	const model = loadTreeModel(
		artifactBytes(bundle),
		name,
		bundle.manifest.signature,
	);
	const { tensors, errors } = encodeRecords(
		planTable(bundle.manifest),
		golden(name).records,
	);
	assert.deepEqual(errors, [], `${name}: golden records encode`);
	return { bundle, model, tensors };
}
