// Scored rows to a Parquet, CSV or JSON-lines file: chunks collect in a DuckDB table that spills to disk, then one COPY.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import {
	BIGINT,
	type DuckDBAppender,
	type DuckDBConnection,
	DuckDBInstance,
	type DuckDBType,
	type DuckDBValue,
} from "@duckdb/node-api";
import { invalidInput } from "../../protocol/errors.ts";
import { sqlIdent, sqlString } from "../../protocol/sql.ts";
import {
	appendColumns,
	copyOptions,
	duckTypeFor,
	type FileFormat,
	type TypedColumn,
} from "../files.ts";
import type { BatchSink, KeptColumn, PredictionColumn } from "../types.ts";

/**
 * A file sink; nothing reaches `output` until finish(). With `parts`, every write is also made durable as its
 * own Parquet file in `parts.dir` (numbered from `parts.start`), so a resumed job keeps the chunks an
 * interrupted run finished, and finish() joins the parts.
 */
export class FileSink implements BatchSink {
	readonly label: string;
	readonly #output: string;
	readonly #format: FileFormat;
	readonly #work: string;
	readonly #db: DuckDBInstance;
	readonly #conn: DuckDBConnection;
	#appender: DuckDBAppender | undefined;
	#types: DuckDBType[] = [];
	/** Per prediction column: stored as class indices (named by the final SELECT). */
	#coded: boolean[] = [];
	#closed = false;
	/** The output's columns in order, as a SELECT list over the `predictions` table. */
	#select = "*";
	readonly #parts: { dir: string; next: number } | undefined;

	private constructor(
		output: string,
		format: FileFormat,
		work: string,
		db: DuckDBInstance,
		conn: DuckDBConnection,
		parts: { dir: string; start: number } | undefined,
	) {
		this.#parts = parts && { dir: parts.dir, next: parts.start };
		this.label = output;
		this.#output = output;
		this.#format = format;
		this.#work = work;
		this.#db = db;
		this.#conn = conn;
	}

	static async create(
		output: string,
		format: FileFormat,
		parts?: { dir: string; start: number },
	): Promise<FileSink> {
		await removeStaleWork();
		const work = await mkdtemp(join(tmpdir(), WORK_PREFIX));
		await writeFile(join(work, OWNER), `${hostname()}\n${process.pid}\n`);
		// An in-memory database (appending to it costs less than to a database file) that spills to the work
		// directory past memory_limit, so a job's memory stays bounded whatever its size.
		const db = await DuckDBInstance.create(":memory:", {
			memory_limit: "512MB",
			temp_directory: join(work, "spill"),
			preserve_insertion_order: "true",
		});
		return new FileSink(output, format, work, db, await db.connect(), parts);
	}

