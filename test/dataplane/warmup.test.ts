// Warm-up before serving: a bare skl2onnx pipeline with strict one-hot encoders serves (its warm-up row uses known
// categories, its requests are checked against them); a failure on a synthesized row warns and serves; one on the
// bundle's own examples keeps the model out.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import { MlshipError } from "../../src/protocol/errors.ts";
import { createRestServer } from "../../src/server/rest/index.ts";
import { assertOutputMatches, bundleDir, golden } from "../helpers/fixtures.ts";

const FIXTURE = "diabetes-cats-ridge";
const bare = join(bundleDir(FIXTURE), "model.onnx");
const g = golden(FIXTURE);

/** Catches process warnings emitted while `fn` runs. */
async function warningsDuring(fn: () => Promise<void>): Promise<string[]> {
	const seen: string[] = [];
	const on = (w: Error) => seen.push(w.message);
	process.on("warning", on);
	try {
		await fn();
		await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
	} finally {
		process.off("warning", on);
	}
	return seen;
}

describe("a bare ONNX pipeline whose one-hot encoders fail on unknown categories", () => {
	let dp: Awaited<ReturnType<typeof createDataPlane>>;
	let warnings: string[] = [];
	before(async () => {
		warnings = await warningsDuring(async () => {
			dp = await createDataPlane({
				models: [{ name: "cats", source: bare }],
				processMetrics: false,
			});
		});
	});
	after(() => dp.close());

	it("loads, warms up without a warning and is ready", async () => {
		assert.deepEqual(dp.loadErrors, []);
		assert.equal(dp.ready(), true);
		assert.deepEqual(warnings, []);
		assert.match(
			(await dp.metrics()).body,
			/^# TYPE mlship_warmup_failures_total counter$/m,
		);
		assert.doesNotMatch(
			(await dp.metrics()).body,
			/mlship_warmup_failures_total\{/,
		);
	});

	it("predicts the golden rows as scikit-learn did", async () => {
		const r = await dp.predict("cats", undefined, g.records);
		const [out] = Object.keys(g.expected);
		assertOutputMatches(
			FIXTURE,
			out as string,
			r.predictions.map((p) => p[out as string]),
			g.expected[out as string] as number[],
		);
	});

	it("an unknown category is a 400 naming the feature and the allowed values", async () => {
		const app = createRestServer(dp);
		try {
			for (const [column, value, allowed] of [
				["age_band", "teen", '"30s", "40s", "50s", "60+", "under-30"'],
				["bp_band", 9, "3, 4, 5, 6"],
				["sex", "martian", '"female", "male"'],
			] as const) {
				const res = await app.inject({
					method: "POST",
					url: "/v2/models/cats/predict",
					payload: {
						instances: [g.records[0], { ...g.records[1], [column]: value }],
					},
				});
				assert.equal(res.statusCode, 400, res.body);
				const { error } = res.json() as { error: string };
				assert.match(error, new RegExp(`row 2.*'${column}'`), error);
				assert.ok(
					error.includes(
						`${JSON.stringify(value)} is not one of the allowed categories`,
					),
					error,
				);
				for (const a of allowed.split(", "))
					assert.ok(error.includes(a.replaceAll('"', "")), `${a} in ${error}`);
			}
		} finally {
			await app.close();
		}
	});
});

describe("warm-up failures", () => {
	let dir: string;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-warmup-"));
	});
	after(() => rm(dir, { recursive: true, force: true }));

	/** A copy of the fixture bundle whose manifest is edited by `edit`. */
	async function bundle(
		name: string,
		edit: (m: Record<string, unknown>) => void,
	): Promise<string> {
		const d = join(dir, name);
		await cp(bundleDir(FIXTURE), d, { recursive: true });
		const m = parse(await readFile(join(d, "mlship.yaml"), "utf8"));
		edit(m);
		await writeFile(join(d, "mlship.yaml"), stringify(m));
		return d;
	}

	it("on a synthesized row: the model serves, with a warning and a count", async () => {
		// A manifest that lists no categories: the synthesized row's empty strings are unknown to the encoders.
		const source = await bundle("no-categories", (m) => {
			for (const f of m.features as Record<string, unknown>[])
				delete f.categories;
		});
		let dp: Awaited<ReturnType<typeof createDataPlane>> | undefined;
		const warnings = await warningsDuring(async () => {
			dp = await createDataPlane({
				models: [{ name: "cats", source }],
				processMetrics: false,
			});
		});
		assert.ok(dp);
		try {
			assert.deepEqual(dp.loadErrors, []);
			assert.equal(dp.modelReady("cats"), true);
			assert.equal(warnings.length, 1, warnings.join("\n"));
			assert.match(
				warnings[0] as string,
				/version 1 of 'cats' serves, but its warm-up on a synthesized row failed: .*Unknown Category/i,
			);
			assert.match(
				(await dp.metrics()).body,
				/^mlship_warmup_failures_total\{model="cats"\} 1$/m,
			);
			const r = await dp.predict("cats", undefined, g.records.slice(0, 2));
			assert.equal(r.predictions.length, 2);
		} finally {
			await dp.close();
		}
	});

	it("on the bundle's own examples: the model does not serve", async () => {
		const source = await bundle("bad-example", (m) => {
			for (const f of m.features as Record<string, unknown>[])
				delete f.categories;
			m.examples = [{ ...g.records[0], sex: "martian" }];
		});
		const dp = await createDataPlane({
			models: [{ name: "cats", source }],
			processMetrics: false,
		});
		try {
			assert.equal(dp.loadErrors.length, 1);
			const e = dp.loadErrors[0] as MlshipError;
			assert.ok(e instanceof MlshipError);
			assert.match(e.message, /version 1 of 'cats' failed its warm-up/);
			assert.equal(dp.modelReady("cats"), false);
			assert.doesNotMatch(
				(await dp.metrics()).body,
				/mlship_warmup_failures_total\{/,
			);
		} finally {
			await dp.close();
		}
	});
});
