// The ModelStore conformance suite: every store implementation runs runStoreContract with its own factory.
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { type Bundle, readBundle } from "../../src/bundle/bundle.ts";
import type { ErrorCode } from "../../src/protocol/errors.ts";
import type { ChangeRetention } from "../../src/registry/core/feed.ts";
import type { ChangeEvent, ModelStore } from "../../src/registry/types.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "models");

/** What a factory gives the suite: a fresh, empty store, a way to open another instance on the SAME database, and cleanup. */
export interface StoreFixture {
	store: ModelStore;
	/** Runs raw SQL on the same database (to look at or age the change feed's rows). */
	sql: (text: string) => Promise<Record<string, unknown>[]>;
	/** Opens a second, independent instance on the same database (as another process would). */
	reopen: () => Promise<ModelStore>;
	cleanup: () => Promise<void>;
}

/** Asserts that `p` rejects with an MlshipError of `code` (and a message matching `message`, when given). */
export async function rejectsWith(
	p: Promise<unknown>,
	code: ErrorCode,
	message?: RegExp,
): Promise<void> {
	await assert.rejects(p, (err: unknown) => {
		assert.equal(
			(err as { code?: string }).code,
			code,
			`expected ${code}, got ${String(err)}`,
		);
		if (message) assert.match((err as Error).message, message);
		return true;
	});
}

/** Polls `predicate` every 20 ms until it holds, failing after `timeoutMs`. */
export async function waitFor(
	predicate: () => boolean,
	what: string,
	timeoutMs = 2000,
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!predicate()) {
		if (Date.now() > deadline)
			assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 20));
	}
}

/**
 * Checks a registry just migrated to content-addressed files that held iris-logreg@1 and @2 with one and the same
 * file: both versions open with its bytes, the file is counted twice, and it goes with the second delete.
 */
export async function checkMigratedFiles(
	store: ModelStore,
	bundle: Bundle,
	sql: (text: string) => Promise<Record<string, unknown>[]>,
): Promise<void> {
	const a = bundle.manifest.artifact;
	for (const ref of ["iris-logreg@1", "iris-logreg@2"])
		assert.deepEqual(
			(await store.openBundle(ref)).files.get(a.path),
			bundle.files.get(a.path),
			ref,
		);
	const refs = async () =>
		(await sql("SELECT sha256, refs FROM blob_refs")).map((r) => [
			r.sha256,
			Number(r.refs),
		]);
	assert.deepEqual(await refs(), [[a.sha256, 2]]);
	await store.delete("iris-logreg", 1);
	assert.deepEqual(await refs(), [[a.sha256, 1]]);
	await store.delete("iris-logreg", 2);
	assert.deepEqual(await refs(), []);
	assert.deepEqual(await sql("SELECT sha256 FROM blobs"), []);
}

/**
 * Runs the ModelStore contract against stores made by `factory` (each test gets a fresh, empty database).
 * @example runStoreContract("sqlite", async () => { ...; return { store, reopen, cleanup }; });
 */
