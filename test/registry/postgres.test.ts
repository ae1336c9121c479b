// PostgresStore on a real PostgreSQL (test/harness): the shared contract, plus integrity, concurrent processes,
// migrations, the LISTEN/NOTIFY feed across instances, and recovery after the server or the feed connection drops.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { type Bundle, readBundle } from "../../src/bundle/bundle.ts";
import { newestOfSql } from "../../src/registry/core/register.ts";
import {
	CHANNEL,
	MIGRATION_SQL,
	PostgresStore,
	SCHEMA_VERSION,
} from "../../src/registry/store/postgres/store.ts";
import type { ChangeEvent } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import {
	checkMigratedFiles,
	rejectsWith,
	runStoreContract,
	waitFor,
} from "./store.contract.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "models");
const run = promisify(execFile);

// One server for the whole file (started on first use), a fresh database per store fixture.
let shared: Promise<PostgresServer> | undefined;
function server(): Promise<PostgresServer> {
	shared ??= startPostgres();
	return shared;
}
after(async () => {
	if (shared) await (await shared).stop();
});

async function freshDatabase(): Promise<string> {
	return createDatabase((await server()).url, uniqueDatabaseName("reg"));
}

/** Runs one SQL statement on `url` with a throwaway connection. */
async function sql<R extends pg.QueryResultRow>(
	url: string,
	text: string,
	params: unknown[] = [],
): Promise<R[]> {
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	try {
		return (await client.query<R>(text, params)).rows;
	} finally {
		await client.end();
	}
}

runStoreContract("postgres", async (opts) => {
	const url = await freshDatabase();
	return {
		store: await PostgresStore.open(url, opts),
		sql: (text) => sql(url, text),
		reopen: () => PostgresStore.open(url),
		cleanup: async () => {},
	};
});

