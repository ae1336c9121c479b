// Opens a registry from a URI (sqlite:PATH, a .db file, postgres://…, or the default) as a ModelStore.
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MlshipError } from "../protocol/errors.ts";
import { redactUrl } from "../protocol/redact.ts";
import { SqliteStore } from "./store/sqlite/store.ts";
import type { ModelStore } from "./types.ts";

/** The registry used when none is given: env `MLSHIP_REGISTRY`, else `sqlite:.mlship/registry.db` (relative to cwd). */
export function defaultRegistryUri(): string {
	return process.env.MLSHIP_REGISTRY || "sqlite:.mlship/registry.db";
}

/** The SQLite file a URI names (`:memory:` for an in-memory database), or undefined when it is not a SQLite URI. */
function sqlitePath(uri: string): string | undefined {
	if (uri.startsWith("sqlite://")) return uri.slice("sqlite://".length);
	if (uri.startsWith("sqlite:")) return uri.slice("sqlite:".length);
	if (
		/\.(db|sqlite|sqlite3)$/i.test(uri) &&
		!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)
	)
		return uri;
	return undefined;
}

/**
 * Opens the registry at `uri` (default: {@link defaultRegistryUri}), creating the database and its directory if needed.
 * Accepts `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:`, plain paths ending in .db, .sqlite or .sqlite3, and
 * `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`; the database must exist, its tables are
 * created on first open).
 * @example const store = await openRegistry("sqlite:/var/lib/mlship/registry.db");
 * @example const shared = await openRegistry("postgres://mlship@db.internal/registry");
 */
export async function openRegistry(
	uri: string = defaultRegistryUri(),
): Promise<ModelStore> {
	if (/^postgres(ql)?:\/\//i.test(uri)) {
		// Loaded on demand, so SQLite users never load the PostgreSQL driver.
		const { PostgresStore } = await import("./store/postgres/store.ts");
		return PostgresStore.open(uri);
	}
	const path = sqlitePath(uri);
	if (path === undefined || path === "")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`unknown registry '${redactUrl(uri)}': expected sqlite:PATH, a path ending in .db or .sqlite (e.g. sqlite:.mlship/registry.db), or postgres://USER@HOST/DATABASE`,
		);
	if (path === ":memory:") return new SqliteStore(path);
	const full = resolve(path);
	mkdirSync(dirname(full), { recursive: true });
	return new SqliteStore(full);
}
