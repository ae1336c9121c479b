// Bandit arm totals in a SQLite registry: deltas add up (never overwrite), concurrent flushes included.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { openRegistry } from "../../src/registry/open.ts";

it("addArmStats adds each replica's deltas to the totals; armStats reads them merged", async () => {
	const dir = await mkdtemp(join(tmpdir(), "mlship-arms-"));
	const store = await openRegistry(`sqlite:${join(dir, "r.db")}`);
	try {
		const d = (version: number, pulls: number, rewardSum: number) => ({
			name: "churn",
			alias: "production",
			version,
			pulls,
			rewardSum,
		});
		await Promise.all([
			store.addArmStats([d(1, 10, 1.5), d(2, 4, 0.25)]),
			store.addArmStats([d(1, 5, 0.5)]),
			store.addArmStats([]),
		]);
		await store.addArmStats([d(2, 1, 1)]);
		assert.deepEqual(await store.armStats("churn", "production"), [
			d(1, 15, 2),
			d(2, 5, 1.25),
		]);
		assert.deepEqual(await store.armStats("churn", "staging"), []);
		await assert.rejects(
			store.addArmStats([{ ...d(1, 1, 1), alias: "bad alias" }]),
			/alias/,
		);
	} finally {
		await store.close();
		await rm(dir, { recursive: true, force: true });
	}
});
