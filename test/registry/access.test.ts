// Tokens and the audit log in the registry, on SQLite and on a real PostgreSQL: what is stored (hashes, never
// secrets), who is recorded for each registry change, filters, and that a failed change records nothing.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Bundle, readBundle } from "../../src/bundle/bundle.ts";
import { withActor } from "../../src/registry/core/audit.ts";
import { hashToken } from "../../src/registry/core/tokens.ts";
import { PostgresStore } from "../../src/registry/store/postgres/store.ts";
import { SqliteStore } from "../../src/registry/store/sqlite/store.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";

const IRIS = join(
	import.meta.dirname,
	"..",
	"fixtures",
	"models",
	"iris-logreg",
);

let pg: Promise<PostgresServer> | undefined;
after(async () => {
	if (pg) await (await pg).stop();
});

const STORES: [
	string,
	() => Promise<{ store: ModelStore; cleanup: () => Promise<void> }>,
][] = [
	[
		"sqlite",
		async () => {
			const dir = await mkdtemp(join(tmpdir(), "mlship-access-"));
			return {
				store: new SqliteStore(join(dir, "registry.db")),
				cleanup: () => rm(dir, { recursive: true, force: true }),
			};
		},
	],
	[
		"postgres",
		async () => {
			pg ??= startPostgres();
			const url = await createDatabase(
				(await pg).url,
				uniqueDatabaseName("acc"),
			);
			return { store: await PostgresStore.open(url), cleanup: async () => {} };
		},
	],
];

for (const [kind, open] of STORES)
	describe(`registry tokens and audit log (${kind})`, () => {
		let bundle: Bundle;
		const use = async (fn: (store: ModelStore) => Promise<void>) => {
			bundle ??= await readBundle(IRIS);
			const { store, cleanup } = await open();
			try {
				await fn(store);
			} finally {
				await store.close();
				await cleanup();
			}
		};

		it("stores a token's SHA-256 only; lists without it; revokes once", () =>
			use(async (store) => {
				const expires = new Date(Date.now() + 3600_000);
				const { token, info } = await store.tokens.create({
					scopes: ["read", "predict", "read"],
					models: ["churn*"],
					expiresAt: expires,
					description: "svc",
				});
				assert.match(token, /^mls_[A-Za-z0-9_-]{43}$/);
				assert.deepEqual(info.scopes, ["predict", "read"]);
				const [stored] = await store.tokens.all();
				assert.equal(stored?.hash, hashToken(token));
				assert.equal(stored?.expiresAt, expires.toISOString());
				assert.ok(!JSON.stringify(await store.tokens.list()).includes(token));
				assert.ok(
					!("hash" in (((await store.tokens.list())[0] ?? {}) as object)),
				);
				await store.tokens.touch([info.id]);
				assert.ok((await store.tokens.list())[0]?.lastUsedAt);
				await store.tokens.revoke(info.id);
				assert.deepEqual(await store.tokens.list(), []);
				assert.equal(
					(await store.tokens.list({ includeRevoked: true }))[0]?.id,
					info.id,
				);
				await assert.rejects(store.tokens.revoke(info.id), /already revoked/);
				await assert.rejects(
					store.tokens.revoke("tok_ffffffffffff"),
					/no token 'tok_ffffffffffff'/,
				);
				await assert.rejects(
					store.tokens.create({ scopes: [] }),
					/at least one scope/,
				);
			}));

		it("records register, alias moves, archive, restore, delete and token changes with who and from where", () =>
			use(async (store) => {
				const t0 = new Date(Date.now() - 1000);
				await store.register(bundle, { name: "churn" });
				await store.register(bundle, { name: "churn" });
				await withActor({ actor: "tok_0123456789ab", source: "10.1.2.3" }, () =>
					store.setAlias("churn", "production", 2),
				);
				await store.deleteAlias("churn", "production");
				await store.archive("churn", 1);
				await store.restore("churn", 1);
				await store.setMetadata("churn", 1, { owner: "ana" });
				const { info } = await store.tokens.create({ scopes: ["admin"] });
				await store.tokens.revoke(info.id);
				await store.delete("churn", 1);
				await store.audit.record({
					action: "route.set",
					target: "churn@production",
					detail: { split: { "2": 90, "1": 10 } },
					actor: "tok_aaaaaaaaaaaa",
					source: "10.9.9.9",
				});
				const events = (await store.audit.list({ since: t0 })).reverse();
				const local = events[0]?.actor as string;
				assert.match(local, /^local:/);
				assert.deepEqual(
					events.map((e) => [
						e.action,
						e.target,
						e.actor === local ? "local" : e.actor,
						e.source,
					]),
					[
						["model.register", "churn@1", "local", "cli"],
						["model.register", "churn@2", "local", "cli"],
						["alias.set", "churn@production", "tok_0123456789ab", "10.1.2.3"],
						["alias.delete", "churn@production", "local", "cli"],
						["model.archive", "churn@1", "local", "cli"],
						["model.restore", "churn@1", "local", "cli"],
						["model.metadata", "churn@1", "local", "cli"],
						["token.create", info.id, "local", "cli"],
						["token.revoke", info.id, "local", "cli"],
						["model.delete", "churn@1", "local", "cli"],
						["route.set", "churn@production", "tok_aaaaaaaaaaaa", "10.9.9.9"],
					],
				);
				assert.deepEqual(events[2]?.detail, { version: 2 });
				assert.deepEqual(events[7]?.detail, { scopes: ["admin"], models: [] });
				assert.deepEqual(events.at(-1)?.detail, {
					split: { "2": 90, "1": 10 },
				});
				// Filters: an action or a prefix, a time, a limit (newest first).
				assert.deepEqual(
					(await store.audit.list({ action: "token" })).map((e) => e.action),
					["token.revoke", "token.create"],
				);
				assert.equal(
					(await store.audit.list({ action: "alias.set" })).length,
					1,
				);
				assert.deepEqual(
					await store.audit.list({ since: new Date(Date.now() + 60_000) }),
					[],
				);
				assert.deepEqual(
					(await store.audit.list({ limit: 2 })).map((e) => e.action),
					["route.set", "model.delete"],
				);
				await assert.rejects(
					store.audit.list({ limit: 0 }),
					/limit must be a whole number/,
				);
				await assert.rejects(
					store.audit.record({ action: "Drop Table;", target: "x" }),
					/invalid audit action/,
				);
			}));

		it("a change that fails records nothing", () =>
			use(async (store) => {
				await store.register(bundle, { name: "churn" });
				const before = (await store.audit.list()).length;
				await assert.rejects(
					store.setAlias("churn", "production", 9),
					/version/,
				);
				await assert.rejects(store.archive("nope", 1));
				assert.equal((await store.audit.list()).length, before);
			}));
	});
