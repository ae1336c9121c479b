// Traffic policies in the registry, on SQLite and a real PostgreSQL: stored, listed, followed by another
// instance through the change feed, and every bad policy refused with a clear error and nothing changed.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { withActor } from "../../src/registry/core/audit.ts";
import { PostgresStore } from "../../src/registry/store/postgres/store.ts";
import { SqliteStore } from "../../src/registry/store/sqlite/store.ts";
import type { ChangeEvent, ModelStore } from "../../src/registry/types.ts";
import { promoteRollout } from "../../src/rollout/control.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { rejectsWith, waitFor } from "./store.contract.ts";

let shared: Promise<PostgresServer> | undefined;
after(async () => {
	if (shared) await (await shared).stop();
});

interface Pair {
	a: ModelStore;
	b: ModelStore;
	close(): Promise<void>;
}

const kinds: Record<string, () => Promise<Pair>> = {
	sqlite: async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-routes-"));
		const path = join(dir, "r.db");
		const a = new SqliteStore(path);
		const b = new SqliteStore(path);
		return {
			a,
			b,
			close: async () => {
				await a.close();
				await b.close();
				await rm(dir, { recursive: true, force: true });
			},
		};
	},
	postgres: async () => {
		shared ??= startPostgres();
		const url = await createDatabase(
			(await shared).url,
			uniqueDatabaseName("routes"),
		);
		const a = await PostgresStore.open(url);
		const b = await PostgresStore.open(url);
		return {
			a,
			b,
			close: async () => {
				await a.close();
				await b.close();
			},
		};
	},
};

/** churn@1..4 (diabetes models: same features), production → 1; version 4 archived. */
async function seed(s: ModelStore): Promise<void> {
	const lgbm = await readBundle(bundleDir("diabetes-lgbm"));
	const rf = await readBundle(bundleDir("diabetes-rf"));
	await s.register(lgbm, { name: "churn", aliases: ["production"] });
	await s.register(rf, { name: "churn" });
	await s.register(lgbm, { name: "churn" });
	await s.register(rf, { name: "churn" });
	await s.archive("churn", 4);
}

