// The name a model goes by when none is given: shared by serve and stream, light enough for either to import.
import { readFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { parse as parseYaml } from "yaml";

/** The name a model is served under when none is given: the registry name, the manifest name, or the file name. */
export async function defaultModelName(source: string): Promise<string> {
	const ref = /^([A-Za-z0-9][A-Za-z0-9._-]*)(@[A-Za-z0-9._-]+)?$/.exec(source);
	if (extname(source).toLowerCase() === ".onnx")
		return basename(source, extname(source));
	try {
		const text = await readFile(
			source.endsWith(".yaml") ? source : join(source, "mlship.yaml"),
			"utf8",
		);
		const name = (parseYaml(text) as { name?: unknown })?.name;
		if (typeof name === "string") return name;
	} catch {
		// not a bundle directory: a registry reference
	}
	return ref?.[1] ?? basename(source);
}
