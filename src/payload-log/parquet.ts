// The payload log's Parquet destination: records gather in an in-memory DuckDB table and are written out as one
// Parquet file per rotation (by size or time), atomically (temp file, then rename); old files go after the retention.
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type {
	DuckDBAppender,
	DuckDBConnection,
	DuckDBInstance,
} from "@duckdb/node-api";
import { sqlString } from "../batch/files.ts";
import type { PayloadSink } from "./log.ts";
import { type PayloadRecord, recordBytes } from "./record.ts";

export interface ParquetSinkOptions {
	/** Start a new file once this many record bytes are buffered. Default 64 MiB. */
	rotateBytes?: number | undefined;
	/** Start a new file at least this often, ms (when records came). Default 60 s. */
	rotateMs?: number | undefined;
	/** Delete log files older than this, ms (checked at each rotation). Default: keep them. */
	retentionMs?: number | undefined;
}

/** Payload-log files are named `payloads-<UTC time>-<pid>-<n>.parquet`; only these are read back or deleted. */
export const FILE_PATTERN = /^payloads-\d{8}T\d{9}Z-\d+-\d+\.parquet$/;

const COLUMNS =
	"id VARCHAR, time_ms BIGINT, model VARCHAR, version INTEGER, entity VARCHAR, caller VARCHAR, latency_ms DOUBLE, rows INTEGER, inputs VARCHAR, outputs VARCHAR";
/** What a file holds: `time` as a UTC TIMESTAMP, inputs and outputs as JSON. */
const SELECT =
	"SELECT id, epoch_ms(time_ms) AS time, model, version, entity, caller, latency_ms, rows, inputs::JSON AS inputs, outputs::JSON AS outputs FROM buf ORDER BY time_ms";

function stamp(d: Date): string {
	return d.toISOString().replace(/[-:.]/g, "");
}

/**
 * A directory of Parquet files. Records are durable once their file is written (at rotation or close): a crash
 * loses at most one rotation's worth.
 * @example const sink = parquetSink("./payloads", { rotateMs: 60_000, retentionMs: 7 * 86_400_000 });
 */
export function parquetSink(
	dir: string,
	opts: ParquetSinkOptions = {},
): PayloadSink {
	const path = resolve(dir);
	const rotateBytes = opts.rotateBytes ?? 64 * 1024 * 1024;
	const rotateMs = opts.rotateMs ?? 60_000;
	let db: DuckDBInstance | undefined;
	let conn: DuckDBConnection | undefined;
	let appender: DuckDBAppender | undefined;
	let buffered = 0;
	let rows = 0;
	let seq = 0;
	let timer: NodeJS.Timeout | undefined;
	// Writes and rotations run one at a time (the timer's rotation may come during a write).
	let chain: Promise<unknown> = Promise.resolve();
	const serial = <T>(f: () => Promise<T>): Promise<T> => {
		const p = chain.then(f);
		chain = p.catch(() => undefined);
		return p;
	};

	const sweep = async () => {
		if (opts.retentionMs === undefined) return;
		const cutoff = Date.now() - opts.retentionMs;
		for (const name of await readdir(path)) {
			if (!FILE_PATTERN.test(name)) continue;
			const file = join(path, name);
			const s = await stat(file).catch(() => undefined);
			if (s && s.mtimeMs < cutoff) await rm(file, { force: true });
		}
	};

	const rotate = async () => {
		if (!conn) return;
		if (rows > 0) {
			appender?.closeSync();
			appender = undefined;
			const name = `payloads-${stamp(new Date())}-${process.pid}-${seq++}.parquet`;
			const tmp = join(path, `.${name}.tmp`);
			await conn.run(
				`COPY (${SELECT}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`,
			);
			await rename(tmp, join(path, name));
			await conn.run("DELETE FROM buf");
			rows = 0;
			buffered = 0;
		}
		await sweep();
	};

	return {
		kind: "parquet",
		where: path,
		async open() {
			await mkdir(path, { recursive: true });
			const { DuckDBInstance } = await import("@duckdb/node-api");
			db = await DuckDBInstance.create(":memory:");
			conn = await db.connect();
			await conn.run(`CREATE TABLE buf (${COLUMNS})`);
			await sweep();
			timer = setInterval(() => {
				serial(rotate).catch(() => undefined);
			}, rotateMs);
			timer.unref();
		},
		write(records: readonly PayloadRecord[]) {
			return serial(async () => {
				if (!conn) throw new Error("the Parquet payload log is not open");
				appender ??= await conn.createAppender("buf");
				for (const r of records) {
					appender.appendVarchar(r.id);
					appender.appendBigInt(BigInt(Math.round(r.time)));
					appender.appendVarchar(r.model);
					if (r.version === null) appender.appendNull();
					else appender.appendInteger(r.version);
					if (r.entity === null) appender.appendNull();
					else appender.appendVarchar(r.entity);
					if (r.caller === null) appender.appendNull();
					else appender.appendVarchar(r.caller);
					appender.appendDouble(r.latency_ms);
					appender.appendInteger(r.rows);
					appender.appendVarchar(r.inputs);
					appender.appendVarchar(r.outputs);
					appender.endRow();
					buffered += recordBytes(r);
				}
				appender.flushSync();
				rows += records.length;
				if (buffered >= rotateBytes) await rotate();
			});
		},
		close() {
			clearInterval(timer);
			return serial(async () => {
				try {
					await rotate();
				} finally {
					appender?.closeSync();
					conn?.closeSync();
					db?.closeSync();
					appender = undefined;
					conn = undefined;
					db = undefined;
				}
			});
		},
	};
}
