// SqliteStore: the shared contract on temp-dir databases, plus integrity, multi-process writes and migrations.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { type Bundle, readBundle } from "../../src/bundle/bundle.ts";
import {
	MIGRATION_SQL,
	SCHEMA_VERSION,
	SqliteStore,
} from "../../src/registry/store/sqlite/store.ts";
import {
	checkMigratedFiles,
	rejectsWith,
	runStoreContract,
} from "./store.contract.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "models");
const run = promisify(execFile);

runStoreContract("sqlite", async (opts) => {
	const dir = await mkdtemp(join(tmpdir(), "mlship-reg-"));
	const path = join(dir, "registry.db");
	return {
		store: new SqliteStore(path, opts),
		sql: async (text) => {
			const raw = new DatabaseSync(path, { timeout: 10_000 });
			try {
				return raw.prepare(text).all() as Record<string, unknown>[];
			} finally {
				raw.close();
			}
		},
		reopen: async () => new SqliteStore(path),
		cleanup: () => rm(dir, { recursive: true, force: true }),
	};
});

describe("SqliteStore", () => {
	let dir: string;
	let iris: Bundle;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-sqlite-"));
		iris = await readBundle(join(FIXTURES, "iris-logreg"));
	});
	after(() => rm(dir, { recursive: true, force: true }));

	it("refuses a blob changed in the database (MLSHIP_INTEGRITY), every time it is opened, in every version sharing it", async () => {
		const path = join(dir, "corrupt.db");
		const store = new SqliteStore(path);
		try {
			await store.register(iris);
			await store.register(iris);
			const gbdt = await readBundle(join(FIXTURES, "breast-cancer-gbdt"));
			await store.register(gbdt);
			assert.equal(
				(await store.openBundle("iris-logreg@1")).manifest.name,
				"iris-logreg",
			);
			const raw = new DatabaseSync(path);
			// flip one byte in the middle of the artifact both versions name (same length, so only the digest can tell)
			const { bytes } = raw
				.prepare("SELECT bytes FROM blobs WHERE sha256 = ?")
				.get(iris.manifest.artifact.sha256) as {
				bytes: Uint8Array;
			};
			const bad = new Uint8Array(bytes);
			const mid = bad.length >> 1;
			bad[mid] = (bad[mid] ?? 0) ^ 0xff;
			raw
				.prepare("UPDATE blobs SET bytes = ? WHERE sha256 = ?")
				.run(bad, iris.manifest.artifact.sha256);
			raw.close();
			for (const ref of ["iris-logreg@1", "iris-logreg@2"])
				await rejectsWith(
					store.openBundle(ref),
					"MLSHIP_INTEGRITY",
					new RegExp(`registry:${ref}.*sha256`),
				);
			await rejectsWith(
				store.openBundle(await store.get("iris-logreg@1")),
				"MLSHIP_INTEGRITY",
			);
			const other = new SqliteStore(path);
			await rejectsWith(other.openBundle("iris-logreg@1"), "MLSHIP_INTEGRITY");
			await other.close();
			const file = gbdt.manifest.artifact.path;
			const ok = await store.openBundle("breast-cancer-gbdt@1");
			assert.deepEqual(
				ok.files.get(file),
				gbdt.files.get(file),
				"an untouched file still opens",
			);
		} finally {
			await store.close();
		}
	});

	it("migrates a registry written with a copy of the files per version: versions open, shared files counted once", async () => {
		const path = join(dir, "old-files.db");
		const raw = new DatabaseSync(path);
		const upto = MIGRATION_SQL.findIndex((m) =>
			m.includes("CREATE TABLE blobs"),
		);
		assert.ok(upto > 0);
		for (const m of MIGRATION_SQL.slice(0, upto)) raw.exec(m);
		raw.exec(`PRAGMA user_version = ${upto}`);
		// As the previous mlship wrote them: a files row with the bytes for every file of every version.
		const manifest = JSON.stringify(iris.manifest);
		const a = iris.manifest.artifact;
		raw.exec(
			"INSERT INTO models (name, last_version, created_at) VALUES ('iris-logreg', 2, '2026-01-01T00:00:00.000Z')",
		);
		for (const v of [1, 2]) {
			raw
				.prepare(
					"INSERT INTO versions (name, version, manifest, sha256, created_at, status, metadata) VALUES ('iris-logreg', ?, ?, ?, '2026-01-01T00:00:00.000Z', 'active', '{}')",
				)
				.run(v, manifest, a.sha256);
			raw
				.prepare(
					"INSERT INTO files (name, version, path, bytes, sha256) VALUES ('iris-logreg', ?, ?, ?, ?)",
				)
				.run(v, a.path, iris.files.get(a.path) as Uint8Array, a.sha256);
		}
		raw.close();
		const store = new SqliteStore(path);
		try {
			const db = new DatabaseSync(path, { readOnly: true });
			try {
				await checkMigratedFiles(store, iris, async (text) =>
					db
						.prepare(text)
						.all()
						.map((r) => ({ ...r })),
				);
			} finally {
				db.close();
			}
		} finally {
			await store.close();
		}
	});

	it("gives distinct versions to two processes registering the same name at once", async () => {
		const path = join(dir, "concurrent.db");
		await new SqliteStore(path).close(); // create the schema up front, like an existing registry
		const perProcess = 12;
		const code = `
			const { SqliteStore } = await import(process.env.STORE_URL);
			const { readBundle } = await import(process.env.BUNDLE_URL);
			const bundle = await readBundle(process.env.FIXTURE);
			const store = new SqliteStore(process.env.DB);
			const wait = Number(process.env.START_AT) - Date.now();
			if (wait > 0) await new Promise((r) => setTimeout(r, wait));
			const versions = [];
			for (let i = 0; i < ${perProcess}; i++) versions.push((await store.register(bundle)).version);
			await store.close();
			process.stdout.write(JSON.stringify(versions));
		`;
		const env = {
			...process.env,
			STORE_URL: pathToFileURL(
				join(import.meta.dirname, "../../src/registry/store/sqlite/store.ts"),
			).href,
			BUNDLE_URL: pathToFileURL(
				join(import.meta.dirname, "../../src/bundle/bundle.ts"),
			).href,
			FIXTURE: join(FIXTURES, "iris-logreg"),
			DB: path,
			START_AT: String(Date.now() + 1500),
		};
		const children = [0, 1].map(() =>
			run(process.execPath, ["--input-type=module", "-e", code], { env }),
		);
		const outputs = await Promise.all(children);
		const lists = outputs.map((o) => JSON.parse(o.stdout) as number[]);
		for (const l of lists) assert.equal(l.length, perProcess);
		const all = lists.flat().sort((a, b) => a - b);
		assert.deepEqual(
			all,
			Array.from({ length: 2 * perProcess }, (_, i) => i + 1),
			"every version handed out exactly once",
		);
		const store = new SqliteStore(path);
		try {
			assert.equal(
				(await store.list({ name: "iris-logreg" })).length,
				2 * perProcess,
			);
			assert.equal((await store.get("iris-logreg")).version, 2 * perProcess);
		} finally {
			await store.close();
		}
	});

	it("gives distinct versions to two instances in one process registering concurrently", async () => {
		const path = join(dir, "two-instances.db");
		const a = new SqliteStore(path);
		const b = new SqliteStore(path);
		try {
			const vs = await Promise.all(
				[a, b, a, b, a, b].map((s) => s.register(iris)),
			);
			assert.deepEqual(vs.map((v) => v.version).sort(), [1, 2, 3, 4, 5, 6]);
		} finally {
			await a.close();
			await b.close();
		}
	});

	it("migrates on open, idempotently, in WAL mode; refuses a newer schema", async () => {
		const path = join(dir, "migrate.db");
		const first = new SqliteStore(path);
		await first.register(iris, { aliases: ["production"] });
		await first.close();
		for (let i = 0; i < 2; i++) {
			const again = new SqliteStore(path);
			assert.equal(
				(await again.get("iris-logreg@production")).version,
				1,
				"data survives reopening",
			);
			await again.close();
		}
		const raw = new DatabaseSync(path);
		assert.equal(
			(raw.prepare("PRAGMA user_version").get() as { user_version: number })
				.user_version,
			SCHEMA_VERSION,
		);
		assert.equal(
			(raw.prepare("PRAGMA journal_mode").get() as { journal_mode: string })
				.journal_mode,
			"wal",
		);
		const tables = raw
			.prepare(
				"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
			)
			.all()
			.map((r) => r.name);
		assert.deepEqual(tables, [
			"aliases",
			"audit_log",
			"auth_tokens",
			"bandit_arms",
			"blob_refs",
			"blobs",
			"changes",
			"models",
			"monitor_alerts",
			"monitor_stats",
			"monitor_windows",
			"rollout_events",
			"rollouts",
			"traffic_policies",
			"traffic_policy_history",
			"version_stats",
			"versions",
		]);
		raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
		raw.close();
		assert.throws(
			() => new SqliteStore(path),
			(err: Error & { code?: string }) =>
				err.code === "MLSHIP_INVALID_ARGUMENT" && /newer/.test(err.message),
		);
	});

	it("fails every call after close with MLSHIP_CLOSED", async () => {
		const store = new SqliteStore(join(dir, "closed.db"));
		await store.close();
		await store.close(); // closing twice is fine
		await rejectsWith(store.get("iris-logreg"), "MLSHIP_CLOSED");
		await rejectsWith(store.register(iris), "MLSHIP_CLOSED");
		assert.throws(() => store.watch(() => {}), /closed/);
	});

	it("keeps delivering to other watchers when one throws, and in order when a watcher writes", async () => {
		const store = new SqliteStore(join(dir, "watchers.db"));
		const seen: string[] = [];
		const warnings: string[] = [];
		const onWarning = (w: Error) => warnings.push(w.message);
		process.on("warning", onWarning);
		try {
			store.watch(() => {
				throw new Error("boom");
			});
			store.watch((e) => {
				seen.push(`${e.type}@${e.version}`);
				// a watcher that writes: its event must come after the one being delivered
				if (e.type === "registered" && e.version === 1)
					void store.setAlias("iris-logreg", "production", 1);
			});
			await store.register(iris);
			await store.register(iris);
			assert.deepEqual(seen, ["registered@1", "alias_set@1", "registered@2"]);
			await new Promise((r) => setImmediate(r));
			assert.ok(
				warnings.some((w) => w.includes("boom")),
				`warning reported: ${warnings.join("; ")}`,
			);
		} finally {
			process.off("warning", onWarning);
			await store.close();
		}
	});
});
