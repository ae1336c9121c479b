// Registration rows: the versions row as stored, and writing a new version (number, signature check, files, aliases).
import type { Manifest } from "../../bundle/manifest.ts";
import type { PreparedRegistration } from "../store/common.ts";
import { toModelVersion } from "../store/common.ts";
import * as errors from "../store/errors.ts";
import type { ModelVersion } from "../types.ts";
import { addBlobs } from "./blobs.ts";
import { insertRows } from "./rows.ts";
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

/** The newest stored version (and manifest) of each entity of `name` in `entities` (null: the name's own versions). */
async function newestOf(
	tx: Session,
	name: string,
	entities: readonly (string | null)[],
	latest: Latest,
): Promise<void> {
	const put = (r: {
		version: number;
		manifest: string;
		entity: string | null;
	}) =>
		latest.set(`${name}\0${r.entity ?? ""}`, {
			version: r.version,
			manifest: JSON.parse(r.manifest) as Manifest,
		});
	if (entities.includes(null)) {
		const row = await tx.one<{ version: number; manifest: string }>(
			"SELECT version, manifest FROM versions WHERE name = $1 AND entity IS NULL ORDER BY version DESC LIMIT 1",
			[name],
		);
		if (row) put({ ...row, entity: null });
	}
	const named = entities.filter((e): e is string => e !== null);
	const per = 1000;
	for (let i = 0; i < named.length; i += per) {
		const chunk = named.slice(i, i + per);
		for (const r of await tx.all<{
			version: number;
			manifest: string;
			entity: string;
		}>(newestOfSql(chunk.length), [name, ...chunk]))
			put(r);
	}
}

/**
 * The newest version and manifest of each of `n` entities ($2…) of name $1: one backward probe of the
 * (name, entity, version) index per entity, whatever the table's statistics say. A plain `entity IN (…)` filter let
 * PostgreSQL, before its first ANALYZE of a bulk-loaded table, walk every row of the name through the primary key
 * (92 ms per 1,000 entities at 100,000 rows, a third of a bulk registration's server time).
 */
export function newestOfSql(n: number): string {
	const newest = (col: string) =>
		`(SELECT w.${col} FROM versions w WHERE w.name = $1 AND w.entity = e.column1 ORDER BY w.version DESC LIMIT 1)`;
	const values = Array.from({ length: n }, (_, j) => `($${j + 2})`).join(", ");
	return `SELECT n.entity, n.version, n.manifest FROM (
		SELECT e.column1 AS entity, ${newest("version")} AS version, ${newest("manifest")} AS manifest
		FROM (VALUES ${values}) e) n
	 WHERE n.version IS NOT NULL`;
}

/**
 * Writes prepared registrations, in order, inside the caller's transaction: each name's version numbers (one
 * counter bump per name), the signature check of each against the newest version of the same name (and entity) —
 * earlier items of the same call included —, then the rows, many per statement (a thousand per-entity models are a
 * handful of statements, not thousands), and the changes in item order (registered, then its aliases).
 */
export async function insertVersions(
	tx: Session,
	dialect: Dialect,
	change: (e: PendingChange) => void,
	items: readonly { p: PreparedRegistration; allowChange: boolean }[],
	latest: Latest,
): Promise<ModelVersion[]> {
	const now = dialect.now;
	const byName = new Map<string, number>();
	for (const { p } of items) byName.set(p.name, (byName.get(p.name) ?? 0) + 1);
	// Inserting or bumping the model row locks it until COMMIT: registrations of one name queue here.
	const next = new Map<string, number>();
	for (const [name, count] of byName) {
		const counter = await tx.one<{ last_version: number }>(
			`INSERT INTO models (name, last_version, created_at) VALUES ($1, $2, ${now})
			 ON CONFLICT (name) DO UPDATE SET last_version = models.last_version + $2
			 RETURNING last_version`,
			[name, count],
		);
		next.set(name, Number(counter?.last_version) - count + 1);
		const unseen = new Set<string | null>();
		for (const { p } of items)
			if (p.name === name && !latest.has(`${name}\0${p.entity ?? ""}`))
				unseen.add(p.entity);
		await newestOf(tx, name, [...unseen], latest);
	}
	// An entity's versions are compared with that entity's newest: a family may hold different models per entity.
	const numbered = items.map(({ p, allowChange }) => {
		const version = next.get(p.name) as number;
		next.set(p.name, version + 1);
		const scope = `${p.name}\0${p.entity ?? ""}`;
		const previous = latest.get(scope);
		if (previous && !allowChange) {
			const diff = signatureDiff(previous.manifest, p.manifest);
			if (diff.length > 0)
				throw errors.signatureChanged(p.name, previous.version, diff);
		}
		latest.set(scope, { version, manifest: p.manifest });
		return { p, version };
	});
	// Only the database's creation time comes back: the rest of each row is what was sent.
	const texts = numbered.map(({ p }) => ({
		manifest: JSON.stringify(p.manifest),
		metadata: JSON.stringify(p.metadata),
	}));
	const rows = await insertRows<{
		name: string;
		version: number;
		created_at: string | Date;
	}>(
		tx,
		"INSERT INTO versions (name, version, manifest, sha256, created_at, status, metadata, entity)",
		numbered.map(({ p, version }, i) => [
			p.name,
			version,
			texts[i]?.manifest as string,
			p.manifest.artifact.sha256,
			texts[i]?.metadata as string,
			p.entity,
		]),
		(k) =>
			`($${k}, $${k + 1}, $${k + 2}, $${k + 3}, ${now}, 'active', $${k + 4}, $${k + 5})`,
		" RETURNING name, version, created_at",
	);
	const created = new Map(
		rows.map((r) => [`${r.name}\0${r.version}`, r.created_at]),
	);
	await addBlobs(
		tx,
		numbered.flatMap(({ p }) => p.files),
	);
	const out: ModelVersion[] = [];
	for (const { p, version } of numbered) {
		const { name, entity, aliases } = p;
		change({ type: "registered", name, version, entity });
		for (const a of aliases) {
			await upsertAlias(tx, name, a, version);
			change({ type: "alias_set", name, version, alias: a, entity });
		}
		const text = texts[out.length] as { manifest: string; metadata: string };
		out.push(
			toVersion(
				{
					name,
					version,
					manifest: text.manifest,
					sha256: p.manifest.artifact.sha256,
					created_at: created.get(`${name}\0${version}`) as string | Date,
					status: "active",
					metadata: text.metadata,
					entity,
				},
				[...aliases].sort(),
			),
		);
	}
	return out;
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
