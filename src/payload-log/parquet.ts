// The payload log's Parquet destination: records are appended as JSON lines to a hidden spool file, and each
// rotation (by size or time) has DuckDB turn the spool into one Parquet file, written to a temporary name and then
// renamed, so readers never see half a file; files older than the retention are deleted.
import {
	type FileHandle,
	mkdir,
	open,
	readdir,
	rename,
	rm,
	stat,
} from "node:fs/promises";
import { join, resolve } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { sqlString } from "../batch/files.ts";
import type { PayloadSink } from "./log.ts";
import type { PayloadRecord } from "./record.ts";

export interface ParquetSinkOptions {
	/** Start a new file once the spool holds this many bytes. Default 64 MiB. */
	rotateBytes?: number | undefined;
	/** Start a new file at least this often, ms (when records came). Default 60 s. */
	rotateMs?: number | undefined;
	/** Delete log files older than this, ms (checked at each rotation). Default: keep them. */
	retentionMs?: number | undefined;
}

/** Payload-log files are named `payloads-<UTC time>-<pid>-<n>.parquet`; only these are read back or deleted. */
export const FILE_PATTERN = /^payloads-\d{8}T\d{9}Z-\d+-\d+\.parquet$/;

/** The spool's columns as DuckDB reads them (inputs and outputs stay JSON). */
const SPOOL_COLUMNS =
	"{id: 'VARCHAR', time_ms: 'BIGINT', model: 'VARCHAR', version: 'INTEGER', entity: 'VARCHAR', caller: 'VARCHAR', latency_ms: 'DOUBLE', rows: 'INTEGER', inputs: 'JSON', outputs: 'JSON'}";
/** What a file holds: `time` as a UTC TIMESTAMP, inputs and outputs as JSON. */
const SELECT =
	"SELECT id, epoch_ms(time_ms) AS time, model, version, entity, caller, latency_ms, rows, inputs, outputs";

function stamp(d: Date): string {
	return d.toISOString().replace(/[-:.]/g, "");
}

/** One spool line: the record with its inputs and outputs nested as they are (already JSON). */
function line(r: PayloadRecord): string {
	return `{"id":${JSON.stringify(r.id)},"time_ms":${r.time},"model":${JSON.stringify(r.model)},"version":${r.version ?? "null"},"entity":${JSON.stringify(r.entity)},"caller":${JSON.stringify(r.caller)},"latency_ms":${r.latency_ms},"rows":${r.rows},"inputs":${r.inputs},"outputs":${r.outputs}}\n`;
}

/**
 * A directory of Parquet files. Records are in a file once their rotation (or close) has run: a crash loses at most
 * the spool of one rotation (left as a hidden `.spool-*.jsonl` file).
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
	let spool: { file: string; fh: FileHandle; bytes: number } | undefined;
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
		const s = spool;
		spool = undefined;
		if (s) {
			await s.fh.close();
			if (s.bytes > 0) {
				if (!conn) {
					const { DuckDBInstance } = await import("@duckdb/node-api");
					db = await DuckDBInstance.create(":memory:");
					conn = await db.connect();
				}
				const name = `payloads-${stamp(new Date())}-${process.pid}-${seq++}.parquet`;
				const tmp = join(path, `.${name}.tmp`);
				await conn.run(
					`COPY (${SELECT} FROM read_json(${sqlString(s.file)}, format = 'newline_delimited', columns = ${SPOOL_COLUMNS}) ORDER BY time_ms) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`,
				);
				await rename(tmp, join(path, name));
			}
			await rm(s.file, { force: true });
		}
		await sweep();
	};

	return {
		kind: "parquet",
		where: path,
		async open() {
			await mkdir(path, { recursive: true });
			await sweep();
			timer = setInterval(() => {
				serial(rotate).catch(() => undefined);
			}, rotateMs);
			timer.unref();
		},
		write(records: readonly PayloadRecord[]) {
			return serial(async () => {
				if (!spool) {
					const file = join(
						path,
						`.spool-${process.pid}-${seq}-${Date.now()}.jsonl`,
					);
					spool = { file, fh: await open(file, "a"), bytes: 0 };
				}
				let text = "";
				for (const r of records) text += line(r);
				await spool.fh.write(text);
				spool.bytes += Buffer.byteLength(text);
				if (spool.bytes >= rotateBytes) await rotate();
			});
		},
		close() {
			clearInterval(timer);
			return serial(async () => {
				try {
					await rotate();
				} finally {
					conn?.closeSync();
					db?.closeSync();
					conn = undefined;
					db = undefined;
				}
			});
		},
	};
}
