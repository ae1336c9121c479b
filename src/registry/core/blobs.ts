// Content-addressed file storage: each distinct file (by sha256) is stored once in `blobs`, with the number of
// versions whose manifests name it in `blob_refs`; a file goes when the last version naming it does.
import { manifestFiles } from "../../bundle/bundle.ts";
import type { Manifest } from "../../bundle/manifest.ts";
import { insertRows, placeholders } from "./rows.ts";
import type { Session } from "./session.ts";

/** How many times each digest is named, in digest order (every writer locks `blob_refs` rows in the same order). */
function tally(digests: Iterable<string>): [string, number][] {
	const counts = new Map<string, number>();
	for (const d of digests) counts.set(d, (counts.get(d) ?? 0) + 1);
	return [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Every file digest the manifests name, once per naming (a version naming one file twice holds two references). */
export function digestsOf(manifests: Iterable<Manifest>): string[] {
	const out: string[] = [];
	for (const m of manifests)
		for (const f of manifestFiles(m)) out.push(f.sha256);
	return out;
}

/**
 * Adds one reference per file of the registered versions (in the caller's transaction) and stores the bytes of
 * files no version held before; bytes already stored are not sent again, so retrains with byte-identical files
 * (per-entity families of a few shapes) write a counter per batch instead of a copy per version.
 */
export async function addBlobs(
	tx: Session,
	files: readonly { sha256: string; bytes: Uint8Array }[],
): Promise<void> {
	if (files.length === 0) return;
	const counts = tally(files.map((f) => f.sha256));
	// A row whose count after the upsert is what this write added did not exist before: its bytes are new.
	const after = await insertRows<{ sha256: string; refs: number | string }>(
		tx,
		"INSERT INTO blob_refs (sha256, refs)",
		counts,
		placeholders(2),
		" ON CONFLICT (sha256) DO UPDATE SET refs = blob_refs.refs + excluded.refs RETURNING sha256, refs",
	);
	const added = new Map(counts);
	const fresh = new Set(
		after
			.filter((r) => Number(r.refs) === added.get(r.sha256))
			.map((r) => r.sha256),
	);
	if (fresh.size === 0) return;
	const bytes = new Map<string, Uint8Array>();
	for (const f of files) if (fresh.has(f.sha256)) bytes.set(f.sha256, f.bytes);
	await insertRows(
		tx,
		"INSERT INTO blobs (sha256, bytes)",
		[...bytes],
		placeholders(2),
		" ON CONFLICT (sha256) DO NOTHING",
	);
}

/**
 * Drops one reference per file digest in `digests` (the files of deleted versions, in the caller's transaction) and
 * deletes each file no version names any more. Returns the digests whose bytes were deleted.
 */
export async function releaseBlobs(
	tx: Session,
	digests: Iterable<string>,
): Promise<string[]> {
	const counts = tally(digests);
	if (counts.length === 0) return [];
	// The same upsert as addBlobs, with negative counts: its rows are locked in the order of the VALUES list (digest
	// order), as addBlobs locks them. An UPDATE … FROM (VALUES …) locked them in its join's order, so a registration
	// and a deletion sharing files could deadlock (PostgreSQL 40P01). A row that does not exist (it should) is
	// inserted below zero and deleted just below.
	await insertRows(
		tx,
		"INSERT INTO blob_refs (sha256, refs)",
		counts.map(([d, n]) => [d, -n]),
		placeholders(2),
		" ON CONFLICT (sha256) DO UPDATE SET refs = blob_refs.refs + excluded.refs",
	);
	const gone: string[] = [];
	const per = 1000;
	for (let i = 0; i < counts.length; i += per) {
		const chunk = counts.slice(i, i + per).map(([d]) => d);
		const list = chunk.map((_, j) => `$${j + 1}`).join(", ");
		const rows = await tx.all<{ sha256: string }>(
			`DELETE FROM blob_refs WHERE sha256 IN (${list}) AND refs <= 0 RETURNING sha256`,
			chunk,
		);
		if (rows.length === 0) continue;
		const dead = rows.map((r) => r.sha256);
		await tx.all(
			`DELETE FROM blobs WHERE sha256 IN (${dead.map((_, j) => `$${j + 1}`).join(", ")})`,
			dead,
		);
		gone.push(...dead);
	}
	return gone;
}

/** The stored bytes of `digests` (those that exist), by digest. */
export async function readBlobs(
	s: Session,
	digests: readonly string[],
): Promise<Map<string, Uint8Array>> {
	const out = new Map<string, Uint8Array>();
	const unique = [...new Set(digests)];
	if (unique.length === 0) return out;
	const rows = await s.all<{ sha256: string; bytes: Uint8Array }>(
		`SELECT sha256, bytes FROM blobs WHERE sha256 IN (${unique.map((_, j) => `$${j + 1}`).join(", ")})`,
		unique,
	);
	for (const r of rows) out.set(r.sha256, r.bytes);
	return out;
}
