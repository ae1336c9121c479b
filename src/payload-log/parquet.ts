// The payload log's Parquet destination: records are appended as lines to a hidden spool file, and each
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
import { sqlString } from "../protocol/sql.ts";
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

/** The spool: one line per record, fields split by the unit separator (which no field holds), no quoting. */
const SEP = "\x1f";
/** DuckDB's CSV reader refuses longer lines (its default max_line_size); a spool with one passes its own. */
const MIN_LINE = 2 * 1024 * 1024;
/**
 * How a spool is read. DuckDB's CSV buffer is 16 × max_line_size by default (32 MiB); 2 × the spool's longest line
 * (at least 4 MiB) reads the same at a quarter of the memory.
 */
function spoolRead(longest: number): string {
	const line = Math.max(MIN_LINE, longest + 1024);
	return `delim = '\x1f', quote = '', escape = '', header = false, auto_detect = false, new_line = '\\n', max_line_size = ${line}, buffer_size = ${Math.max(2 * MIN_LINE, 2 * line)}, columns = {'id': 'VARCHAR', 'time_ms': 'BIGINT', 'model': 'VARCHAR', 'version': 'INTEGER', 'entity': 'VARCHAR', 'caller': 'VARCHAR', 'latency_ms': 'DOUBLE', 'rows': 'INTEGER', 'inputs': 'VARCHAR', 'outputs': 'VARCHAR'}`;
}
/**
 * Rows per Parquet row group. DuckDB's default (122,880) holds a whole group of JSON text in memory before writing
 * it: converting a 64 MiB spool took ~290 MiB of the server's memory, kept after; groups of 8192 rows (and no
 * insertion order to keep, one thread) took ~75 MiB (measured on 1.2 KB records).
 */
const ROW_GROUP_ROWS = 8192;
/** What a file holds: `time` as a UTC TIMESTAMP; inputs and outputs as JSON text. */
const SELECT =
	"SELECT coalesce(id, '') AS id, epoch_ms(time_ms) AS time, model, version, nullif(entity, '') AS entity, nullif(caller, '') AS caller, latency_ms, rows, inputs, outputs";

function stamp(d: Date): string {
	return d.toISOString().replace(/[-:.]/g, "");
}

/** A text field of the spool: control characters (the separator, newlines) become spaces. */
function field(v: string | null): string {
	if (v === null) return "";
	// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
	return /[\x00-\x1f]/.test(v) ? v.replace(/[\x00-\x1f]/g, " ") : v;
}

/** One spool line. Inputs and outputs are JSON text, whose strings escape control characters. */
function line(r: PayloadRecord): string {
	return `${field(r.id)}${SEP}${r.time}${SEP}${field(r.model)}${SEP}${r.version ?? ""}${SEP}${field(r.entity)}${SEP}${field(r.caller)}${SEP}${r.latency_ms}${SEP}${r.rows}${SEP}${r.inputs}${SEP}${r.outputs}\n`;
}

/**
 * A directory of Parquet files. Records are in a file once their rotation (or close) has run: a crash loses at most
 * the spool of one rotation (left as a hidden `.spool-*.txt` file).
 * @example const sink = parquetSink("./payloads", { rotateMs: 60_000, retentionMs: 7 * 86_400_000 });
 */
export function parquetSink(
	dir: string,
	opts: ParquetSinkOptions = {},
): PayloadSink {
	const path = resolve(dir);
	const rotateBytes = opts.rotateBytes ?? 64 * 1024 * 1024;
	const rotateMs = opts.rotateMs ?? 60_000;
	let spool:
		| { file: string; fh: FileHandle; bytes: number; longest: number }
		| undefined;
	let seq = 0;
	let spools = 0;
	/** A conversion that failed, reported by the next write (so the log shows the destination failing). */
	let failed: Error | undefined;
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

	/** Spool files being turned into Parquet, one after the other, beside the writes (which go to a new spool). */
	let converting: Promise<void> = Promise.resolve();
	const convert = async (file: string, longest: number) => {
		const { DuckDBInstance } = await import("@duckdb/node-api");
		// One thread and bounded memory: the conversion runs beside the server, which keeps the other core. A fresh
		// instance per file, closed after: DuckDB keeps what it allocated until its database closes.
		let db: DuckDBInstance | undefined;
		let conn: DuckDBConnection | undefined;
		try {
			db = await DuckDBInstance.create(":memory:", {
				threads: "1",
				memory_limit: "128MB",
				preserve_insertion_order: "false",
			});
			conn = await db.connect();
			const name = `payloads-${stamp(new Date())}-${process.pid}-${seq++}.parquet`;
			const tmp = join(path, `.${name}.tmp`);
			await conn.run(
				`COPY (${SELECT} FROM read_csv(${sqlString(file)}, ${spoolRead(longest)})) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${ROW_GROUP_ROWS})`,
			);
			await rename(tmp, join(path, name));
			await rm(file, { force: true });
		} finally {
			conn?.closeSync();
			db?.closeSync();
		}
	};

	/** Closes the spool and queues its conversion (writes go on into a new spool meanwhile). */
	const rotate = async () => {
		const s = spool;
		spool = undefined;
		if (s) {
			await s.fh.close();
			if (s.bytes > 0) {
				const run = converting.then(() => convert(s.file, 3 * s.longest));
				// A failed conversion leaves its spool file behind (nothing is deleted) and does not stop later ones.
				converting = run.catch((err: unknown) => {
					failed = new Error(
						`cannot write a Parquet file in ${path} (its records stay in ${s.file}): ${(err as Error).message}`,
					);
				});
			} else await rm(s.file, { force: true });
		}
		converting = converting.then(() => sweep().catch(() => undefined));
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
				if (failed) {
					const e = failed;
					failed = undefined;
					throw e;
				}
				if (!spool) {
					const file = join(path, `.spool-${process.pid}-${spools++}.txt`);
					spool = { file, fh: await open(file, "a"), bytes: 0, longest: 0 };
				}
				let text = "";
				for (const r of records) {
					const l = line(r);
					// In characters; a character takes at most 3 bytes in UTF-8 (a surrogate pair 4 for 2).
					if (l.length > spool.longest) spool.longest = l.length;
					text += l;
				}
				await spool.fh.write(text);
				spool.bytes += Buffer.byteLength(text);
				if (spool.bytes >= rotateBytes) await rotate();
			});
		},
		close() {
			clearInterval(timer);
			return serial(async () => {
				await rotate();
				await converting;
			});
		},
	};
}