	async write(
		kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
		rows: number,
	): Promise<void> {
		// Constant columns (model name and version) are not stored per row: the final SELECT adds them.
		const stored = kept.filter((k) => !k.constant);
		if (this.#types.length === 0) {
			// A class-name column is stored as its class indices (BIGINT) and named in the final SELECT: a string
			// per row into DuckDB cost more than scoring the row.
			this.#coded = predictions.map((p) => p.codes !== undefined && p.text);
			const outTypes = predictions.map((p, i) =>
				this.#coded[i] ? BIGINT : duckTypeFor(p.datatype, p.text),
			);
			const ddl = [
				...stored.map((k) => `${sqlIdent(k.name)} ${k.type}`),
				...predictions.map(
					(p, i) => `${sqlIdent(p.name)} ${outTypes[i]?.toString()}`,
				),
			];
			await this.#conn.run(`CREATE TABLE predictions (${ddl.join(", ")})`);
			const appender = await this.#conn.createAppender("predictions");
			this.#types = stored.map((_, i) => appender.columnType(i));
			this.#types.push(...outTypes);
			this.#appender = appender;
			this.#select = [
				...kept.map((k) =>
					k.constant
						? `CAST(${sqlLiteral(k.constant.value)} AS ${k.type}) AS ${sqlIdent(k.name)}`
						: sqlIdent(k.name),
				),
				...predictions.map((p) =>
					p.codes && p.text
						? namedCodes(p.name, p.codes.names)
						: sqlIdent(p.name),
				),
			].join(", ");
		}
		this.#appender ??= await this.#conn.createAppender("predictions");
		const values: (readonly DuckDBValue[] | TypedColumn)[] = stored.map((k) => {
			const t = k.type;
			return k.values.map((v) => toDuck(t, v));
		});
		predictions.forEach((p, i) => {
			const t = this.#types[stored.length + i]?.toString();
			const codes = this.#coded[i] ? p.codes?.indices : undefined;
			if (codes)
				values.push(
					codes instanceof BigInt64Array
						? codes
						: BigInt64Array.from(codes, (v) => BigInt(v)),
				);
			else if (
				(t === "FLOAT" && p.numbers instanceof Float32Array) ||
				(t === "DOUBLE" && p.numbers instanceof Float64Array)
			)
				values.push(p.numbers);
			else
				values.push(
					t === "BIGINT"
						? p.values.map((v) => BigInt(v as number))
						: (p.values as DuckDBValue[]),
				);
		});
		appendColumns(this.#appender, this.#types, values, rows);
		if (this.#parts) {
			this.#appender.closeSync();
			this.#appender = undefined;
			await this.#conn.run(
				`COPY (SELECT ${this.#select} FROM predictions) TO ${sqlString(partPath(this.#parts.dir, this.#parts.next++))} (FORMAT parquet)`,
			);
			await this.#conn.run("DELETE FROM predictions");
		}
	}

	/** How many part files there are (with `parts`). */
	get parts(): number {
		return this.#parts?.next ?? 0;
	}

	async finish(): Promise<void> {
		try {
			const from = this.#parts
				? `SELECT * FROM read_parquet([${Array.from({ length: this.#parts.next }, (_, i) => sqlString(partPath((this.#parts as { dir: string }).dir, i))).join(", ")}])`
				: `SELECT ${this.#select} FROM predictions`;
			if (this.#parts ? this.#parts.next === 0 : !this.#appender)
				throw invalidInput("every row was rejected; nothing to write");
			this.#appender?.closeSync();
			await this.#conn.run(
				`COPY (${from}) TO ${sqlString(this.#output)} ${copyOptions(this.#format)}`,
			);
		} finally {
			await this.abort();
		}
	}

	async abort(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		this.#conn.closeSync();
		this.#db.closeSync();
		await rm(this.#work, { recursive: true, force: true });
	}
}

const WORK_PREFIX = "mlship-sink-";
/** In each work directory: the host and process that own it. */
const OWNER = "owner";

/**
 * Removes the work directories of file sinks whose process is gone (killed with -9, out of memory): nothing else
 * would, and each holds the spilled rows of a whole job. A directory of a live process, of another host, or
 * without an owner file (being created) is left alone.
 */
async function removeStaleWork(): Promise<void> {
	const root = tmpdir();
	let names: string[];
	try {
		names = await readdir(root);
	} catch {
		return;
	}
	for (const name of names) {
		if (!name.startsWith(WORK_PREFIX)) continue;
		const dir = join(root, name);
		const owner = await readFile(join(dir, OWNER), "utf8").catch(() => "");
		const [host, pid] = owner.split("\n");
		if (host !== hostname() || !/^\d+$/.test(pid ?? "")) continue;
		if (!processGone(Number(pid))) continue;
		await rm(dir, { recursive: true, force: true }).catch(() => {});
	}
}

function processGone(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return false;
	} catch (err) {
		// EPERM: it exists, owned by someone else.
		return (err as NodeJS.ErrnoException).code === "ESRCH";
	}
}

function partPath(dir: string, i: number): string {
	return join(dir, `part-${String(i).padStart(6, "0")}.parquet`);
}

/**
 * The SELECT expression naming the class indices of column `name`: `names[index]`, or the index as text beyond
 * the names (as outputsToColumns shows it).
 */
function namedCodes(name: string, names: readonly string[]): string {
	const col = sqlIdent(name);
	return `CASE WHEN ${col} >= 0 AND ${col} < ${names.length} THEN list_extract([${names.map((n) => sqlString(n)).join(", ")}], ${col} + 1) ELSE CAST(${col} AS VARCHAR) END AS ${col}`;
}

function sqlLiteral(v: unknown): string {
	if (v === null || v === undefined) return "NULL";
	if (typeof v === "number" || typeof v === "bigint") return String(v);
	return sqlString(String(v));
}

/** A value from any source as the DuckDB appender wants it for a column of `type`. */
function toDuck(type: string, v: unknown): DuckDBValue {
	if (v === null || v === undefined) return null;
	if (type === "BIGINT" && typeof v !== "bigint")
		return BigInt(typeof v === "string" ? v : Math.trunc(Number(v)));
	if (type === "DOUBLE" && typeof v !== "number") return Number(v);
	if (type === "VARCHAR" && typeof v !== "string") return String(v);
	return v as DuckDBValue;
}
