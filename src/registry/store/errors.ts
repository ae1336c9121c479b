// The registry's errors, shared by every store so SQLite and PostgreSQL say the same thing.
import { MlshipError } from "../../protocol/errors.ts";
import { didYouMean } from "../../protocol/suggest.ts";

/** `known`: the registered names, for a "did you mean" when one is near. */
export function notRegistered(
	name: string,
	location: string,
	known: readonly string[] = [],
): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`model '${name}' is not registered in ${location}${didYouMean(name, known)} (see 'mlship models list')`,
	);
}

export function noVersion(
	name: string,
	version: number,
	have: readonly number[],
): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`model '${name}' has no version ${version} (versions: ${have.join(", ")})`,
	);
}

export function noAlias(
	name: string,
	alias: string,
	have: readonly string[],
): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`model '${name}' has no alias '${alias}'${didYouMean(alias, have)} (aliases: ${have.join(", ") || "none"}; set one with 'mlship models alias ${name} ${alias} <version>')`,
	);
}

export function allArchived(name: string): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`every version of model '${name}' is archived; name one explicitly (${name}@<version>) or register a new one`,
	);
}

export function aliasToArchived(
	name: string,
	alias: string,
	version: number,
): MlshipError {
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`cannot point alias '${alias}' at ${name}@${version}: that version is archived; choose an active version`,
	);
}

/** Archiving or deleting a version aliases point at: refused, naming them and how to move them. */
export function aliased(
	what: "archive" | "delete",
	name: string,
	version: number,
	aliases: readonly string[],
): MlshipError {
	const many = aliases.length > 1;
	const them = many ? "them" : "it";
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`cannot ${what} ${name}@${version}: alias${many ? "es" : ""} ${aliases.map((a) => `'${a}'`).join(", ")} point${many ? "" : "s"} at it; move ${them} first ('mlship models alias ${name} ${aliases[0]} <version>')${what === "delete" ? `, or delete anyway with --force (library: { force: true }), which deletes ${them} too` : ""}`,
	);
}

export function storedDigestMismatch(
	source: string,
	manifestSha: string,
	registeredSha: string,
): MlshipError {
	return new MlshipError(
		"MLSHIP_INTEGRITY",
		`${source}: the stored manifest's artifact sha256 ${manifestSha} differs from the registered ${registeredSha}; the registry database was modified`,
	);
}

export function noEntity(name: string, entity: string): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`model '${name}' has no active version for entity '${entity}' (see 'mlship models entities ${name}')`,
	);
}

export function onlyEntities(name: string): MlshipError {
	return new MlshipError(
		"MLSHIP_MODEL_NOT_FOUND",
		`model '${name}' has only per-entity versions: name an entity (${name}#ENTITY), a version (${name}@N), or register a default version without --entity`,
	);
}

export function signatureChanged(
	name: string,
	latest: number,
	diff: readonly string[],
): MlshipError {
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`cannot register a new version of '${name}': its signature differs from ${name}@${latest}:\n${diff.map((d) => `  - ${d}`).join("\n")}\nIf it is another model, register it under its own name (--name); if the change is intended, pass --allow-signature-change (library: { allowSignatureChange: true })`,
	);
}
