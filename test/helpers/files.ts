// Test helpers: write records as CSV, JSON lines or Parquet; read a table file back; run the CLI.

import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { DuckDBInstance } from "@duckdb/node-api";
import { CLI, REPO } from "./fixtures.ts";

export function toCsv(rows: Record<string, unknown>[]): string {
	const cols = Object.keys(rows[0] ?? {});
	const cell = (v: unknown) =>
		typeof v === "string" && /[",\n]/.test(v)
			? `"${v.replaceAll('"', '""')}"`
			: String(v);
	return `${cols.join(",")}\n${rows.map((r) => cols.map((c) => cell(r[c])).join(",")).join("\n")}\n`;
}

/** Writes rows to `path` in the format its extension names. */
export async function writeTable(
	path: string,
	rows: Record<string, unknown>[],
): Promise<void> {
	if (path.endsWith(".csv")) return writeFile(path, toCsv(rows));
	const jsonl = rows.map((r) => JSON.stringify(r)).join("\n");
	if (path.endsWith(".jsonl")) return writeFile(path, `${jsonl}\n`);
	await writeFile(`${path}.src.jsonl`, `${jsonl}\n`);
	await duck(
		`COPY (SELECT * FROM read_json('${path}.src.jsonl', format = 'newline_delimited')) TO '${path}' (FORMAT parquet)`,
	);
}

async function duck(sql: string): Promise<Record<string, unknown>[]> {
	const db = await DuckDBInstance.create(":memory:");
	const conn = await db.connect();
	try {
		const r = await conn.runAndReadAll(sql);
		return r.getRowObjectsJS() as Record<string, unknown>[];
	} finally {
		conn.closeSync();
		db.closeSync();
	}
}

/** Reads a CSV, JSON-lines or Parquet file into row objects (in file order). */
export function readTable(path: string): Promise<Record<string, unknown>[]> {
	const fn = path.endsWith(".csv")
		? "read_csv"
		: path.endsWith(".parquet")
			? "read_parquet"
			: "read_json";
	return duck(`SELECT * FROM ${fn}('${path}')`);
}

export interface CliResult {
	code: number;
	stdout: string;
	stderr: string;
}

/** Runs `mlship ...args` as a real process (Node 24, TypeScript sources); `stdin` is written to its standard input. */
export function mlship(
	args: string[],
	cwd = REPO,
	env: NodeJS.ProcessEnv = {},
	stdin?: string,
): Promise<CliResult> {
	return startMlship(args, cwd, env, stdin).done.then((r) => ({
		code: r.code ?? -1,
		stdout: r.stdout,
		stderr: r.stderr,
	}));
}

/** Starts `mlship ...args` as a real process; `done` settles when it exits (with the signal that ended it, if any). */
export function startMlship(
	args: string[],
	cwd = REPO,
	env: NodeJS.ProcessEnv = {},
	stdin?: string,
): {
	process: ChildProcess;
	done: Promise<{
		code: number | null;
		signal: NodeJS.Signals | null;
		stdout: string;
		stderr: string;
	}>;
} {
	const p = spawn(process.execPath, [CLI, ...args], {
		cwd,
		env: { ...process.env, ...env },
	});
	let stdout = "";
	let stderr = "";
	p.stdout.on("data", (d) => {
		stdout += d;
	});
	p.stderr.on("data", (d) => {
		stderr += d;
	});
	const done = new Promise<{
		code: number | null;
		signal: NodeJS.Signals | null;
		stdout: string;
		stderr: string;
	}>((resolve, reject) => {
		p.on("error", reject);
		p.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
	});
	if (stdin !== undefined) p.stdin.end(stdin);
	return { process: p, done };
}
