// sql compile: every tree/linear fixture compiled to SQL and run for real in PostgreSQL (harness), DuckDB and
// SQLite answers as the trees runtime does on the fixture rows, on rows right at (and one double either side of)
// split thresholds and float32 rounding midpoints, and with missing values; BigQuery text parses.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import pg from "pg";
import { readBundle } from "../../src/bundle/bundle.ts";
import type { Bundle } from "../../src/bundle/types.ts";
import { loadBundle } from "../../src/model.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import {
	type CompiledSql,
	compileBundle,
} from "../../src/sql/compile/compile.ts";
import { type PostgresServer, startPostgres } from "../harness/postgres.ts";
import {
	assertClose,
	bundleDir,
	golden,
	ONNX_TREE_FIXTURES,
	TREE_FIXTURES,
} from "../helpers/fixtures.ts";

const ALL = [...TREE_FIXTURES, ...ONNX_TREE_FIXTURES];

type Row = Record<string, unknown>;
/** Outputs by name, row-major: label per row, or every value of an array output per row. */
type Answer = Record<string, number[]>;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const u64 = new BigInt64Array(f64.buffer);
function nextDouble(x: number, dir: 1 | -1): number {
	if (x === 0) return dir * Number.MIN_VALUE;
	f64[0] = x;
	u64[0] = (u64[0] as bigint) + BigInt(x > 0 ? dir : -dir);
	return f64[0] as number;
}
function nextFloat(x: number, dir: 1 | -1): number {
	f32[0] = x;
	if (x === 0) return dir * 1.401298464324817e-45;
	u32[0] = (u32[0] as number) + (x > 0 ? dir : -dir);
	return f32[0] as number;
}

/** Values at a threshold's edges: it, the doubles beside it, and the float32 rounding midpoints around it. */
function edges(t: number): number[] {
	const f = Math.fround(t);
	const up = (f + nextFloat(f, 1)) / 2;
	const down = (f + nextFloat(f, -1)) / 2;
	return [
		t,
		nextDouble(t, 1),
		nextDouble(t, -1),
		f,
		up,
		nextDouble(up, 1),
		nextDouble(up, -1),
		down,
		nextDouble(down, 1),
		nextDouble(down, -1),
	].filter((v) => Number.isFinite(v));
}

/** Fixture rows plus edge rows: the first row with one split feature set to each edge value of its threshold. */
function edgeRows(
	bundle: Bundle,
	c: CompiledSql,
	rows: Row[],
	model: Awaited<ReturnType<typeof treeModel>>,
): Row[] {
	const out: Row[] = [];
	const body = model.body;
	if (body.kind !== "ensemble") return out;
	const base = rows[0] as Row;
	const allow = new Set(
		(bundle.manifest.features ?? [])
			.filter((f) => f.allow_missing)
			.map((f) => f.name),
	);
	let taken = 0;
	for (const tree of body.trees.slice(0, 12)) {
		for (let n = 0; n < tree.feature.length && taken < 60; n++) {
			const fi = tree.feature[n] as number;
			if (fi < 0 || tree.mode[n] === 3) continue;
			const col = c.featureColumns[fi] as string;
			if (typeof base[col] !== "number" && base[col] !== null) continue;
			taken++;
			for (const v of edges(tree.threshold[n] as number))
				out.push({ ...base, [col]: v });
			if (allow.has(col)) out.push({ ...base, [col]: null });
		}
	}
	return out;
}

async function treeModel(bundle: Bundle) {
	const { loadTreeModel, nameFeatures } = await import(
		"../../src/runtime/trees/load.ts"
	);
	const { artifactBytes } = await import("../../src/bundle/types.ts");
	return nameFeatures(
		loadTreeModel(
			artifactBytes(bundle),
			bundle.source,
			bundle.manifest.signature,
		),
		bundle.manifest,
	);
}

/** The trees runtime's answer (every fixture run through runtime: trees, inline). */
async function runtimeAnswer(bundle: Bundle, rows: Row[]): Promise<Answer> {
	const m = await loadBundle(
		{ ...bundle, manifest: { ...bundle.manifest, runtime: "trees" } },
		{ mode: "inline" },
	);
	try {
		const outs = (await m.predict(m.encodeTable(rows))) as Tensor[];
		return Object.fromEntries(
			outs.map((t) => [
				t.name,
				Array.from(t.data as ArrayLike<number | bigint>, Number),
			]),
		);
	} finally {
		await m.close();
	}
}

function assertSame(
	where: string,
	got: Answer,
	want: Answer,
	rows: Row[],
): void {
	for (const [name, w] of Object.entries(want)) {
		const g = got[name];
		assert.ok(
			g,
			`${where}: no output '${name}' (got ${Object.keys(got).join(", ")})`,
		);
		assert.equal(g.length, w.length, `${where}/${name}: length`);
		const width = w.length / rows.length;
		for (let i = 0; i < w.length; i++) {
			const at = `${where}/${name}[${i}] row ${JSON.stringify(rows[Math.floor(i / width)])}`;
			if (name === "label") assert.equal(g[i], w[i], at);
			else if (Number.isNaN(w[i]))
				assert.ok(Number.isNaN(g[i]), `${at}: got ${g[i]}, want NULL (NaN)`);
			else assertClose(g[i] as number, w[i] as number, at);
		}
	}
}

/** SQL answers (one object per row, outputs by name) flattened like runtimeAnswer. */
function flatten(c: CompiledSql, objs: Row[]): Answer {
	const out: Answer = {};
	for (const o of c.outputs) {
		const vals: number[] = [];
		for (const r of objs) {
			let v = r[o.name];
			if (typeof v === "string" && o.shape === "array") v = JSON.parse(v);
			if (Array.isArray(v))
				vals.push(...v.map((x) => (x === null ? Number.NaN : Number(x))));
			else vals.push(v === null ? Number.NaN : Number(v));
		}
		out[o.name] = vals;
	}
	return out;
}

