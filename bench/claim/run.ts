// bench/claim: the cost of one `mlship batch work` claim (the project's own claim statement, 1000 rows, FOR UPDATE
// SKIP LOCKED) as the table fills with scored rows, with and without the partial index on pending rows
// (`--create-index`, src/batch/pending.ts). Without it the claim walks the key index past every scored row; with it
// the claim reads only pending entries, so its cost should stay flat from 0 to 10M scored rows.
//
//   node bench/claim/run.ts [--levels 0,100000,1000000,10000000] [--pending 10000] [--reps 15] [--no-results]
//
// Needs the PostgreSQL binaries (scripts/setup); a throwaway server from the test harness. Each level adds scored rows
// (ids 1..N) below the pending ones (ids from 1e12), runs VACUUM ANALYZE, then times `reps` claims in a rolled-back
// transaction each, with the index and — inside a transaction that drops it and rolls back — without. Results go to
// stdout and to the "## claim" section of bench/RESULTS.md.

import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import pg from "pg";
import {
	claimSql,
	pendingIndexName,
	pendingIndexSql,
} from "../../src/batch/pending.ts";
import { createDatabase, startPostgres } from "../../test/harness/postgres.ts";
import { machine, median, positiveInt, writeResults } from "../common.ts";

const LOAD_AT_START = loadavg()[0] ?? 0;
const { values: args } = parseArgs({
	options: {
		levels: { type: "string", default: "0,100000,1000000,10000000" },
		pending: { type: "string", default: "10000" },
		chunk: { type: "string", default: "1000" },
		reps: { type: "string", default: "15" },
		"no-results": { type: "boolean", default: false },
	},
});
const levels = (args.levels as string).split(",").map((s) => {
	const n = Number(s);
	if (!Number.isInteger(n) || n < 0)
		throw new Error(`--levels: '${s}' is not a whole number`);
	return n;
});
for (let i = 1; i < levels.length; i++)
	if ((levels[i] as number) < (levels[i - 1] as number))
		throw new Error(
			"--levels must not decrease (rows are added level by level)",
		);
const pending = positiveInt("--pending", args.pending);
const chunk = positiveInt("--chunk", args.chunk);
const reps = positiveInt("--reps", args.reps);
const TABLE = "features";
const PENDING_FROM = 1e12;

/** Milliseconds of `reps` claims (median), each in its own rolled-back transaction; `dropIndex` drops it first. */
async function timeClaims(
	c: pg.Client,
	sql: string,
	n: number,
	dropIndex: string | undefined,
): Promise<{ ms: number; rows: number; plan: string }> {
	const times: number[] = [];
	let rows = 0;
	let plan = "";
	for (let i = 0; i < n; i++) {
		await c.query("BEGIN");
		if (dropIndex) await c.query(`DROP INDEX ${dropIndex}`);
		if (i === 0)
			plan = (await c.query(`EXPLAIN ${sql}`, [chunk])).rows
				.map((r) => r["QUERY PLAN"])
				.join(" | ");
		const t = performance.now();
		rows = (await c.query(sql, [chunk])).rowCount ?? 0;
		times.push(performance.now() - t);
		await c.query("ROLLBACK");
	}
	return { ms: median(times), rows, plan };
}

/** The scan line of a one-line EXPLAIN (e.g. "Index Scan using features_scored_at_pending on features"). */
function scanNode(plan: string): string {
	const scan = plan.split(" | ").find((l) => /Scan/.test(l)) ?? plan;
	return scan.replace(/^[\s->]+/, "").replace(/\s+\(cost=.*$/, "");
}

const server = await startPostgres();
const lines: string[] = [];
try {
	const url = await createDatabase(server.url, "bench_claim");
	const c = new pg.Client({ connectionString: url });
	await c.connect();
	c.on("error", () => {}); // the server stops at the end: its goodbye is not an error
	await c.query(
		`CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, x double precision, scored_at timestamptz)`,
	);
	await c.query(
		`INSERT INTO ${TABLE} SELECT ${PENDING_FROM} + i, random(), NULL FROM generate_series(1, $1::int) i`,
		[pending],
	);
	// Not CONCURRENTLY: nothing else runs here and the table is empty.
	await c.query(pendingIndexSql(TABLE, "id", "scored_at", false), []);
	const index = `"${pendingIndexName(TABLE, "scored_at")}"`;
	const claim = claimSql(TABLE, "id", "scored_at");
	let have = 0;
	console.error(
		`claim bench: ${pending} pending rows, claims of ${chunk}, levels ${levels.join(", ")} scored rows`,
	);
	const header =
		"| scored rows | claim with partial index (ms, median) | claim without (ms, median) | rows claimed | plan with index |";
	lines.push(header, "|---:|---:|---:|---:|---|");
	console.log(header);
	for (const level of levels) {
		if (level > have) {
			const t = performance.now();
			await c.query(
				`INSERT INTO ${TABLE} SELECT i, random(), now() FROM generate_series($1::bigint, $2::bigint) i`,
				[have + 1, level],
			);
			have = level;
			console.error(
				`  ${level} scored rows ready (${((performance.now() - t) / 1000).toFixed(1)} s)`,
			);
		}
		await c.query(`VACUUM ANALYZE ${TABLE}`);
		const withIdx = await timeClaims(c, claim, reps, undefined);
		// Without the index each claim walks past every scored row: fewer reps at the big levels.
		const without = await timeClaims(
			c,
			claim,
			level >= 1_000_000 ? Math.min(reps, 3) : reps,
			index,
		);
		if (
			withIdx.rows !== Math.min(chunk, pending) ||
			without.rows !== withIdx.rows
		)
			throw new Error(
				`a claim returned ${withIdx.rows}/${without.rows} rows, expected ${Math.min(chunk, pending)}`,
			);
		const row = `| ${level.toLocaleString("en-US")} | ${withIdx.ms.toFixed(2)} | ${without.ms.toFixed(2)} | ${withIdx.rows} | ${scanNode(withIdx.plan)} |`;
		lines.push(row);
		console.log(row);
	}
	await c.end();
} catch (err) {
	console.error(err);
	process.exitCode = 1;
} finally {
	await server.stop();
}

if (!args["no-results"])
	await writeResults(
		"claim",
		`## claim

\`node bench/claim/run.ts\` — one \`batch work\` claim (${chunk} rows, the project's claim statement) as scored rows
accumulate below ${pending.toLocaleString("en-US")} pending ones; with the partial index \`--create-index\` creates
and without it (dropped in a rolled-back transaction). ${machine(`load average ${LOAD_AT_START.toFixed(2)} at start`)}.${LOAD_AT_START > 0.5 ? " Taken on a shared, loaded machine: the shape (flat with the index, linear without) holds, the milliseconds need a quiet rerun." : ""}

${lines.join("\n")}
`,
	);
