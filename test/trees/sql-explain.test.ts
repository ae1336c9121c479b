// SQL explain(model, f1, ...) in DuckDB and SQLite: per row the JSON of model.explain for that row (same values,
// top 5), NULL for a row with a NULL feature, and a clear error for a model that cannot explain.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import type { ExplainResult } from "../../src/index.ts";
import { loadModel } from "../../src/model.ts";
import { registerDuckDBFunctions } from "../../src/sql/duckdb.ts";
import { modelRefsIn } from "../../src/sql/models.ts";
import { registerSqliteFunctions } from "../../src/sql/sqlite.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const F = "trees/wine-xgb-json";
const ONNX = "wine-xgb";
const N = 5;
const rows = golden(F).records.slice(0, N) as Record<string, number>[];
const names = Object.keys(rows[0] as object);
const ref = bundleDir(F);
const values = rows
	.map((r, i) => `(${i}, ${names.map((n) => r[n]).join(", ")})`)
	.join(", ");
const create = `CREATE TABLE wine (id INTEGER, ${names.map((n) => `${n} DOUBLE`).join(", ")})`;
const insert = `INSERT INTO wine VALUES ${values}, (${N}, NULL${", 1".repeat(names.length - 1)})`;
const query = (model: string) =>
	`SELECT id, explain('${model}', ${names.join(", ")}) AS why FROM wine ORDER BY id`;

let want: ExplainResult;
before(async () => {
	const m = await loadModel(ref, { mode: "inline" });
	want = await m.explain(rows);
	await m.close();
});

function check(got: { id: unknown; why: unknown }[]): void {
	assert.equal(got.length, N + 1);
	for (let i = 0; i < N; i++) {
		const row = JSON.parse(
			String(got[i]?.why),
		) as ExplainResult["explanations"][number];
		const exp = want.explanations[i];
		assert.ok(exp);
		assert.deepEqual(
			row.map((t) => [t.target, t.top.map((c) => c.feature)]),
			exp.map((t) => [t.target, t.top.map((c) => c.feature)]),
		);
		row.forEach((t, k) => {
			assert.ok(Math.abs(t.base - (exp[k]?.base as number)) <= 1e-12);
			for (const n of names)
				assert.ok(
					Math.abs((t.values[n] as number) - (exp[k]?.values[n] as number)) <=
						1e-12,
					`row ${i} ${t.target} ${n}`,
				);
		});
	}
	assert.equal(got[N]?.why, null, "a NULL feature gives NULL");
}

describe("SQL explain()", () => {
	it("the query's model references include explain()'s", () => {
		assert.deepEqual(modelRefsIn(query("a@b")), ["a@b"]);
	});

	describe("DuckDB", () => {
		let db: DuckDBInstance;
		after(() => db?.closeSync());
		it("gives each row's explanation as JSON; NULL for a NULL feature; refuses a model that cannot explain", async () => {
			db = await DuckDBInstance.create(":memory:");
			const conn = await db.connect();
			const fns = await registerDuckDBFunctions(conn, {
				models: [ref, bundleDir(ONNX)],
			});
			try {
				await conn.run(create);
				await conn.run(insert);
				const r = await conn.runAndReadAll(query(ref));
				check(r.getRowObjectsJS() as { id: unknown; why: unknown }[]);
				await assert.rejects(
					conn.runAndReadAll(query(bundleDir(ONNX))),
					/runtime: trees/,
				);
			} finally {
				await fns.close();
				conn.closeSync();
			}
		});
	});

	describe("SQLite", () => {
		it("gives each row's explanation as JSON; NULL for a NULL feature; refuses a model that cannot explain", async () => {
			const db = new DatabaseSync(":memory:");
			const fns = await registerSqliteFunctions(db, {
				models: [ref, bundleDir(ONNX)],
			});
			try {
				db.exec(create);
				db.exec(insert);
				check(db.prepare(query(ref)).all() as { id: unknown; why: unknown }[]);
				assert.throws(
					() =>
						db
							.prepare(
								`SELECT explain('${bundleDir(ONNX)}', ${Array(13).fill("1.0").join(", ")})`,
							)
							.all(),
					/runtime: trees/,
				);
			} finally {
				await fns.close();
				db.close();
			}
		});
	});
});