const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;

function tableSql(
	c: CompiledSql,
	table: string,
	dbl: string,
	txt: string,
): string {
	return `CREATE TABLE ${table} (__row INTEGER, ${c.columns.map((col) => `${quote(col.name)} ${col.kind === "text" ? txt : dbl}`).join(", ")})`;
}

function values(c: CompiledSql, rows: Row[]): unknown[][] {
	return rows.map((r, i) => [
		i,
		...c.columns.map((col) => {
			const v = r[col.name];
			return v === undefined || v === null
				? null
				: col.kind === "text"
					? String(v)
					: Number(v);
		}),
	]);
}

let server: PostgresServer;
let client: pg.Client;
before(async () => {
	server = await startPostgres();
	client = new pg.Client({ connectionString: server.url });
	await client.connect();
});
after(async () => {
	await client?.end();
	await server?.stop();
});

async function cases(fixture: string) {
	const bundle = await readBundle(bundleDir(fixture));
	const rows = golden(fixture).records;
	const probe = compileBundle(bundle, { dialect: "duckdb", name: "m" });
	const model = await treeModel(bundle);
	const all = [...rows, ...edgeRows(bundle, probe, rows, model)];
	return { bundle, rows: all, want: await runtimeAnswer(bundle, all) };
}

describe("sql compile: compiled SQL answers as the trees runtime", () => {
	for (const fixture of ALL) {
		it(`${fixture}: PostgreSQL function and view, DuckDB macro and view, SQLite view`, async () => {
			const { bundle, rows, want } = await cases(fixture);
			const tag = fixture.replace(/\W/g, "_");
			// PostgreSQL
			const fn = compileBundle(bundle, {
				dialect: "postgres",
				name: `f_${tag}`,
			});
			const view = compileBundle(bundle, {
				dialect: "postgres",
				name: `v_${tag}`,
				as: "view",
				from: `t_${tag}`,
				keep: ["__row"],
			});
			await client.query(tableSql(fn, `t_${tag}`, "float8", "text"));
			for (const v of values(fn, rows))
				await client.query(
					`INSERT INTO t_${tag} VALUES (${v.map((_, i) => `$${i + 1}`).join(", ")})`,
					v,
				);
			await client.query(fn.sql);
			await client.query(view.sql);
			const args = fn.columns.map((c) => quote(c.name)).join(", ");
			const pf = await client.query(
				`SELECT r.* FROM t_${tag} t CROSS JOIN LATERAL f_${tag}(${args}) AS r ORDER BY t.__row`,
			);
			assertSame(
				`${fixture} postgres function`,
				flatten(fn, pf.rows),
				want,
				rows,
			);
			const pv = await client.query(`SELECT * FROM v_${tag} ORDER BY __row`);
			assertSame(
				`${fixture} postgres view`,
				flatten(view, pv.rows),
				want,
				rows,
			);
			// DuckDB
			const db = await DuckDBInstance.create(":memory:");
			const conn = await db.connect();
			try {
				const dfn = compileBundle(bundle, { dialect: "duckdb", name: "m" });
				const dview = compileBundle(bundle, {
					dialect: "duckdb",
					name: "v",
					as: "view",
					from: "t",
					keep: ["__row"],
				});
				await conn.run(tableSql(dfn, "t", "DOUBLE", "VARCHAR"));
				const app = await conn.createAppender("t");
				for (const v of values(dfn, rows)) {
					for (const x of v)
						if (x === null) app.appendNull();
						else if (typeof x === "string") app.appendVarchar(x);
						else if (Number.isInteger(x) && x === v[0])
							app.appendInteger(x as number);
						else app.appendDouble(x as number);
					app.endRow();
				}
				app.closeSync();
				await conn.run(dfn.sql);
				await conn.run(dview.sql);
				const one = dfn.outputs.length === 1;
				const r = await conn.runAndReadAll(
					`SELECT m(${args}) AS r FROM t ORDER BY __row`,
				);
				const objs = r
					.getRowObjectsJson()
					.map((o) =>
						one ? { [dfn.outputs[0]?.name as string]: o.r } : (o.r as Row),
					);
				assertSame(`${fixture} duckdb macro`, flatten(dfn, objs), want, rows);
				const rv = await conn.runAndReadAll("SELECT * FROM v ORDER BY __row");
				assertSame(
					`${fixture} duckdb view`,
					flatten(dview, rv.getRowObjectsJson()),
					want,
					rows,
				);
			} finally {
				conn.closeSync();
				db.closeSync();
			}
			// SQLite
			const lite = new DatabaseSync(":memory:");
			try {
				const sv = compileBundle(bundle, {
					dialect: "sqlite",
					name: "v",
					as: "view",
					from: "t",
					keep: ["__row"],
				});
				lite.exec(tableSql(sv, "t", "REAL", "TEXT"));
				const ins = lite.prepare(
					`INSERT INTO t VALUES (${["__row", ...sv.columns].map(() => "?").join(", ")})`,
				);
				for (const v of values(sv, rows))
					ins.run(...(v as (number | string | null)[]));
				lite.exec(sv.sql);
				const got = lite
					.prepare("SELECT * FROM v ORDER BY __row")
					.all() as Row[];
				assertSame(`${fixture} sqlite view`, flatten(sv, got), want, rows);
			} finally {
				lite.close();
			}
		});
	}
});
