// What a phase of the lifecycle bench costs PostgreSQL: CPU of its server processes, WAL written, database growth,
// and (with pg_stat_statements loaded) the statements that took the server's time.
import { readFileSync } from "node:fs";
import pg from "pg";

/** Clock ticks per second of /proc/<pid>/stat utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

/** CPU seconds (user + system, every thread) of one process, from /proc/<pid>/stat; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		// Fields after the command name (which may hold spaces) start at index 2: utime is field 14, stime 15.
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
	} catch {
		return 0;
	}
}

/** A snapshot of the server: CPU per process, WAL position, database size. */
interface Snapshot {
	cpu: Map<number, number>;
	wal: string;
	size: number;
}

/** The server's costs between `start()` and `stop()`, read through an admin connection to the database at `url`. */
export class PgCost {
	readonly #client: pg.Client;
	#before: Snapshot | undefined;
	#statements = false;

	private constructor(client: pg.Client) {
		this.#client = client;
	}

	static async open(url: string): Promise<PgCost> {
		const client = new pg.Client({ connectionString: url });
		await client.connect();
		const cost = new PgCost(client);
		try {
			await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
			await client.query("SELECT pg_stat_statements_reset()");
			cost.#statements = true;
		} catch {
			// not preloaded: no per-statement figures
		}
		return cost;
	}

	async #snapshot(): Promise<Snapshot> {
		// Every server process (backends, WAL writer, checkpointer, …); the postmaster itself does no query work.
		const { rows } = await this.#client.query<{
			pid: number;
			wal: string;
			size: string;
		}>(
			"SELECT a.pid, pg_current_wal_lsn()::text AS wal, pg_database_size(current_database())::text AS size FROM pg_stat_activity a",
		);
		const cpu = new Map<number, number>();
		for (const r of rows) cpu.set(r.pid, cpuSeconds(r.pid));
		return {
			cpu,
			wal: rows[0]?.wal ?? "0/0",
			size: Number(rows[0]?.size ?? 0),
		};
	}

	async start(): Promise<void> {
		if (this.#statements)
			await this.#client.query("SELECT pg_stat_statements_reset()");
		this.#before = await this.#snapshot();
	}

	/** Server CPU seconds, WAL bytes and database growth since start(), and the top statements by server time. */
	async stop(): Promise<{
		cpuS: number;
		walBytes: number;
		growthBytes: number;
		statements: { query: string; calls: number; ms: number }[];
	}> {
		const before = this.#before as Snapshot;
		const after = await this.#snapshot();
		let cpuS = 0;
		for (const [pid, s] of after.cpu) cpuS += s - (before.cpu.get(pid) ?? 0);
		const { rows } = await this.#client.query<{ bytes: string }>(
			"SELECT pg_wal_lsn_diff($1, $2)::text AS bytes",
			[after.wal, before.wal],
		);
		let statements: { query: string; calls: number; ms: number }[] = [];
		if (this.#statements)
			statements = (
				await this.#client.query<{
					query: string;
					calls: string;
					ms: number;
				}>(
					"SELECT query, calls::text, total_exec_time AS ms FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 8",
				)
			).rows.map((r) => ({
				query: r.query.replace(/\s+/g, " ").slice(0, 140),
				calls: Number(r.calls),
				ms: r.ms,
			}));
		return {
			cpuS,
			walBytes: Number(rows[0]?.bytes ?? 0),
			growthBytes: after.size - before.size,
			statements,
		};
	}

	async close(): Promise<void> {
		await this.#client.end();
	}
}
