// Registration rows: the versions row as stored, and writing a new version (number, signature check, files, aliases).
import type { Manifest } from "../../bundle/manifest.ts";
import type { PreparedRegistration } from "../store/common.ts";
import { toModelVersion } from "../store/common.ts";
import * as errors from "../store/errors.ts";
import type { ModelVersion } from "../types.ts";
import type { Dialect, PendingChange, Session } from "./session.ts";
import { signatureDiff } from "./signature.ts";

/**
 * The predicate for "this entity" ($2), or "no entity": spelled out rather than IS NOT DISTINCT FROM, which
 * PostgreSQL cannot answer from the (name, entity, version) index.
 */
export function entityIs(entity: string | null): string {
	return entity === null ? "entity IS NULL" : "entity = $2";
}

/** The newest version (and manifest) of each name and entity written so far in one transaction. */
export type Latest = Map<string, { version: number; manifest: Manifest }>;

/** A versions row as either database returns it (created_at text or Date, metadata text or parsed JSON). */
export interface VersionRow {
	name: string;
	version: number;
	manifest: string;
	sha256: string;
	created_at: string | Date;
	status: "active" | "archived";
	metadata: string | Record<string, unknown>;
	entity: string | null;
}

export function toVersion(row: VersionRow, aliases: string[]): ModelVersion {
	return toModelVersion(
		{
			...row,
			created_at:
				row.created_at instanceof Date
					? row.created_at.toISOString()
					: row.created_at,
			metadata:
				typeof row.metadata === "string"
					? (JSON.parse(row.metadata) as Record<string, unknown>)
					: row.metadata,
		},
		aliases,
	);
}

/**
 * Writes one prepared registration inside the caller's transaction: the next version number, the signature check
 * against the newest version of the same name (and entity), the rows, and its changes.
 */
export async function insertVersion(
	tx: Session,
	dialect: Dialect,
	change: (e: PendingChange) => void,
	p: PreparedRegistration,
	opts: { allowChange: boolean; latest: Latest },
): Promise<ModelVersion> {
	const { allowChange, latest } = opts;
	const { name, aliases, metadata, manifest, files, entity } = p;
	const now = dialect.now;
	// Inserting or bumping the model row locks it until COMMIT: registrations of one name queue here.
	const counter = await tx.one<{ last_version: number }>(
		`INSERT INTO models (name, last_version, created_at) VALUES ($1, 1, ${now})
		 ON CONFLICT (name) DO UPDATE SET last_version = models.last_version + 1
		 RETURNING last_version`,
		[name],
	);
	const version = Number(counter?.last_version);
	// An entity's versions are compared with that entity's newest: a family may hold different models per entity.
	const scope = `${name}\0${entity ?? ""}`;
	let previous = latest.get(scope);
	if (!previous) {
		const row = await tx.one<{ version: number; manifest: string }>(
			`SELECT version, manifest FROM versions WHERE name = $1 AND ${entityIs(entity)} ORDER BY version DESC LIMIT 1`,
			entity === null ? [name] : [name, entity],
		);
		if (row)
			previous = {
				version: row.version,
				manifest: JSON.parse(row.manifest) as Manifest,
			};
	}
	if (previous && !allowChange) {
		const diff = signatureDiff(previous.manifest, manifest);
		if (diff.length > 0)
			throw errors.signatureChanged(name, previous.version, diff);
	}
	latest.set(scope, { version, manifest });
	const row = await tx.one<VersionRow>(
		`INSERT INTO versions (name, version, manifest, sha256, created_at, status, metadata, entity)
		 VALUES ($1, $2, $3, $4, ${now}, 'active', $5, $6) RETURNING *`,
		[
			name,
			version,
			JSON.stringify(manifest),
			manifest.artifact.sha256,
			JSON.stringify(metadata),
			entity,
		],
	);
	for (const f of files)
		await tx.all(
			"INSERT INTO files (name, version, path, bytes, sha256) VALUES ($1, $2, $3, $4, $5)",
			[name, version, f.path, f.bytes, f.sha256],
		);
	change({ type: "registered", name, version, entity });
	for (const a of aliases) {
		await upsertAlias(tx, name, a, version);
		change({ type: "alias_set", name, version, alias: a, entity });
	}
	return toVersion(row as VersionRow, [...aliases].sort());
}

/** Points an alias at a version (creating or moving it). */
export async function upsertAlias(
	tx: Session,
	name: string,
	alias: string,
	version: number,
): Promise<void> {
	await tx.all(
		"INSERT INTO aliases (name, alias, version) VALUES ($1, $2, $3) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
		[name, alias, version],
	);
}
