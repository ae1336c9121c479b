// Both stores suggest the nearest registered name and alias for a typo, on every path that reports them.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { PostgresStore } from "../../src/registry/store/postgres/store.ts";
import { SqliteStore } from "../../src/registry/store/sqlite/store.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { rejectsWith } from "./store.contract.ts";

let pgServer: PostgresServer | undefined;
let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-suggest-"));
});
after(async () => {
	await pgServer?.stop();
	await rm(dir, { recursive: true, force: true });
});

const stores: Record<string, () => Promise<ModelStore>> = {
	sqlite: async () => new SqliteStore(join(dir, "r.db")),
	postgres: async () => {
		pgServer ??= await startPostgres();
		return PostgresStore.open(
			await createDatabase(pgServer.url, uniqueDatabaseName("suggest")),
		);
	},
};

for (const [kind, open] of Object.entries(stores))
	describe(`${kind}: did you mean`, () => {
		let store: ModelStore;
		before(async () => {
			store = await open();
			const b = await readBundle(bundleDir("iris-logreg"));
			await store.register(b, { aliases: ["production"] });
			await store.register(await readBundle(bundleDir("wine-xgb")));
		});
		after(() => store.close());

		it("an unknown model names the nearest registered one", async () => {
			await rejectsWith(
				store.get("iris-logref"),
				"MLSHIP_MODEL_NOT_FOUND",
				/model 'iris-logref' is not registered in .*; did you mean 'iris-logreg'\? \(see 'mlship models list'\)/,
			);
			await rejectsWith(
				store.get("iris-logref@1"),
				"MLSHIP_MODEL_NOT_FOUND",
				/did you mean 'iris-logreg'\?/,
			);
			await rejectsWith(
				store.setAlias("wine-xbg", "production", 1),
				"MLSHIP_MODEL_NOT_FOUND",
				/model 'wine-xbg' is not registered .*; did you mean 'wine-xgb'\?/,
			);
			// nothing near: no suggestion
			await rejectsWith(
				store.get("churn"),
				"MLSHIP_MODEL_NOT_FOUND",
				/^model 'churn' is not registered in [^;]* \(see 'mlship models list'\)$/,
			);
		});

		it("an unknown alias names the nearest alias of that model", async () => {
			await rejectsWith(
				store.get("iris-logreg@prodution"),
				"MLSHIP_MODEL_NOT_FOUND",
				/model 'iris-logreg' has no alias 'prodution'; did you mean 'production'\? \(aliases: production;/,
			);
		});
	});
