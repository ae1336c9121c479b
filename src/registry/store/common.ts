// What every ModelStore does the same way, whatever the database: preparing a registration, building versions.
import {
	type Bundle,
	manifestFiles,
	sha256Hex,
	verifyFiles,
} from "../../bundle/bundle.ts";
import type { Manifest } from "../../bundle/manifest.ts";
import {
	assertAlias,
	assertEntity,
	assertName,
	checkMetadata,
	type ModelVersion,
	type RegisterOptions,
} from "../types.ts";

/** A registration checked and ready to write: the name, aliases, metadata, manifest and file bytes. */
export interface PreparedRegistration {
	name: string;
	aliases: string[];
	metadata: Record<string, unknown>;
	manifest: Manifest;
	files: { path: string; bytes: Uint8Array; sha256: string }[];
	/** The entity of a per-entity family's version, or null. */
	entity: string | null;
}

/**
 * Validates a registration before any write: names, aliases and metadata, and the bundle's digests
 * (never store what would not open again). The stored manifest carries the registered name.
 */
export function prepareRegistration(
	bundle: Bundle,
	opts: RegisterOptions = {},
): PreparedRegistration {
	const name = opts.name ?? bundle.manifest.name;
	assertName(name);
	const aliases = [...new Set(opts.aliases ?? [])];
	for (const a of aliases) assertAlias(a);
	const metadata = checkMetadata(opts.metadata ?? {});
	if (opts.entity !== undefined) assertEntity(opts.entity);
	verifyFiles(bundle.manifest, bundle.files, bundle.source);
	const manifest: Manifest = { ...bundle.manifest, name };
	const files = manifestFiles(manifest).map((f) => {
		const bytes = bundle.files.get(f.path) as Uint8Array;
		return { path: f.path, bytes, sha256: sha256Hex(bytes) };
	});
	return {
		name,
		aliases,
		metadata,
		manifest,
		files,
		entity: opts.entity ?? null,
	};
}

/** A version row as every store reads it (created_at as ISO text, metadata as an object). */
export interface VersionFields {
	name: string;
	version: number;
	manifest: string;
	sha256: string;
	created_at: string;
	status: "active" | "archived";
	metadata: Record<string, unknown>;
	entity: string | null;
}

/** Builds the ModelVersion of a stored row. */
export function toModelVersion(
	row: VersionFields,
	aliases: string[],
): ModelVersion {
	const manifest = JSON.parse(row.manifest) as Manifest;
	const v: ModelVersion = {
		name: row.name,
		version: row.version,
		sha256: row.sha256,
		manifest,
		createdAt: row.created_at,
		status: row.status,
		aliases,
		metadata: row.metadata,
	};
	if (manifest.description !== undefined) v.description = manifest.description;
	if (row.entity !== null) v.entity = row.entity;
	return v;
}