describe("PostgresStore", () => {
	let iris: Bundle;
	before(async () => {
		iris = await readBundle(join(FIXTURES, "iris-logreg"));
	});

	it("refuses an artifact changed in the database (MLSHIP_INTEGRITY), every time, in every instance, in every version sharing it", async () => {
		const url = await freshDatabase();
		const store = await PostgresStore.open(url);
		try {
			await store.register(iris);
			await store.register(iris);
			const gbdt = await readBundle(join(FIXTURES, "breast-cancer-gbdt"));
			await store.register(gbdt);
			assert.equal(
				(await store.openBundle("iris-logreg@1")).manifest.name,
				"iris-logreg",
			);
			// flip one byte in the middle of the artifact (same length, so only the digest can tell): both versions
			// name the same stored file
			const changed = await sql(
				url,
				`UPDATE blobs SET bytes = set_byte(bytes, length(bytes) / 2, get_byte(bytes, length(bytes) / 2) # 255)
				 WHERE sha256 = $1 RETURNING 1`,
				[iris.manifest.artifact.sha256],
			);
			assert.equal(changed.length, 1);
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
			const other = await PostgresStore.open(url);
			try {
				await rejectsWith(
					other.openBundle("iris-logreg@1"),
					"MLSHIP_INTEGRITY",
				);
			} finally {
				await other.close();
			}
			const path = gbdt.manifest.artifact.path;
			const ok = await store.openBundle("breast-cancer-gbdt@1");
			assert.deepEqual(
				ok.files.get(path),
				gbdt.files.get(path),
				"an untouched file still opens",
			);
			// a manifest rewritten to match tampered bytes still disagrees with the registered digest
			await sql(
				url,
				"UPDATE versions SET sha256 = repeat('0', 64) WHERE name = 'breast-cancer-gbdt' AND version = 1",
			);
			await rejectsWith(
				store.openBundle("breast-cancer-gbdt@1"),
				"MLSHIP_INTEGRITY",
				/registry database was modified/,
			);
		} finally {
			await store.close();
		}
	});

	it("writes a bulk registration of 1000 entities in one transaction of a few multi-row statements", async () => {
		const url = await freshDatabase();
		const store = await PostgresStore.open(url);
		try {
			await store.registerMany(
				Array.from({ length: 1000 }, (_, i) => ({
					bundle: iris,
					opts: { name: "bulk", entity: `c${i}` },
				})),
			);
			// xmin: the inserting transaction; cmin: the statement within it (rows of one INSERT share it).
			const count = async (table: string, where: string) =>
				(
					await sql<{ rows: string; xacts: string; statements: string }>(
						url,
						`SELECT count(*) AS rows, count(DISTINCT xmin::text) AS xacts, count(DISTINCT cmin::text) AS statements
						 FROM ${table} WHERE ${where}`,
					)
				)[0];
			const files = iris.files.size;
			for (const [table, where, rows, most] of [
				["versions", "name = 'bulk'", 1000, 1],
				// byte-identical files: one stored copy and one reference count for the 1000 versions
				["blobs", "true", files, 1],
				["blob_refs", `refs = ${1000}`, files, 1],
				["changes", "name = 'bulk'", 1000, 1],
				["audit_log", "target LIKE 'bulk@%'", 1000, 1],
			] as const) {
				const c = await count(table, where);
				assert.equal(Number(c?.rows), rows, `${table} rows`);
				assert.equal(Number(c?.xacts), 1, `${table}: one transaction`);
				assert.ok(
					Number(c?.statements) <= most,
					`${table}: ${c?.statements} statements, expected at most ${most}`,
				);
			}
		} finally {
			await store.close();
		}
	});

	it("finds each registered entity's newest version by the entity index, not by reading every row of the name", async () => {
		const url = await freshDatabase();
		const store = await PostgresStore.open(url);
		try {
			// A bulk-loaded family the server has not analyzed yet (as in the first minutes of a bulk registration).
			await store.registerMany(
				Array.from({ length: 3000 }, (_, i) => ({
					bundle: iris,
					opts: { name: "fam", entity: `c${i}` },
				})),
			);
			const entities = [
				...Array.from({ length: 998 }, (_, i) => `new${i}`),
				"c7",
				"c2999",
			];
			const plan = await sql<{ "QUERY PLAN": unknown }>(
				url,
				`EXPLAIN (ANALYZE, FORMAT JSON) ${newestOfSql(entities.length)}`,
				["fam", ...entities],
			);
			const text = JSON.stringify(plan[0]?.["QUERY PLAN"]);
			// Every read of the versions table is a probe of the entity index that keeps what it reads.
			const scans: Record<string, unknown>[] = [];
			const walk = (node: Record<string, unknown>) => {
				if (node["Relation Name"] === "versions" || node["Index Name"])
					scans.push(node);
				for (const child of (node.Plans as Record<string, unknown>[]) ?? [])
					walk(child);
			};
			const [top] = (plan[0]?.["QUERY PLAN"] ?? []) as {
				Plan: Record<string, unknown>;
			}[];
			walk(top?.Plan ?? {});
			assert.ok(scans.length > 0, text);
			for (const scan of scans) {
				if (scan["Index Name"] !== undefined)
					assert.equal(scan["Index Name"], "versions_by_entity", text);
				assert.equal(scan["Rows Removed by Filter"] ?? 0, 0, text);
			}
			const found = await sql<{ entity: string; version: number }>(
				url,
				newestOfSql(entities.length),
				["fam", ...entities],
			);
			assert.deepEqual(
				found.map((r) => [r.entity, r.version]),
				[
					["c7", 8],
					["c2999", 3000],
				],
			);
		} finally {
			await store.close();
		}
	});

	it("migrates a registry written with a copy of the files per version: versions open, shared files counted once", async () => {
		const url = await freshDatabase();
		const upto = MIGRATION_SQL.findIndex((m) =>
			m.includes("CREATE TABLE blobs"),
		);
		assert.ok(upto > 0);
		await sql(
			url,
			"CREATE TABLE mlship_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
		);
		for (const [i, m] of MIGRATION_SQL.slice(0, upto).entries()) {
			await sql(url, m);
			await sql(url, "INSERT INTO mlship_schema (version) VALUES ($1)", [
				i + 1,
			]);
		}
		// As the previous mlship wrote them: a files row with the bytes for every file of every version.
		const a = iris.manifest.artifact;
		await sql(
			url,
			"INSERT INTO models (name, last_version) VALUES ('iris-logreg', 2)",
		);
		for (const v of [1, 2]) {
			await sql(
				url,
				"INSERT INTO versions (name, version, manifest, sha256) VALUES ('iris-logreg', $1, $2, $3)",
				[v, JSON.stringify(iris.manifest), a.sha256],
			);
			await sql(
				url,
				"INSERT INTO files (name, version, path, bytes, sha256) VALUES ('iris-logreg', $1, $2, $3, $4)",
				[
					v,
					a.path,
					Buffer.from(iris.files.get(a.path) as Uint8Array),
					a.sha256,
				],
			);
		}
		const store = await PostgresStore.open(url);
		try {
			await checkMigratedFiles(store, iris, (text) => sql(url, text));
		} finally {
			await store.close();
		}
	});

	it("gives distinct, contiguous versions to two processes registering the same name at once", async () => {
		const url = await freshDatabase();
		await (await PostgresStore.open(url)).close(); // create the schema up front, like an existing registry
		const perProcess = 12;
		const code = `
			const { PostgresStore } = await import(process.env.STORE_URL);
			const { readBundle } = await import(process.env.BUNDLE_URL);
			const bundle = await readBundle(process.env.FIXTURE);
			const store = await PostgresStore.open(process.env.DB);
			const wait = Number(process.env.START_AT) - Date.now();
			if (wait > 0) await new Promise((r) => setTimeout(r, wait));
			const versions = await Promise.all(
				Array.from({ length: ${perProcess} }, async () => (await store.register(bundle)).version),
			);
			await store.close();
			process.stdout.write(JSON.stringify(versions));
		`;
		const env = {
			...process.env,
			STORE_URL: pathToFileURL(
				join(import.meta.dirname, "../../src/registry/store/postgres/store.ts"),
			).href,
			BUNDLE_URL: pathToFileURL(
				join(import.meta.dirname, "../../src/bundle/bundle.ts"),
			).href,
			FIXTURE: join(FIXTURES, "iris-logreg"),
			DB: url,
			START_AT: String(Date.now() + 1500),
		};
		const outputs = await Promise.all(
			[0, 1].map(() =>
				run(process.execPath, ["--input-type=module", "-e", code], { env }),
			),
		);
		const lists = outputs.map((o) => JSON.parse(o.stdout) as number[]);
		for (const l of lists) assert.equal(l.length, perProcess);
		const all = lists.flat().sort((a, b) => a - b);
		assert.deepEqual(
			all,
			Array.from({ length: 2 * perProcess }, (_, i) => i + 1),
			"every version handed out exactly once",
		);
		// seq order is commit order: the feed lists one name's registrations in version order
		const feed = await sql<{ version: number }>(
			url,
			"SELECT version FROM changes WHERE type = 'registered' ORDER BY seq",
		);
		assert.deepEqual(
			feed.map((r) => r.version),
			Array.from({ length: 2 * perProcess }, (_, i) => i + 1),
		);
		const store = await PostgresStore.open(url);
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

	it("shows a registration to a watcher on another instance within 1 s", async () => {
		const url = await freshDatabase();
		const writer = await PostgresStore.open(url);
		const reader = await PostgresStore.open(url);
		const events: ChangeEvent[] = [];
		const stop = reader.watch((e) => events.push(e));
		try {
			for (let i = 1; i <= 3; i++) {
				await writer.register(iris);
				await waitFor(
					() => events.length >= i,
					`registration ${i} seen by the other instance`,
					1000,
				);
				assert.equal(events[i - 1]?.type, "registered");
				assert.equal(events[i - 1]?.version, i);
			}
		} finally {
			stop();
			await reader.close();
			await writer.close();
		}
	});

	it("migrates once when several stores open a fresh database at once; refuses a newer schema", async () => {
		const url = await freshDatabase();
		const stores = await Promise.all(
			Array.from({ length: 4 }, () => PostgresStore.open(url)),
		);
		await stores[0]?.register(iris, { aliases: ["production"] });
		for (const s of stores) {
			assert.equal((await s.get("iris-logreg@production")).version, 1);
			await s.close();
		}
		const again = await PostgresStore.open(url);
		assert.equal(
			(await again.get("iris-logreg")).version,
			1,
			"data survives reopening",
		);
		await again.close();
		const applied = await sql<{ version: number }>(
			url,
			"SELECT version FROM mlship_schema ORDER BY version",
		);
		assert.deepEqual(
			applied.map((r) => r.version),
			Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
		);
		const tables = await sql<{ tablename: string }>(
			url,
			"SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
		);
		assert.deepEqual(
			tables.map((t) => t.tablename),
			[
				"aliases",
				"audit_log",
				"auth_tokens",
				"bandit_arms",
				"blob_refs",
				"blobs",
				"changes",
				"mlship_schema",
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
			],
		);
		await sql(url, "INSERT INTO mlship_schema (version) VALUES ($1)", [
			SCHEMA_VERSION + 1,
		]);
		await rejectsWith(
			PostgresStore.open(url),
			"MLSHIP_INVALID_ARGUMENT",
			/newer than this mlship/,
		);
	});

	it("fails every call after close with MLSHIP_CLOSED", async () => {
		const store = await PostgresStore.open(await freshDatabase());
		await store.close();
		await store.close(); // closing twice is fine
		await rejectsWith(store.get("iris-logreg"), "MLSHIP_CLOSED");
		await rejectsWith(store.register(iris), "MLSHIP_CLOSED");
		assert.throws(() => store.watch(() => {}), /closed/);
	});

	it("keeps delivering to other watchers when one throws, and in order when a watcher writes", async () => {
		const store = await PostgresStore.open(await freshDatabase());
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
				if (e.type === "registered" && e.version === 1)
					void store.setAlias("iris-logreg", "production", 1);
			});
			await store.register(iris);
			await waitFor(() => seen.length >= 2, "the watcher's own alias_set");
			await store.register(iris);
			await waitFor(() => seen.length >= 3, "the second registration");
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

	it("catches up on changes made while its feed connection was cut", async () => {
		const url = await freshDatabase();
		const writer = await PostgresStore.open(url);
		const reader = await PostgresStore.open(url);
		const events: ChangeEvent[] = [];
		const stop = reader.watch((e) => events.push(e));
		const onWarning = () => {};
		process.on("warning", onWarning);
		try {
			await writer.register(iris);
			await waitFor(() => events.length >= 1, "the first registration");
			// Cut the reader's LISTEN connection, then write before it can reconnect: the NOTIFY goes nowhere.
			const cut = await sql(
				url,
				"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mlship-feed' AND query ILIKE $1",
				[`LISTEN ${CHANNEL}%`],
			);
			assert.equal(cut.length, 1, "one feed connection");
			await writer.register(iris);
			await writer.setAlias("iris-logreg", "production", 2);
			await waitFor(() => events.length >= 3, "the missed changes", 5000);
			assert.deepEqual(
				events.map((e) => `${e.type}@${e.version}`),
				["registered@1", "registered@2", "alias_set@2"],
			);
		} finally {
			process.off("warning", onWarning);
			stop();
			await reader.close();
			await writer.close();
		}
	});

	it("reconnects a watcher after PostgreSQL restarts; calls fail with MLSHIP_UNAVAILABLE while it is down", async () => {
		const own = await startPostgres(); // restarting the shared server would disturb other tests' stores
		const warnings: string[] = [];
		const onWarning = (w: Error) => warnings.push(w.message);
		process.on("warning", onWarning);
		const url = await createDatabase(own.url, "restart");
		const writer = await PostgresStore.open(url);
		const reader = await PostgresStore.open(url);
		const events: ChangeEvent[] = [];
		const stop = reader.watch((e) => events.push(e));
		try {
			await writer.register(iris);
			await waitFor(() => events.length >= 1, "the registration before");
			const restarted = own.restart({ downtimeMs: 1500 });
			await waitFor(
				() => warnings.some((w) => w.includes("change feed")),
				"the feed to notice the server is gone",
				5000,
			);
			await rejectsWith(
				writer.get("iris-logreg"),
				"MLSHIP_UNAVAILABLE",
				/registry postgres:\/\/mlship@127\.0\.0\.1:\d+\/restart is unavailable/,
			);
			await restarted;
			// Both stores recover by themselves: the writer's pool reconnects, the reader's feed resubscribes.
			const v2 = await writer.register(iris);
			assert.equal(v2.version, 2);
			await waitFor(
				() => events.length >= 2,
				"the registration after the restart",
				10_000,
			);
			assert.equal(events[1]?.type, "registered");
			assert.equal(events[1]?.version, 2);
			assert.ok((events[1]?.seq ?? 0) > (events[0]?.seq ?? 0));
			await writer.setAlias("iris-logreg", "production", 2);
			await waitFor(() => events.length >= 3, "a later alias_set", 1000);
			assert.ok(
				warnings.some((w) => /change feed reconnected/.test(w)),
				warnings.join("; "),
			);
		} finally {
			process.off("warning", onWarning);
			stop();
			await reader.close();
			await writer.close();
			await own.stop();
		}
	});
});
