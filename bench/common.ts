// Shared by the benches: the breast_cancer GBDT data file, child processes measured with /usr/bin/time, medians,
// the machine line, and bench/RESULTS.md sections.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import {
	copyFile,
	mkdir,
	readFile,
	rename,
	rm,
	writeFile,
} from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const OUT = join(ROOT, "bench/out");
export const MODEL_DIR = join(ROOT, "test/fixtures/models/breast-cancer-gbdt");
const NODE = process.execPath;
const TIME = "/usr/bin/time";
const CHILD_TIMEOUT_MS = 1_800_000;

export function positiveInt(flag: string, s: string | undefined): number {
	const n = Number(s);
	if (!Number.isInteger(n) || n <= 0)
		throw new Error(`${flag} must be a positive integer, got '${s}'`);
	return n;
}

export function sqlString(s: string): string {
	return `'${s.replaceAll("'", "''")}'`;
}

export function sqlIdent(s: string): string {
	return `"${s.replaceAll('"', '""')}"`;
}

/** The model's feature names, in input-column order, from mlship.yaml (read the simple way: `- {name: x, ...}`). */
export function featureNames(): string[] {
	const yaml = readFileSync(join(MODEL_DIR, "mlship.yaml"), "utf8");
	const section = yaml.split(/^features:\s*$/m)[1]?.split(/^\S/m)[0] ?? "";
	const names = [...section.matchAll(/-\s*\{\s*name:\s*([\w.-]+)/g)].map(
		(m) => m[1] as string,
	);
	if (names.length !== 30)
		throw new Error(
			`expected 30 features in mlship.yaml, found ${names.length}`,
		);
	return names;
}

/**
 * A Parquet file of `rows` rows with the 30 feature columns as DOUBLE: the golden records cycled, each value
 * times (1 ± up to 0.1%) deterministic jitter so rows are not byte-identical. Cached in bench/out.
 */
export async function ensureData(
	rows: number,
	features: string[],
): Promise<string> {
	const path = join(OUT, `breast-cancer-${rows}.parquet`);
	if (existsSync(path)) return path;
	await mkdir(OUT, { recursive: true });
	const golden = JSON.parse(
		await readFile(join(MODEL_DIR, "golden.json"), "utf8"),
	) as { records: Record<string, number>[] };
	const jsonl = join(OUT, "golden-records.jsonl");
	await writeFile(
		jsonl,
		`${golden.records.map((r) => JSON.stringify(r)).join("\n")}\n`,
	);
	const k = golden.records.length;
	const cols = features
		.map(
			(f, j) =>
				`CAST(g.${sqlIdent(f)} AS DOUBLE) * (1 + ((r.range * 7919 + ${j * 104729}) % 2001 - 1000) / 1e6) AS ${sqlIdent(f)}`,
		)
		.join(",\n  ");
	const tmp = `${path}.tmp`;
	const db = await DuckDBInstance.create(":memory:", { threads: "2" });
	const conn = await db.connect();
	try {
		await conn.run(
			`COPY (
  SELECT ${cols}
  FROM range(${rows}) r
  JOIN (SELECT row_number() OVER () - 1 AS gi, * FROM read_json(${sqlString(jsonl)}, format = 'newline_delimited')) g
    ON g.gi = r.range % ${k}
  ORDER BY r.range
) TO ${sqlString(tmp)} (FORMAT parquet)`,
		);
		const n = await countRows(conn, tmp);
		if (n !== rows) throw new Error(`generated ${n} rows, expected ${rows}`);
	} finally {
		conn.closeSync();
		db.closeSync();
	}
	await rm(path, { force: true });
	await rename(tmp, path);
	return path;
}

export async function countRows(
	conn: Awaited<ReturnType<DuckDBInstance["connect"]>>,
	parquet: string,
	where = "",
): Promise<number> {
	const r = await conn.runAndReadAll(
		`SELECT count(*) FROM read_parquet(${sqlString(parquet)}) ${where}`,
	);
	return Number(r.getRows()[0]?.[0] ?? -1);
}

/** The Parquet file's feature columns as one row-major Float32Array (rows × 30). */
export async function readMatrix(
	parquet: string,
	features: string[],
): Promise<Float32Array> {
	const db = await DuckDBInstance.create(":memory:", { threads: "1" });
	const conn = await db.connect();
	try {
		const rows = await countRows(conn, parquet);
		const w = features.length;
		const m = new Float32Array(rows * w);
		const result = await conn.stream(
			`SELECT ${features.map(sqlIdent).join(", ")} FROM read_parquet(${sqlString(parquet)})`,
		);
		let base = 0;
		for (;;) {
			const chunk = await result.fetchChunk();
			if (!chunk || chunk.rowCount === 0) break;
			for (let c = 0; c < w; c++) {
				const vals = chunk.getColumnValues(c);
				for (let i = 0; i < vals.length; i++)
					m[(base + i) * w + c] = vals[i] as number;
			}
			base += chunk.rowCount;
		}
		if (base !== rows) throw new Error(`read ${base} rows, expected ${rows}`);
		return m;
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

export interface Measured {
	stdout: string;
	wallMs: number;
	peakRssMb: number | null;
}

/** Runs `node ...argv` (under /usr/bin/time -v when present) and returns its stdout, wall time and peak RSS. */
export async function measure(
	argv: string[],
	tag: string,
	program: string = NODE,
): Promise<Measured> {
	const timeFile = join(OUT, `time-${tag}.txt`);
	const useTime = existsSync(TIME);
	const [cmd, cmdArgs] = useTime
		? [TIME, ["-v", "-o", timeFile, program, ...argv]]
		: [program, argv];
	const started = performance.now();
	const child = spawn(cmd, cmdArgs, {
		cwd: ROOT,
		stdio: ["ignore", "pipe", "pipe"],
		timeout: CHILD_TIMEOUT_MS,
		killSignal: "SIGKILL",
	});
	let stdout = "";
	let stderr = "";
	child.stdout.on("data", (d: Buffer) => {
		stdout += d.toString();
	});
	child.stderr.on("data", (d: Buffer) => {
		stderr += d.toString();
	});
	const code = await new Promise<number | null>((res, rej) => {
		child.once("error", rej);
		child.once("close", (c) => res(c));
	});
	const wallMs = performance.now() - started;
	if (code !== 0)
		throw new Error(
			`${argv.join(" ")} exited with ${code}\n${stderr}\n${stdout}`,
		);
	let peakRssMb: number | null = null;
	if (useTime) {
		const t = await readFile(timeFile, "utf8");
		const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(t);
		if (m) peakRssMb = Number(m[1]) / 1024;
		await rm(timeFile, { force: true });
	}
	return { stdout, wallMs, peakRssMb };
}

export function median(xs: number[]): number {
	const s = [...xs].sort((a, b) => a - b);
	const m = s.length >> 1;
	return s.length % 2
		? (s[m] as number)
		: ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function medianOrNull(xs: (number | null)[]): number | null {
	const v = xs.filter((x): x is number => x !== null);
	return v.length === 0 ? null : median(v);
}

export function machine(extra = ""): string {
	let cpu = "unknown CPU";
	try {
		const info = readFileSync("/proc/cpuinfo", "utf8");
		cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpu;
	} catch {}
	const ram = (totalmem() / 2 ** 30).toFixed(1);
	return `${availableParallelism()} cores (nproc), ${cpu}, ${ram} GiB RAM, Node ${process.version}, Linux${extra ? `, ${extra}` : ""}`;
}

/** A copy of the bench bundle whose manifest says `runtime: trees` (same model.onnx, same signature). */
export async function treesBundle(): Promise<string> {
	const dir = join(OUT, "trees-bundle");
	await mkdir(dir, { recursive: true });
	await copyFile(join(MODEL_DIR, "model.onnx"), join(dir, "model.onnx"));
	const yaml = await readFile(join(MODEL_DIR, "mlship.yaml"), "utf8");
	await writeFile(
		join(dir, "mlship.yaml"),
		yaml.replace(/^runtime: onnx$/m, "runtime: trees"),
	);
	return dir;
}

export const fmtInt = (x: number) => Math.round(x).toLocaleString("en-US");

/** Replaces (or appends) the `## name` section of bench/RESULTS.md. */
export async function writeResults(
	name: string,
	section: string,
): Promise<void> {
	const path = join(ROOT, "bench/RESULTS.md");
	let text = existsSync(path)
		? await readFile(path, "utf8")
		: "# Benchmark results\n\nEach `##` section is written by its own bench (see bench/README.md); re-running a bench replaces only its section.\n";
	const start = text.search(new RegExp(`^## ${name}\\s*$`, "m"));
	if (start < 0) text = `${text.trimEnd()}\n\n${section}`;
	else {
		const rest = text.slice(start + 1);
		const next = rest.search(/^## /m);
		const end = next < 0 ? text.length : start + 1 + next;
		text = `${text.slice(0, start)}${section}${next < 0 ? "" : "\n"}${text.slice(end)}`;
	}
	await writeFile(path, `${text.trimEnd()}\n`);
}
