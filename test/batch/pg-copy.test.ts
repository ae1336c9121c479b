// The binary COPY reader batch work claims rows with (src/batch/pg.ts): every column type it reads natively, the
// ones it casts to text, NULLs, and malformed data refused with the table named. Real PostgreSQL (test harness).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type pg from "pg";
import {
	type CopyColumn,
	connectPg,
	copyCastsToText,
	copyKind,
	decodeBinaryCopy,
	pgArrayParam,
	pgCopyOut,
} from "../../src/batch/pg.ts";
import { MlshipError } from "../../src/protocol/errors.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";

let server: PostgresServer;
let client: pg.Client;

before(async () => {
	server = await startPostgres();
	client = await connectPg(
		await createDatabase(server.url, uniqueDatabaseName("pgcopy")),
	);
});
after(async () => {
	await client?.end();
	await server?.stop();
});

/** Column `i` as plain values (numbers columns: NULL as null). */
function values(c: CopyColumn): unknown[] {
	return c.kind === "values"
		? c.values
		: Array.from(c.numbers, (x, r) => (c.nulls[r] ? null : x));
}

describe("binary COPY reader", () => {
	it("decodes every type it reads natively, and the ones cast to text, with NULLs", async () => {
		await client.query(
			"CREATE DOMAIN positive AS double precision CHECK (VALUE > 0)",
		);
		await client.query(
			`CREATE TABLE typed (f8 double precision, f4 real, num numeric, i2 smallint, i4 integer, i8 bigint,
			 b boolean, t text, vc varchar(10), bp char(3), ts timestamptz, j jsonb, d positive)`,
		);
		await client.query(`INSERT INTO typed VALUES
			(1.5, 0.1, 12.50, -3, 2147483647, 9007199254740993, true, 'ünï "x"', 'v', 'ab', '2026-01-02 03:04:05+00', '{"a": [1, 2]}', 2.25),
			(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			('NaN', '-Infinity', 'NaN', 0, 0, -1, false, '', '', '', NULL, 'null', 1e-300)`);
		await client.query("SET TIME ZONE 'UTC'");
		const cols = (
			await client.query<{ name: string; oid: number }>(
				`SELECT a.attname AS name, COALESCE(NULLIF(t.typbasetype, 0), a.atttypid)::int AS oid
				 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
				 WHERE a.attrelid = 'typed'::regclass AND a.attnum > 0 ORDER BY a.attnum`,
			)
		).rows;
		const list = cols
			.map((c) => (copyCastsToText(c.oid) ? `${c.name}::text` : c.name))
			.join(", ");
		const buf = await pgCopyOut(
			client,
			`COPY (SELECT ${list} FROM typed) TO STDOUT (FORMAT binary)`,
			"typed",
			"lower --chunk-rows",
		);
		const out = decodeBinaryCopy(
			buf,
			cols.map((c) => copyKind(c.oid)),
			"typed",
		);
		assert.equal(out.rows, 3);
		const byName = Object.fromEntries(
			cols.map((c, i) => [c.name, values(out.columns[i] as CopyColumn)]),
		);
		assert.deepEqual(byName, {
			f8: [1.5, null, Number.NaN],
			f4: [0.1, null, Number.NEGATIVE_INFINITY],
			num: [12.5, null, Number.NaN],
			i2: [-3, null, 0],
			i4: [2147483647, null, 0],
			i8: [9007199254740993n, null, -1n],
			b: [true, null, false],
			t: ['ünï "x"', null, ""],
			vc: ["v", null, ""],
			bp: ["ab ", null, "   "],
			ts: ["2026-01-02 03:04:05+00", null, null],
			j: ['{"a": [1, 2]}', null, "null"],
			d: [2.25, null, 1e-300],
		});
		// Numbers go to the encoder as typed arrays, with a NULL mask only where a column has NULLs.
		const f8 = out.columns[0] as CopyColumn;
		assert.equal(f8.kind, "numbers");
		assert.ok(f8.kind === "numbers" && f8.hasNulls);
	});

	it("an empty result is zero rows", async () => {
		const buf = await pgCopyOut(
			client,
			"COPY (SELECT 1.0::float8 WHERE false) TO STDOUT (FORMAT binary)",
			"empty",
			"x",
		);
		assert.deepEqual(decodeBinaryCopy(buf, ["float8"], "empty").rows, 0);
	});

	it("refuses malformed data, naming the source", async () => {
		const good = await pgCopyOut(
			client,
			"COPY (SELECT 1.5::float8, 2::int4) TO STDOUT (FORMAT binary)",
			"t",
			"x",
		);
		const refused = (
			buf: Buffer,
			kinds: Parameters<typeof decodeBinaryCopy>[1],
			what: RegExp,
		) =>
			assert.throws(
				() => decodeBinaryCopy(buf, kinds, "PostgreSQL table 'features'"),
				(e: unknown) =>
					e instanceof MlshipError &&
					/^PostgreSQL table 'features': malformed binary COPY data/.test(
						e.message,
					) &&
					what.test(e.message),
			);
		refused(
			Buffer.from("not a copy at all, really"),
			["float8"],
			/no PGCOPY header/,
		);
		refused(good.subarray(0, good.length - 6), ["float8", "int4"], /truncated/);
		refused(good, ["float8"], /a row of 2 fields, expected 1/);
		refused(good, ["float8", "int8"], /a int8 value of 4 bytes/);
		// A length below -1 (NULL) would walk the second pass backwards; the OID flag lays rows out differently.
		const negative = Buffer.from(good);
		negative.writeInt32BE(-5, 21);
		refused(negative, ["float8", "int4"], /a field length of -5/);
		const oids = Buffer.from(good);
		oids.writeUInt32BE(0x00010000, 11);
		refused(oids, ["float8", "int4"], /header flags/);
	});

	it("refuses a result larger than the limit, saying what to lower", async () => {
		await assert.rejects(
			pgCopyOut(
				client,
				"COPY (SELECT g::float8 FROM generate_series(1, 10000) g) TO STDOUT (FORMAT binary)",
				"PostgreSQL table 'features'",
				"lower --chunk-rows",
				1024,
			),
			/PostgreSQL table 'features': the rows read at once are over 1024 bytes; lower --chunk-rows/,
		);
		// The connection is still usable afterwards.
		assert.equal((await client.query("SELECT 1 AS one")).rows[0].one, 1);
	});

	it("array parameters in binary round-trip through PostgreSQL exactly; values that do not fit go as text", async () => {
		const roundTrip = async (type: string, values: unknown[]) => {
			const param = pgArrayParam(type, values);
			const r = await client.query(
				`SELECT ($1::${type}[])::text AS t, array_length($1::${type}[], 1) AS n`,
				[param],
			);
			return { binary: Buffer.isBuffer(param), text: r.rows[0].t as string };
		};
		assert.deepEqual(
			await roundTrip("double precision", [
				0.1,
				null,
				Number.NaN,
				-0,
				Number.POSITIVE_INFINITY,
				1e-300,
			]),
			{ binary: true, text: "{0.1,NULL,NaN,-0,Infinity,1e-300}" },
		);
		assert.deepEqual(
			await roundTrip("bigint", [9007199254740993n, -1, null, 0]),
			{
				binary: true,
				text: "{9007199254740993,-1,NULL,0}",
			},
		);
		assert.deepEqual(await roundTrip("boolean", [true, false, null]), {
			binary: true,
			text: "{t,f,NULL}",
		});
		assert.deepEqual(
			await roundTrip("text", ['ünï "x"', "", null, 7n, "a,b"]),
			{
				binary: true,
				text: '{"ünï \\"x\\"","",NULL,7,"a,b"}',
			},
		);
		assert.deepEqual(await roundTrip("double precision", []), {
			binary: true,
			text: "{}",
		});
		// A string among doubles, a fraction among bigints: text, converted by the server (or pgValue) as before.
		assert.deepEqual(await roundTrip("double precision", [1.5, "2.5"]), {
			binary: false,
			text: "{1.5,2.5}",
		});
		assert.deepEqual(await roundTrip("bigint", [1.7, 2]), {
			binary: false,
			text: "{1,2}",
		});
	});
});
