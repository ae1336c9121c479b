// Refuses a job whose output (predictions or errors file) is one of its input files: writing it would destroy the input.
import { realpathSync } from "node:fs";
import { basename, dirname, join, matchesGlob, resolve } from "node:path";
import { MlshipError } from "../protocol/errors.ts";

/** The real path of `path` (symlinks resolved); for a file not yet there, its real directory plus its name. */
function realPath(path: string): string {
	const abs = resolve(path);
	try {
		return realpathSync(abs);
	} catch {
		try {
			return join(realpathSync(dirname(abs)), basename(abs));
		} catch {
			return abs;
		}
	}
}

const GLOB = /[*?[{]/;

/**
 * Throws MLSHIP_INVALID_ARGUMENT when an output file is the input file (same real path), matches the input glob,
 * or is another of the outputs (the errors file would replace the predictions).
 * @example refuseOverwrite("x.csv", [["--output", "x.csv"]]) // throws: --output 'x.csv' is the input file
 */
export function refuseOverwrite(
	input: string,
	outputs: readonly (readonly [role: string, path: string])[],
): void {
	const glob = GLOB.test(input);
	// A glob's directory part may hold symlinks too: resolve it, then match the name part.
	const inReal = glob
		? join(realPath(dirname(resolve(input))), basename(input))
		: realPath(input);
	const seen = new Map<string, string>();
	for (const [role, path] of outputs) {
		const outReal = realPath(path);
		const other = seen.get(outReal);
		if (other !== undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${role} '${path}' is also the ${other} file; give them different paths`,
			);
		seen.set(outReal, role);
		if (glob ? matchesGlob(outReal, inReal) : outReal === inReal)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${role} '${path}' ${glob ? `matches the input glob '${input}'` : `is the input file${resolve(path) === resolve(input) ? "" : ` '${input}'`}`}: writing it would overwrite the rows being scored; choose another ${role} path`,
			);
	}
}
