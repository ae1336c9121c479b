// What every `mlship models` subcommand shares: --registry/--json, opening the registry, metadata and version arguments.
import type { Command } from "commander";
import { MlshipError } from "../protocol/errors.ts";
import { defaultRegistryUri, openRegistry } from "../registry/open.ts";
import type { ModelStore } from "../registry/types.ts";

export interface CommonOpts {
	registry: string;
	json?: boolean;
}

/** Adds --registry and --json to a subcommand. */
export function common(cmd: Command): Command {
	return cmd
		.option(
			"--registry <uri>",
			"registry: sqlite:PATH, a .db file or postgres://USER@HOST/DB (env MLSHIP_REGISTRY)",
			defaultRegistryUri(),
		)
		.option("--json", "print machine-readable JSON");
}

/** Opens the registry, runs `fn`, always closes it. */
export async function withRegistry<T>(
	uri: string,
	fn: (store: ModelStore) => Promise<T>,
): Promise<T> {
	const store = await openRegistry(uri);
	try {
		return await fn(store);
	} finally {
		await store.close();
	}
}

export const collect = (value: string, previous: string[] = []): string[] => [
	...previous,
	value,
];

/** `key=value` is a string; `key:=json` is a JSON value (number, boolean, object…), as in HTTPie. */
export function parseMeta(pairs: string[]): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const pair of pairs) {
		const m = /^([^=:]+)(:?=)(.*)$/s.exec(pair);
		if (!m)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`--meta '${pair}': expected key=value (a string) or key:=json (e.g. accuracy:=0.95)`,
			);
		const [, key = "", op, value = ""] = m;
		if (op === "=") out[key] = value;
		else
			try {
				out[key] = JSON.parse(value);
			} catch {
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`--meta '${pair}': '${value}' is not valid JSON`,
				);
			}
	}
	return out;
}

export function parseVersion(s: string): number {
	if (!/^[0-9]+$/.test(s) || Number(s) < 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid version '${s}': versions are whole numbers from 1`,
		);
	return Number(s);
}