for (const [kind, make] of Object.entries(kinds)) {
	describe(`traffic policies (${kind})`, () => {
		it("stores a policy, keeps its salt on update, lists it, and another instance hears a 'route' change", async () => {
			const { a, b, close } = await make();
			try {
				await seed(a);
				const seen: ChangeEvent[] = [];
				const stop = b.watch((e) => seen.push(e));
				const r = await a.setRoute(
					"churn",
					"production",
					{
						split: [
							{ version: 1, weight: 90 },
							{ version: 2, weight: 10 },
						],
						sticky: { key: "customer_id", from: "feature" },
						shadow: [{ version: 3, percent: 50 }],
					},
					"alice",
				);
				assert.equal(r.actor, "alice");
				assert.match(r.policy.salt, /^[a-z0-9]{10}$/);
				assert.deepEqual(r.policy.split, [
					{ version: 1, weight: 90 },
					{ version: 2, weight: 10 },
				]);
				await waitFor(
					() => seen.some((e) => e.type === "route"),
					"the route change on the other instance",
				);
				const ev = seen.find((e) => e.type === "route");
				assert.equal(ev?.name, "churn");
				assert.equal(ev?.alias, "production");
				assert.deepEqual(await b.route("churn", "production"), r);
				// A ramp keeps the salt (keys already on version 2 stay there); a given salt replaces it.
				const ramp = await a.setRoute("churn", "production", {
					split: [
						{ version: 1, weight: 50 },
						{ version: 2, weight: 50 },
					],
				});
				assert.equal(ramp.policy.salt, r.policy.salt);
				assert.equal(ramp.policy.sticky, undefined);
				const salted = await a.setRoute("churn", "production", {
					split: [{ version: 2, weight: 100 }],
					salt: "exp-7",
				});
				assert.equal(salted.policy.salt, "exp-7");
				assert.deepEqual(
					(await b.routes()).map((x) => `${x.name}@${x.alias}`),
					["churn@production"],
				);
				assert.deepEqual(await b.routes("other"), []);
				stop();
			} finally {
				await close();
			}
		});

		it("refuses bad policies with clear errors and changes nothing", async () => {
			const { a, close } = await make();
			try {
				await seed(a);
				const good = await a.setRoute("churn", "production", {
					split: [
						{ version: 1, weight: 90 },
						{ version: 2, weight: 10 },
					],
				});
				const cases: [unknown, string, RegExp][] = [
					[
						{
							split: [
								{ version: 1, weight: 90 },
								{ version: 2, weight: 20 },
							],
						},
						"MLSHIP_INVALID_ARGUMENT",
						/weights must sum to 100, got 110/,
					],
					[
						{
							split: [
								{ version: 1, weight: 90 },
								{ version: 9, weight: 10 },
							],
						},
						"MLSHIP_MODEL_NOT_FOUND",
						/no version 9 \(versions: 1, 2, 3, 4\)/,
					],
					[
						{
							split: [
								{ version: 1, weight: 90 },
								{ version: 4, weight: 10 },
							],
						},
						"MLSHIP_INVALID_ARGUMENT",
						/version 4 is archived/,
					],
					[
						{ shadow: [{ version: 1, percent: 100 }] },
						"MLSHIP_INVALID_ARGUMENT",
						/version 1 cannot shadow itself: 'production' points at it/,
					],
					[
						{
							split: [
								{ version: 1, weight: 50 },
								{ version: 2, weight: 50 },
							],
							shadow: [{ version: 2, percent: 100 }],
						},
						"MLSHIP_INVALID_ARGUMENT",
						/version 2 cannot shadow itself/,
					],
					[
						{
							split: [
								{ version: 1, weight: 50 },
								{ version: 1, weight: 50 },
							],
						},
						"MLSHIP_INVALID_ARGUMENT",
						/version 1 is listed twice in the split/,
					],
					[
						{ bandit: { algorithm: "thompson", arms: [1] } },
						"MLSHIP_INVALID_ARGUMENT",
						/a bandit needs at least 2 arms, got 1/,
					],
					[
						{
							split: [{ version: 1, weight: 100 }],
							bandit: { algorithm: "ucb1", arms: [1, 2] },
						},
						"MLSHIP_INVALID_ARGUMENT",
						/a split and a bandit are exclusive/,
					],
					[{}, "MLSHIP_INVALID_ARGUMENT", /no split, shadow or bandit/],
					[
						{ split: [{ version: 1, weight: "90" }] },
						"MLSHIP_INVALID_ARGUMENT",
						/split\.0\.weight/,
					],
				];
				for (const [policy, code, message] of cases)
					await rejectsWith(
						a.setRoute(
							"churn",
							"production",
							policy as Parameters<ModelStore["setRoute"]>[2],
						),
						code as "MLSHIP_INVALID_ARGUMENT",
						message,
					);
				await rejectsWith(
					a.setRoute("churn", "staging", {
						split: [{ version: 1, weight: 100 }],
					}),
					"MLSHIP_MODEL_NOT_FOUND",
					/no alias 'staging': a traffic policy belongs to an alias/,
				);
				assert.deepEqual(await a.route("churn", "production"), good);
				// A version in a policy cannot be archived; clearing the policy frees it.
				await rejectsWith(
					a.archive("churn", 2),
					"MLSHIP_INVALID_ARGUMENT",
					/the traffic policy of 'production' uses it/,
				);
				await a.clearRoute("churn", "production");
				assert.equal(await a.route("churn", "production"), undefined);
				await a.archive("churn", 2);
				await rejectsWith(
					a.clearRoute("churn", "production"),
					"MLSHIP_MODEL_NOT_FOUND",
					/churn@production has no traffic policy/,
				);
			} finally {
				await close();
			}
		});

		it("a policy goes with its alias, which cannot move onto its own shadow", async () => {
			const { a, close } = await make();
			try {
				await seed(a);
				await a.setRoute("churn", "production", {
					shadow: [{ version: 2, percent: 10 }],
				});
				await rejectsWith(
					a.setAlias("churn", "production", 2),
					"MLSHIP_INVALID_ARGUMENT",
					/its traffic policy shadows that version/,
				);
				assert.equal((await a.get("churn@production")).version, 1);
				await a.setAlias("churn", "production", 3);
				await a.deleteAlias("churn", "production");
				assert.deepEqual(await a.routes("churn"), []);
			} finally {
				await close();
			}
		});
		it("keeps what each alias was configured to serve after every change, in the change's transaction, with who", async () => {
			const { a, b, close } = await make();
			try {
				const t0 = Date.now();
				await seed(a);
				await withActor({ actor: "alice", source: "test" }, () =>
					a.setRoute("churn", "production", {
						split: [
							{ version: 1, weight: 90 },
							{ version: 2, weight: 10 },
						],
					}),
				);
				// Refused changes leave no row.
				await rejectsWith(
					a.setRoute("churn", "production", {
						split: [{ version: 4, weight: 100 }],
					}),
					"MLSHIP_INVALID_ARGUMENT",
				);
				// A rollout's steps go through the same writes: started (first split), then promoted.
				await a.clearRoute("churn", "production");
				const r = await a.startRollout({
					name: "churn",
					alias: "production",
					to: 3,
					steps: [25, 100],
					intervalMs: 60_000,
					maxErrorRate: 0.01,
					minRequests: 1,
					failures: 1,
				});
				await promoteRollout(a, r.name, r.alias);
				const all = await b.trafficHistory({ since: t0 - 1 });
				assert.deepEqual(
					all.map((c) => [c.alias, c.version, c.policy?.split ?? null]),
					[
						["production", 1, null],
						[
							"production",
							1,
							[
								{ version: 1, weight: 90 },
								{ version: 2, weight: 10 },
							],
						],
						["production", 1, null],
						[
							"production",
							1,
							[
								{ version: 1, weight: 75 },
								{ version: 3, weight: 25 },
							],
						],
						[
							"production",
							3,
							[
								{ version: 1, weight: 75 },
								{ version: 3, weight: 25 },
							],
						],
						["production", 3, null],
					],
				);
				assert.equal(all[1]?.actor, "alice");
				assert.equal("salt" in (all[1]?.policy ?? {}), false);
				assert.ok(all.every((c) => c.name === "churn" && c.at >= t0 - 1));
				// A later range starts with the state before it.
				const later = await b.trafficHistory({
					name: "churn",
					alias: "production",
					since: Date.now() + 60_000,
				});
				assert.deepEqual(
					later.map((c) => [c.version, c.policy]),
					[[3, null]],
				);
				assert.deepEqual(
					(await b.trafficHistory({ since: t0 - 1, limit: 2 })).map(
						(c) => c.version,
					),
					[3, 3],
				);
				await rejectsWith(
					b.trafficHistory({ since: 0, limit: 0 }),
					"MLSHIP_INVALID_ARGUMENT",
					/limit must be a whole number/,
				);
			} finally {
				await close();
			}
		});

		it("per-entity members' aliases are not written to the policy history (a bulk registration would fill it)", async () => {
			const { a, b, close } = await make();
			try {
				const since = Date.now() - 1;
				const lgbm = await readBundle(bundleDir("diabetes-lgbm"));
				await a.register(lgbm, { name: "price", aliases: ["production"] });
				await a.registerMany(
					["berlin", "paris", "rome"].map((entity) => ({
						bundle: lgbm,
						opts: { name: "price", entity, aliases: [`production-${entity}`] },
					})),
				);
				await a.register(lgbm, {
					name: "price",
					entity: "oslo",
					aliases: ["staging"],
				});
				assert.deepEqual(
					(await b.trafficHistory({ since })).map((c) => [
						c.name,
						c.alias,
						c.version,
					]),
					[["price", "production", 1]],
				);
			} finally {
				await close();
			}
		});

		it("the state before a range is sent only for aliases changed in it or with a policy now; since must be whole ms", async () => {
			const { a, b, close } = await make();
			try {
				await seed(a);
				// Aliases set before the range and untouched since (as an entity's alias among thousands).
				for (const alias of ["idle-a", "idle-b", "moved"])
					await a.setAlias("churn", alias, 2);
				await a.setRoute("churn", "production", {
					split: [
						{ version: 1, weight: 90 },
						{ version: 2, weight: 10 },
					],
				});
				// The range starts after those rows (their `at` is the clock of the write).
				const last = Date.now();
				while (Date.now() <= last) await new Promise((r) => setTimeout(r, 2));
				const since = Date.now();
				await a.setAlias("churn", "moved", 3);
				const h = await b.trafficHistory({ since });
				assert.deepEqual(
					h.map((c) => [c.alias, c.version, c.at < since]),
					[
						["moved", 2, true],
						["production", 1, true],
						["moved", 3, false],
					],
				);
				assert.deepEqual(h[1]?.policy?.split, [
					{ version: 1, weight: 90 },
					{ version: 2, weight: 10 },
				]);
				// One alias asked for by name and alias: its state before, even unchanged in the range and without a policy.
				for (const alias of ["production", "idle-a"])
					assert.deepEqual(
						(await b.trafficHistory({ name: "churn", alias, since })).map(
							(c) => [c.alias, c.version],
						),
						[[alias, alias === "production" ? 1 : 2]],
					);
				// A fraction of a ms is refused on both backends (PostgreSQL compares it with a BIGINT column).
				for (const bad of [since + 0.5, Number.NaN, 2 ** 60])
					await rejectsWith(
						b.trafficHistory({ since: bad }),
						"MLSHIP_INVALID_ARGUMENT",
						/since must be a whole number of ms since the epoch/,
					);
			} finally {
				await close();
			}
		});
	});
}