export function runStoreContract(
	label: string,
	factory: (opts?: { retention?: ChangeRetention }) => Promise<StoreFixture>,
): void {
	describe(`ModelStore contract: ${label}`, () => {
		let iris: Bundle;
		let gbdt: Bundle;
		before(async () => {
			iris = await readBundle(join(FIXTURES, "iris-logreg"));
			gbdt = await readBundle(join(FIXTURES, "breast-cancer-gbdt"));
		});

		/** Runs `fn` with a fresh store (plus any reopened instances), closing everything afterwards. */
		async function withStore(
			fn: (
				store: ModelStore,
				reopen: () => Promise<ModelStore>,
				sql: StoreFixture["sql"],
			) => Promise<void>,
			opts?: { retention?: ChangeRetention },
		): Promise<void> {
			const f = await factory(opts);
			const others: ModelStore[] = [];
			try {
				await fn(
					f.store,
					async () => {
						const s = await f.reopen();
						others.push(s);
						return s;
					},
					f.sql,
				);
			} finally {
				for (const s of others) await s.close();
				await f.store.close();
				await f.cleanup();
			}
		}

		it("registers versions 1, 2, … per name with the artifact digest", () =>
			withStore(async (store) => {
				const before = Date.now();
				const v1 = await store.register(iris);
				assert.equal(v1.name, "iris-logreg");
				assert.equal(v1.version, 1);
				assert.equal(v1.sha256, iris.manifest.artifact.sha256);
				assert.equal(v1.status, "active");
				assert.deepEqual(v1.aliases, []);
				assert.deepEqual(v1.metadata, {});
				assert.equal(v1.description, iris.manifest.description);
				assert.deepEqual(v1.manifest, iris.manifest);
				const created = Date.parse(v1.createdAt);
				assert.ok(
					created >= before - 1000 && created <= Date.now() + 1000,
					`createdAt ${v1.createdAt}`,
				);
				const v2 = await store.register(iris);
				assert.equal(
					v2.version,
					2,
					"the same bytes registered again are a new version",
				);
				const g1 = await store.register(gbdt);
				assert.equal(g1.name, "breast-cancer-gbdt");
				assert.equal(g1.version, 1, "versions count per name");
			}));

		it("keeps drift-monitor windows per replica: rewrites its own row, lists since a time, prunes old ones", () =>
			withStore(async (store, reopen) => {
				const row = (replica: string, start: number, rows: number) => ({
					model: "m",
					version: 1,
					start,
					seconds: 60,
					replica,
					rows,
					profile: `{"rows":${rows}}`,
				});
				await store.saveProfileWindow(row("a", 60_000, 5));
				await store.saveProfileWindow(row("a", 60_000, 9)); // the window filled: the row is rewritten
				const other = await reopen(); // another replica, another connection
				await other.saveProfileWindow(row("b", 60_000, 4));
				await other.saveProfileWindow(row("b", 120_000, 7));
				await store.saveProfileWindow({
					...row("a", 60_000, 1),
					model: "other",
				});
				assert.deepEqual(await store.profileWindows("m", 0), [
					row("a", 60_000, 9),
					row("b", 60_000, 4),
					row("b", 120_000, 7),
				]);
				assert.deepEqual(await store.profileWindows("m", 120_000), [
					row("b", 120_000, 7),
				]);
				assert.equal(await store.pruneProfileWindows(120_000), 3);
				assert.deepEqual(await other.profileWindows("m", 0), [
					row("b", 120_000, 7),
				]);
			}));

		it("keeps traffic/quality windows per replica (rewritten, listed since a time, pruned with the profile windows) and claims each alert once", () =>
			withStore(async (store, reopen) => {
				const row = (replica: string, start: number, requests: number) => ({
					model: "m",
					version: 2,
					start,
					seconds: 0.5,
					replica,
					requests,
					errors: 1,
					buckets: [
						requests - 1,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
						0,
					],
				});
				await store.saveStatsWindow(row("a", 60_000, 5));
				await store.saveStatsWindow({
					...row("a", 60_000, 9),
					quality: '{"task":"regression","n":1,"abs":2,"sq":4}',
				}); // the window filled and feedback came: the row is rewritten
				const other = await reopen(); // another replica, another connection
				await other.saveStatsWindow(row("b", 60_000, 4));
				await other.saveStatsWindow(row("b", 120_000, 7));
				await store.saveStatsWindow({ ...row("a", 60_000, 1), model: "other" });
				assert.deepEqual(await store.statsWindows("m", 0), [
					{
						...row("a", 60_000, 9),
						quality: '{"task":"regression","n":1,"abs":2,"sq":4}',
					},
					row("b", 60_000, 4),
					row("b", 120_000, 7),
				]);
				assert.deepEqual(await store.statsWindows("m", 120_000), [
					row("b", 120_000, 7),
				]);
				const claim = {
					model: "m",
					version: 2,
					subject: "feature:x",
					windowStart: 60_000,
					change: "started",
				};
				assert.equal(await store.claimAlert({ ...claim, replica: "a" }), true);
				assert.equal(
					await other.claimAlert({ ...claim, replica: "b" }),
					false,
					"a second replica finds the alert claimed",
				);
				assert.equal(
					await other.claimAlert({ ...claim, change: "ended", replica: "b" }),
					true,
					"another change of the same subject and window is another alert",
				);
				// 2 stats rows + 2 alert claims before 120_000 (the other model's row too: 3 stats rows).
				assert.equal(await store.pruneProfileWindows(120_000), 5);
				assert.deepEqual(await other.statsWindows("m", 0), [
					row("b", 120_000, 7),
				]);
				assert.equal(
					await store.claimAlert({ ...claim, replica: "a" }),
					true,
					"a pruned claim can be claimed again",
				);
			}));

		it("resolves a bare name to the newest version, name@N to that version, name@alias to its target", () =>
			withStore(async (store) => {
				await store.register(iris);
				await store.register(iris, { metadata: { run: "b" } });
				await store.register(iris);
				assert.equal((await store.get("iris-logreg")).version, 3);
				const v2 = await store.get("iris-logreg@2");
				assert.equal(v2.version, 2);
				assert.deepEqual(v2.metadata, { run: "b" });
				assert.equal(
					(await store.get({ name: "iris-logreg", version: 1 })).version,
					1,
				);
				await store.setAlias("iris-logreg", "production", 2);
				const p = await store.get("iris-logreg@production");
				assert.equal(p.version, 2);
				assert.deepEqual(p.aliases, ["production"]);
				assert.equal(
					(await store.get({ name: "iris-logreg", alias: "production" }))
						.version,
					2,
				);
			}));

		it("reports unknown names, versions and aliases as MLSHIP_MODEL_NOT_FOUND", () =>
			withStore(async (store) => {
				await rejectsWith(store.get("nope"), "MLSHIP_MODEL_NOT_FOUND", /nope/);
				await store.register(iris);
				await rejectsWith(
					store.get("iris-logreg@7"),
					"MLSHIP_MODEL_NOT_FOUND",
					/version 7/,
				);
				await rejectsWith(
					store.get("iris-logreg@staging"),
					"MLSHIP_MODEL_NOT_FOUND",
					/staging/,
				);
				await rejectsWith(
					store.get("nope@1"),
					"MLSHIP_MODEL_NOT_FOUND",
					/nope/,
				);
				await rejectsWith(
					store.get("nope@prod"),
					"MLSHIP_MODEL_NOT_FOUND",
					/nope/,
				);
				await rejectsWith(store.openBundle("nope"), "MLSHIP_MODEL_NOT_FOUND");
				await rejectsWith(
					store.setAlias("iris-logreg", "prod", 5),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(
					store.setAlias("nope", "prod", 1),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(
					store.deleteAlias("iris-logreg", "prod"),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(
					store.setMetadata("iris-logreg", 9, { a: 1 }),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(
					store.archive("iris-logreg", 9),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(
					store.delete("iris-logreg", 9),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(store.delete("nope"), "MLSHIP_MODEL_NOT_FOUND");
			}));

		it("rejects malformed references and names as MLSHIP_INVALID_ARGUMENT", () =>
			withStore(async (store) => {
				for (const bad of [
					"",
					"@1",
					"iris@",
					"iris@0",
					"iris@-1",
					"a b",
					"iris@x@y",
					"-iris",
					"iris@ prod",
				])
					await rejectsWith(
						store.get(bad),
						"MLSHIP_INVALID_ARGUMENT",
						/invalid model reference/,
					);
				await rejectsWith(
					store.get({ name: "ok", version: 0 }),
					"MLSHIP_INVALID_ARGUMENT",
				);
				await rejectsWith(
					store.register(iris, { name: "has space" }),
					"MLSHIP_INVALID_ARGUMENT",
				);
				await rejectsWith(
					store.register(iris, { aliases: ["42"] }),
					"MLSHIP_INVALID_ARGUMENT",
					/only digits/,
				);
				await store.register(iris);
				await rejectsWith(
					store.setAlias("iris-logreg", "7", 1),
					"MLSHIP_INVALID_ARGUMENT",
				);
				await rejectsWith(
					store.setAlias("iris-logreg", "bad alias", 1),
					"MLSHIP_INVALID_ARGUMENT",
				);
				assert.equal(
					(await store.list()).length,
					1,
					"failed registrations store nothing",
				);
			}));

		it("moves aliases between versions and deletes them", () =>
			withStore(async (store) => {
				await store.register(iris);
				await store.register(iris);
				await store.setAlias("iris-logreg", "production", 1);
				await store.setAlias("iris-logreg", "staging", 1);
				assert.deepEqual((await store.get("iris-logreg@1")).aliases, [
					"production",
					"staging",
				]);
				await store.setAlias("iris-logreg", "production", 2);
				assert.equal((await store.get("iris-logreg@production")).version, 2);
				assert.deepEqual((await store.get("iris-logreg@1")).aliases, [
					"staging",
				]);
				assert.deepEqual((await store.get("iris-logreg@2")).aliases, [
					"production",
				]);
				// register --alias moves an existing alias to the new version
				const v3 = await store.register(iris, {
					aliases: ["staging", "canary"],
				});
				assert.deepEqual(v3.aliases, ["canary", "staging"]);
				assert.deepEqual((await store.get("iris-logreg@1")).aliases, []);
				await store.deleteAlias("iris-logreg", "canary");
				await rejectsWith(
					store.get("iris-logreg@canary"),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				assert.deepEqual((await store.get("iris-logreg@3")).aliases, [
					"staging",
				]);
			}));

		it("lists versions sorted, filtered by name, archived only on request", () =>
			withStore(async (store) => {
				assert.deepEqual(await store.list(), []);
				await store.register(iris);
				await store.register(gbdt);
				await store.register(iris);
				await store.setAlias("iris-logreg", "production", 2);
				const all = await store.list();
				assert.deepEqual(
					all.map((v) => `${v.name}@${v.version}`),
					["breast-cancer-gbdt@1", "iris-logreg@1", "iris-logreg@2"],
				);
				assert.deepEqual(all[2]?.aliases, ["production"]);
				assert.deepEqual(all[1]?.aliases, []);
				const irisOnly = await store.list({ name: "iris-logreg" });
				assert.deepEqual(
					irisOnly.map((v) => v.version),
					[1, 2],
				);
				assert.deepEqual(await store.list({ name: "nope" }), []);
				await store.archive("iris-logreg", 1);
				assert.deepEqual(
					(await store.list({ name: "iris-logreg" })).map((v) => v.version),
					[2],
				);
				const withArchived = await store.list({
					name: "iris-logreg",
					includeArchived: true,
				});
				assert.deepEqual(
					withArchived.map((v) => `${v.version}:${v.status}`),
					["1:archived", "2:active"],
				);
			}));

		it("archives: hidden from bare-name resolution, refused while aliased, never a new alias target", () =>
			withStore(async (store) => {
				await store.register(iris);
				await store.register(iris);
				await store.setAlias("iris-logreg", "production", 2);
				await store.setAlias("iris-logreg", "shadow", 2);
				await rejectsWith(
					store.archive("iris-logreg", 2),
					"MLSHIP_INVALID_ARGUMENT",
					/'production'.*'shadow'/,
				);
				assert.equal(
					(await store.get("iris-logreg@2")).status,
					"active",
					"a refused archive changes nothing",
				);
				await store.setAlias("iris-logreg", "production", 1);
				await store.deleteAlias("iris-logreg", "shadow");
				await store.archive("iris-logreg", 2);
				await store.archive("iris-logreg", 2); // archiving twice is a no-op
				assert.equal(
					(await store.get("iris-logreg")).version,
					1,
					"bare name skips the archived newest",
				);
				const pinned = await store.get("iris-logreg@2");
				assert.equal(
					pinned.status,
					"archived",
					"an explicit version still resolves",
				);
				await rejectsWith(
					store.setAlias("iris-logreg", "production", 2),
					"MLSHIP_INVALID_ARGUMENT",
					/archived/,
				);
				await store.deleteAlias("iris-logreg", "production");
				await store.archive("iris-logreg", 1);
				await rejectsWith(
					store.get("iris-logreg"),
					"MLSHIP_MODEL_NOT_FOUND",
					/archived/,
				);
				const b = await store.openBundle("iris-logreg@1");
				assert.equal(
					b.manifest.name,
					"iris-logreg",
					"archived versions can still be opened by version",
				);
			}));

		it("deletes one version (with its aliases) or a whole name; version numbers are not reused", () =>
			withStore(async (store) => {
				await store.register(iris);
				await store.register(iris);
				await store.setAlias("iris-logreg", "production", 2);
				await store.setAlias("iris-logreg", "canary", 2);
				await rejectsWith(
					store.delete("iris-logreg", 2),
					"MLSHIP_INVALID_ARGUMENT",
					/cannot delete iris-logreg@2: aliases 'canary', 'production' point at it.*--force/,
				);
				assert.deepEqual(
					(await store.get("iris-logreg@production")).version,
					2,
					"a refused delete deletes nothing",
				);
				await store.delete("iris-logreg", 2, { force: true });
				await rejectsWith(store.get("iris-logreg@2"), "MLSHIP_MODEL_NOT_FOUND");
				await rejectsWith(
					store.get("iris-logreg@production"),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				await rejectsWith(
					store.openBundle("iris-logreg@2"),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				assert.equal((await store.get("iris-logreg")).version, 1);
				assert.equal(
					(await store.register(iris)).version,
					3,
					"version 2 is never handed out again",
				);
				await store.register(gbdt);
				await store.setAlias("iris-logreg", "production", 3);
				await store.delete("iris-logreg");
				await rejectsWith(store.get("iris-logreg"), "MLSHIP_MODEL_NOT_FOUND");
				await rejectsWith(
					store.get("iris-logreg@production"),
					"MLSHIP_MODEL_NOT_FOUND",
				);
				assert.deepEqual(
					await store.list({ name: "iris-logreg", includeArchived: true }),
					[],
				);
				assert.deepEqual(
					(await store.list()).map((v) => v.name),
					["breast-cancer-gbdt"],
					"other names are untouched",
				);
			}));

		it("stores byte-identical files once and deletes a file only with the last version naming it", () =>
			withStore(async (store, _reopen, sql) => {
				const stored = async () =>
					(
						await sql(
							"SELECT b.sha256, r.refs FROM blobs b JOIN blob_refs r ON r.sha256 = b.sha256 ORDER BY b.sha256",
						)
					).map((r) => [r.sha256, Number(r.refs)]);
				const a = iris.manifest.artifact.sha256;
				const g = gbdt.manifest.artifact.sha256;
				await store.register(iris);
				await store.registerMany([
					{ bundle: iris, opts: { name: "fam", entity: "x" } },
					{ bundle: iris, opts: { name: "fam", entity: "y" } },
					{ bundle: gbdt },
				]);
				await store.register(iris);
				assert.deepEqual(
					await stored(),
					[
						[a, 4],
						[g, 1],
					].sort(),
				);
				await store.delete("iris-logreg", 1);
				await store.delete("fam");
				assert.deepEqual(
					await stored(),
					[
						[a, 1],
						[g, 1],
					].sort(),
				);
				const b = await store.openBundle("iris-logreg@2");
				assert.deepEqual(
					b.files.get("model.onnx"),
					iris.files.get("model.onnx"),
					"the version still naming the file opens",
				);
				await store.delete("iris-logreg", 2);
				assert.deepEqual(await stored(), [[g, 1]]);
				for (const table of ["blobs", "blob_refs"])
					assert.deepEqual(
						(await sql(`SELECT sha256 FROM ${table}`)).map((r) => r.sha256),
						[g],
						`${table}: only the file a version still names`,
					);
				// registered again after its last version went: stored again
				await store.register(iris);
				assert.deepEqual(
					(await store.openBundle("iris-logreg")).files.get("model.onnx"),
					iris.files.get("model.onnx"),
				);
				await store.delete("breast-cancer-gbdt");
				assert.deepEqual(await stored(), [[a, 1]]);
			}));

		it("keeps registration metadata apart from the manifest and merges updates", () =>
			withStore(async (store) => {
				const v = await store.register(iris, {
					metadata: { owner: "ana", run: 17, tags: ["a"] },
				});
				assert.deepEqual(v.metadata, { owner: "ana", run: 17, tags: ["a"] });
				assert.deepEqual(
					v.manifest.metadata,
					iris.manifest.metadata,
					"manifest metadata untouched",
				);
				const u = await store.setMetadata("iris-logreg", 1, {
					run: null,
					approved: true,
				});
				assert.deepEqual(u.metadata, {
					owner: "ana",
					tags: ["a"],
					approved: true,
				});
				assert.deepEqual(
					(await store.get("iris-logreg@1")).metadata,
					u.metadata,
				);
				assert.deepEqual(
					(await store.get("iris-logreg@1")).manifest.metadata,
					iris.manifest.metadata,
				);
			}));

		it("registers under another name when asked", () =>
			withStore(async (store) => {
				const v = await store.register(iris, { name: "flowers" });
				assert.equal(v.name, "flowers");
				assert.equal(v.version, 1);
				assert.equal(v.manifest.name, "flowers");
				await rejectsWith(store.get("iris-logreg"), "MLSHIP_MODEL_NOT_FOUND");
				const b = await store.openBundle("flowers");
				assert.equal(b.manifest.name, "flowers");
				assert.equal(b.source, "registry:flowers@1");
			}));

		it("openBundle returns the registered bytes and manifest, also to another instance", () =>
			withStore(async (store, reopen) => {
				const v = await store.register(iris, { aliases: ["production"] });
				await store.register(gbdt);
				for (const b of [
					await store.openBundle(v),
					await store.openBundle("iris-logreg@production"),
				]) {
					assert.equal(b.source, "registry:iris-logreg@1");
					assert.deepEqual(b.manifest, iris.manifest);
					assert.deepEqual([...b.files.keys()], [...iris.files.keys()]);
					for (const [path, bytes] of iris.files)
						assert.deepEqual(b.files.get(path), bytes, path);
				}
				const other = await reopen();
				const seen = await other.get("iris-logreg@production");
				assert.equal(seen.version, 1);
				assert.equal(seen.sha256, iris.manifest.artifact.sha256);
				const ob = await other.openBundle("breast-cancer-gbdt");
				assert.deepEqual(ob.manifest, gbdt.manifest);
				assert.deepEqual(
					ob.files.get(gbdt.manifest.artifact.path),
					gbdt.files.get(gbdt.manifest.artifact.path),
				);
			}));

		it("watch delivers this instance's changes in order with increasing seq, until unsubscribed", () =>
			withStore(async (store) => {
				await store.register(gbdt); // before watching: not delivered
				const events: ChangeEvent[] = [];
				const stop = store.watch((e) => events.push(e));
				await store.register(iris, { aliases: ["production"] });
				await store.register(iris);
				await store.setMetadata("iris-logreg", 2, { ok: true });
				await store.setAlias("iris-logreg", "production", 2);
				await store.archive("iris-logreg", 1);
				await store.deleteAlias("iris-logreg", "production");
				await store.delete("iris-logreg", 2);
				await store.delete("breast-cancer-gbdt");
				const expected = [
					"registered iris-logreg@1",
					"alias_set iris-logreg@1 production",
					"registered iris-logreg@2",
					"metadata iris-logreg@2",
					"alias_set iris-logreg@2 production",
					"archived iris-logreg@1",
					"alias_deleted iris-logreg@2 production",
					"deleted iris-logreg@2",
					"deleted breast-cancer-gbdt",
				];
				const show = (e: ChangeEvent) =>
					`${e.type} ${e.name}${e.version !== undefined ? `@${e.version}` : ""}${e.alias ? ` ${e.alias}` : ""}`;
				await waitFor(() => events.length >= expected.length, "9 events");
				assert.deepEqual(events.map(show), expected);
				for (let i = 1; i < events.length; i++)
					assert.ok(
						(events[i]?.seq ?? 0) > (events[i - 1]?.seq ?? 0),
						`seq increases at ${i}`,
					);
				for (const e of events)
					assert.ok(!Number.isNaN(Date.parse(e.at)), `at is a time: ${e.at}`);
				stop();
				await store.register(gbdt);
				await new Promise((r) => setTimeout(r, 300));
				assert.equal(
					events.length,
					expected.length,
					"no events after unsubscribe",
				);
			}));

		it("watch on another instance sees changes made through the first", () =>
			withStore(async (store, reopen) => {
				const other = await reopen();
				const events: ChangeEvent[] = [];
				const stop = other.watch((e) => events.push(e));
				try {
					await store.register(iris);
					await waitFor(
						() => events.length >= 1,
						"the other instance's registered event",
					);
					assert.equal(events[0]?.type, "registered");
					assert.equal(events[0]?.name, "iris-logreg");
					assert.equal(events[0]?.version, 1);
					await store.setAlias("iris-logreg", "production", 1);
					await waitFor(() => events.length >= 2, "the alias_set event");
					assert.equal(events[1]?.type, "alias_set");
					assert.equal(events[1]?.alias, "production");
					assert.ok((events[1]?.seq ?? 0) > (events[0]?.seq ?? 0));
				} finally {
					stop();
				}
			}));

		it("per-entity families: name#entity is that entity's newest version; a bare name ignores entity versions", () =>
			withStore(async (store) => {
				const def = await store.register(iris, { name: "price" });
				const b1 = await store.register(iris, {
					name: "price",
					entity: "berlin",
				});
				const p1 = await store.register(gbdt, {
					name: "price",
					entity: "paris",
				});
				const b2 = await store.register(iris, {
					name: "price",
					entity: "berlin",
					metadata: { run: 2 },
				});
				assert.deepEqual(
					[def.version, b1.version, p1.version, b2.version],
					[1, 2, 3, 4],
					"entity versions share the name's version counter",
				);
				assert.equal(b2.entity, "berlin");
				assert.equal(def.entity, undefined);
				assert.equal((await store.get("price")).version, 1);
				assert.equal((await store.get("price#berlin")).version, 4);
				assert.equal(
					(await store.get({ name: "price", entity: "paris" })).manifest
						.artifact.sha256,
					gbdt.manifest.artifact.sha256,
				);
				assert.equal((await store.get("price@2")).entity, "berlin");
				await rejectsWith(
					store.get("price#tokyo"),
					"MLSHIP_MODEL_NOT_FOUND",
					/no active version for entity 'tokyo'/,
				);
				await rejectsWith(
					store.get({ name: "price", entity: "berlin", version: 2 }),
					"MLSHIP_INVALID_ARGUMENT",
				);
				assert.deepEqual(await store.entities("price"), [
					{ entity: "berlin", version: 4 },
					{ entity: "paris", version: 3 },
				]);
				assert.deepEqual(
					(await store.list({ name: "price", entity: "berlin" })).map(
						(v) => v.version,
					),
					[2, 4],
				);
				await store.archive("price", 4);
				assert.equal((await store.get("price#berlin")).version, 2);
				assert.deepEqual(await store.entities("price"), [
					{ entity: "berlin", version: 2 },
					{ entity: "paris", version: 3 },
				]);
				await store.delete("price", 1);
				await rejectsWith(
					store.get("price"),
					"MLSHIP_MODEL_NOT_FOUND",
					/only per-entity versions/,
				);
				await rejectsWith(
					store.register(iris, { name: "price", entity: "bad#key" }),
					"MLSHIP_INVALID_ARGUMENT",
				);
			}));

		it("aliasTargets: aliases of active non-entity versions with their name's active non-entity versions, newest first", () =>
			withStore(async (store) => {
				assert.deepEqual(await store.aliasTargets(), []);
				await store.register(iris, { name: "price", aliases: ["production"] });
				await store.register(iris, { name: "price", aliases: ["staging"] });
				await store.register(iris, { name: "price" });
				// Entity members, one with an alias of its own: neither listed nor offered as a target.
				await store.registerMany(
					["berlin", "paris"].map((entity) => ({
						bundle: iris,
						opts: { name: "price", entity },
					})),
				);
				await store.setAlias("price", "berlin-prod", 4);
				await store.register(gbdt, { name: "cancer", aliases: ["production"] });
				await store.register(gbdt, { name: "cancer", aliases: ["old"] });
				await store.setAlias("cancer", "old", 1);
				// Archived versions are not targets (archiving needs the version unaliased).
				await store.register(gbdt, { name: "cancer" });
				await store.archive("cancer", 3);
				// A name with only entity members and their aliases is absent.
				await store.registerMany([
					{
						bundle: iris,
						opts: { name: "shop", entity: "s1", aliases: ["s1-prod"] },
					},
				]);
				assert.deepEqual(await store.aliasTargets(), [
					{ name: "cancer", alias: "old", version: 1, active: [2, 1] },
					{ name: "cancer", alias: "production", version: 1, active: [2, 1] },
					{ name: "price", alias: "production", version: 1, active: [3, 2, 1] },
					{ name: "price", alias: "staging", version: 2, active: [3, 2, 1] },
				]);
			}));

		it("registerMany writes thousands of entity versions in one transaction, all or none", () =>
			withStore(async (store, reopen) => {
				const other = await reopen();
				const events: ChangeEvent[] = [];
				const stop = other.watch((e) => events.push(e));
				try {
					const items = Array.from({ length: 1000 }, (_, i) => ({
						bundle: iris,
						opts: { name: "shop", entity: `s${String(i).padStart(4, "0")}` },
					}));
					const vs = await store.registerMany(items);
					assert.equal(vs.length, 1000);
					assert.deepEqual(
						vs.map((v) => v.version),
						Array.from({ length: 1000 }, (_, i) => i + 1),
					);
					assert.equal(vs[999]?.entity, "s0999");
					const ents = await other.entities("shop");
					assert.equal(ents.length, 1000);
					assert.deepEqual(ents[0], { entity: "s0000", version: 1 });
					await waitFor(
						() => events.length >= 1000,
						"1000 registered events",
						10_000,
					);
					assert.equal(events[5]?.type, "registered");
					assert.equal(events[5]?.entity, "s0005");
					// One bad item (a tampered bundle) fails the whole batch: nothing of it is stored.
					const bad = {
						...iris,
						manifest: {
							...iris.manifest,
							artifact: { ...iris.manifest.artifact, sha256: "0".repeat(64) },
						},
					};
					await rejectsWith(
						store.registerMany([
							{ bundle: iris, opts: { name: "shop", entity: "new" } },
							{ bundle: bad, opts: { name: "shop", entity: "newer" } },
						]),
						"MLSHIP_INTEGRITY",
					);
					assert.equal((await store.entities("shop")).length, 1000);
					await rejectsWith(store.get("shop#new"), "MLSHIP_MODEL_NOT_FOUND");
				} finally {
					stop();
				}
			}));

		it("registerMany numbers, checks and records items in their order, across many statements", () =>
			withStore(async (store, reopen) => {
				const other = await reopen();
				const events: ChangeEvent[] = [];
				const stop = other.watch((e) => events.push(e));
				try {
					// 2,500 items (several multi-row statements per table): two names interleaved, entities repeated within
					// the call (each repeat is that entity's next version), aliases on some named versions.
					const items = Array.from({ length: 2500 }, (_, i) =>
						i % 5 === 0
							? {
									bundle: iris,
									opts: {
										name: "named",
										aliases: i % 100 === 0 ? ["production", `a${i}`] : [],
									},
								}
							: {
									bundle: iris,
									opts: { name: "fam", entity: `x${i % 300}` },
								},
					);
					const vs = await store.registerMany(items);
					const expected: { type: string; name: string; version: number }[] =
						[];
					const next = new Map<string, number>();
					const newest = new Map<string, number>();
					items.forEach((it, i) => {
						const version = (next.get(it.opts.name) ?? 0) + 1;
						next.set(it.opts.name, version);
						assert.equal(vs[i]?.version, version, `item ${i}`);
						assert.equal(
							vs[i]?.entity,
							"entity" in it.opts ? it.opts.entity : undefined,
						);
						assert.deepEqual(
							vs[i]?.aliases,
							[...("aliases" in it.opts ? it.opts.aliases : [])].sort(),
						);
						if ("entity" in it.opts) newest.set(it.opts.entity, version);
						expected.push({ type: "registered", name: it.opts.name, version });
						for (const _ of "aliases" in it.opts ? it.opts.aliases : [])
							expected.push({ type: "alias_set", name: it.opts.name, version });
					});
					assert.deepEqual(
						await store.entities("fam"),
						[...newest]
							.map(([entity, version]) => ({ entity, version }))
							.sort((a, b) => (a.entity < b.entity ? -1 : 1)),
					);
					assert.equal((await store.get("named@production")).version, 481);
					await waitFor(
						() => events.length >= expected.length,
						`${expected.length} events`,
						20_000,
					);
					assert.deepEqual(
						events.map((e) => ({
							type: e.type,
							name: e.name,
							version: e.version,
						})),
						expected,
					);
					// The newest of an entity registered earlier in the call is what a later item is checked against.
					await rejectsWith(
						store.registerMany([
							{ bundle: iris, opts: { name: "fam", entity: "x1" } },
							{ bundle: gbdt, opts: { name: "fam", entity: "x1" } },
						]),
						"MLSHIP_INVALID_ARGUMENT",
						/signature differs from fam@2001/,
					);
				} finally {
					stop();
				}
			}));

		it("refuses a version whose inputs, features or labels differ from the newest, showing the difference, unless allowed", () =>
			withStore(async (store) => {
				await store.register(iris);
				await rejectsWith(
					store.register(gbdt, { name: "iris-logreg" }),
					"MLSHIP_INVALID_ARGUMENT",
					/signature differs from iris-logreg@1:[\s\S]*inputs changed: float_input: FP32 \[-1, 4\] → FP32 \[-1, 30\][\s\S]*features removed \(4\): sepal_length, sepal_width, petal_length, petal_width[\s\S]*features added \(30\): mean_radius, .* … and 22 more[\s\S]*labels: setosa, versicolor, virginica → malignant, benign[\s\S]*--allow-signature-change/,
				);
				// registerMany is all or none: a good item before the refused one is not stored either.
				await rejectsWith(
					store.registerMany([
						{ bundle: iris },
						{ bundle: gbdt, opts: { name: "iris-logreg" } },
					]),
					"MLSHIP_INVALID_ARGUMENT",
					/signature differs/,
				);
				assert.deepEqual(
					(await store.list({ includeArchived: true })).map((v) => v.version),
					[1],
				);
				const relabeled = {
					...iris,
					manifest: { ...iris.manifest, labels: ["a", "b", "c"] },
				};
				await rejectsWith(
					store.register(relabeled),
					"MLSHIP_INVALID_ARGUMENT",
					/labels: setosa, versicolor, virginica → a, b, c/,
				);
				// Metadata, description and outputs are not the signature; the same signature registers as before.
				const described = {
					...iris,
					manifest: { ...iris.manifest, description: "new words" },
				};
				assert.equal((await store.register(described)).version, 2);
				const v3 = await store.register(gbdt, {
					name: "iris-logreg",
					allowSignatureChange: true,
				});
				assert.equal(v3.version, 3);
				assert.equal(v3.manifest.signature.inputs[0]?.shape[1], 30);
				// The newest version is the reference now: the old signature is the change.
				await rejectsWith(store.register(iris), "MLSHIP_INVALID_ARGUMENT");
				// An entity is compared with its own newest version: a family may hold different models per entity.
				await store.register(iris, { name: "price", entity: "berlin" });
				await store.register(gbdt, { name: "price", entity: "paris" });
				await rejectsWith(
					store.register(gbdt, { name: "price", entity: "berlin" }),
					"MLSHIP_INVALID_ARGUMENT",
					/differs from price@1/,
				);
			}));

		it("restores an archived version: bare names and lists see it again; restoring an active one does nothing", () =>
			withStore(async (store) => {
				await store.register(iris);
				await store.register(iris);
				const events: ChangeEvent[] = [];
				const stop = store.watch((e) => events.push(e));
				try {
					await store.archive("iris-logreg", 2);
					assert.equal((await store.get("iris-logreg")).version, 1);
					await store.restore("iris-logreg", 2);
					await store.restore("iris-logreg", 2);
					await store.restore("iris-logreg", 1);
					const v = await store.get("iris-logreg");
					assert.equal(v.version, 2);
					assert.equal(v.status, "active");
					assert.deepEqual(
						(await store.list()).map((x) => x.version),
						[1, 2],
					);
					await store.setAlias("iris-logreg", "production", 2);
					await waitFor(() => events.length >= 3, "three events");
					assert.deepEqual(
						events.map((e) => [e.type, e.version]),
						[
							["archived", 2],
							["restored", 2],
							["alias_set", 2],
						],
					);
					await rejectsWith(
						store.restore("iris-logreg", 9),
						"MLSHIP_MODEL_NOT_FOUND",
						/versions: 1, 2/,
					);
					await rejectsWith(store.restore("nope", 1), "MLSHIP_MODEL_NOT_FOUND");
				} finally {
					stop();
				}
			}));

		it("prunes changes past their retention (older than the age AND not among the newest), seq never reused", () =>
			withStore(
				async (store, reopen, sql) => {
					const seqs = async () =>
						(await sql("SELECT seq FROM changes ORDER BY seq")).map((r) =>
							Number(r.seq),
						);
					for (let i = 0; i < 5; i++) await store.register(iris);
					assert.deepEqual(await seqs(), [1, 2, 3, 4, 5], "young changes stay");
					await sql(
						"UPDATE changes SET at = '2000-01-01T00:00:00.000Z' WHERE seq <= 4",
					);
					await store.register(iris);
					assert.deepEqual(
						await seqs(),
						[4, 5, 6],
						"old changes go, except the newest three (minRows)",
					);
					const other = await reopen();
					const events: ChangeEvent[] = [];
					const stop = other.watch((e) => events.push(e));
					try {
						await store.setAlias("iris-logreg", "production", 6);
						await waitFor(() => events.length === 1, "the alias event");
						assert.equal(events[0]?.seq, 7, "seq continues after a prune");
					} finally {
						stop();
					}
				},
				{ retention: { minRows: 3, maxAgeMs: 3_600_000 } },
			));
	});
}
