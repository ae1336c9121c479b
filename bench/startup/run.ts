// bench/startup: how long mlship takes to start, median of N fresh processes each — `mlship --help`,
// `await import("mlship")`, and each pattern's first prediction (process start → first result). Loopback only.
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
	fmtInt,
	machine,
	median,
	positiveInt,
	ROOT,
	writeResults,
} from "../common.ts";

const { values: flags } = parseArgs({
	options: {
		runs: { type: "string", default: "7" },
		"no-results": { type: "boolean", default: false },
	},
});
const RUNS = positiveInt("--runs", flags.runs);
const NODE = process.execPath;
// What an installed package runs: dist/, built first (as `npm pack` does).
execFileSync(NODE, [join(ROOT, "scripts/build.ts")], { stdio: "inherit" });
const CLI = join(ROOT, "dist/cli/main.js");
const INDEX = join(ROOT, "dist/index.js");
const IRIS = join(ROOT, "examples/iris");
const IRIS_CSV = join(ROOT, "examples/iris.csv");
const ROW = {
	sepal_length: 5.1,
	sepal_width: 3.5,
	petal_length: 1.4,
	petal_width: 0.2,
};

interface Case {
	name: string;
	target?: string;
	/** Arguments to `node`; a run ends when the process exits, or at the first stdout line matching `until`. */
	args: string[];
	until?: RegExp;
	/** Written to stdin, which is then closed. */
	stdin?: string;
}

/** Milliseconds from spawn to exit (or to the first stdout line matching `until`; the process is then ended). */
function once(c: Case, cwd: string): Promise<number> {
	return new Promise((resolve, reject) => {
		const start = performance.now();
		const p = spawn(NODE, c.args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
		let out = "";
		let err = "";
		let done = false;
		p.stdout.on("data", (d) => {
			out += d;
			if (!done && c.until?.test(out)) {
				done = true;
				resolve(performance.now() - start);
				p.kill("SIGTERM");
			}
		});
		p.stderr.on("data", (d) => {
			err += d;
		});
		p.on("error", reject);
		p.on("exit", (code) => {
			if (done) return;
			done = true;
			if (code !== 0 || c.until)
				reject(new Error(`${c.name}: exited ${code}: ${err}${out}`));
			else resolve(performance.now() - start);
		});
		p.stdin.end(c.stdin ?? "");
	});
}

const cwd = await mkdtemp(join(tmpdir(), "mlship-startup-"));
// Scripts as files, not -e: a model's worker threads inherit the parent's execArgv, and --input-type would
// stop them from starting.
const importScript = join(cwd, "import.mjs");
await writeFile(importScript, `await import(${JSON.stringify(INDEX)});\n`);
const embeddedScript = join(cwd, "embedded.mjs");
await writeFile(
	embeddedScript,
	`const { loadModel } = await import(${JSON.stringify(INDEX)});
const m = await loadModel(${JSON.stringify(IRIS)});
console.log(JSON.stringify(await m.predict([${JSON.stringify(ROW)}])));
await m.close();
`,
);

const CASES: Case[] = [
	{ name: "`node -e 0` (the floor)", args: ["-e", "0"] },
	{ name: "`mlship --help`", target: "≤ 250 ms", args: [CLI, "--help"] },
	{
		name: "`mlship --help` in a clone (bin/mlship.js, TypeScript sources)",
		args: [join(ROOT, "bin/mlship.js"), "--help"],
	},
	{
		name: '`await import("mlship")`',
		target: "≤ 100 ms",
		args: [importScript],
	},
	{ name: "embedded: loadModel + first predict", args: [embeddedScript] },
	{
		name: "`mlship predict` (38-row CSV)",
		args: [CLI, "predict", "-m", IRIS, "-i", IRIS_CSV, "-o", "p.csv"],
	},
	{
		name: "`mlship sql` (DuckDB function, one row)",
		args: [
			CLI,
			"sql",
			`SELECT predict_label('${IRIS}', 5.1, 3.5, 1.4, 0.2) AS species`,
		],
	},
	{
		name: "`mlship stream` (one JSON line, stdin → stdout)",
		args: [CLI, "stream", "-m", IRIS, "--from", "-", "--to", "-"],
		stdin: `${JSON.stringify(ROW)}\n`,
	},
	{
		name: "`mlship serve` (REST + gRPC) until serving",
		args: [
			CLI,
			"serve",
			"-m",
			IRIS,
			"--host",
			"127.0.0.1",
			"--http-port",
			"0",
			"--grpc-port",
			"0",
		],
		until: /"mlship serving"/,
	},
];

try {
	const rows: string[] = [];
	for (const c of CASES) {
		await once(c, cwd); // warms the file cache; not counted
		const ms: number[] = [];
		for (let i = 0; i < RUNS; i++) ms.push(await once(c, cwd));
		const [lo, mid, hi] = [Math.min(...ms), median(ms), Math.max(...ms)];
		console.log(
			`${c.name}: median ${fmtInt(mid)} ms (min ${fmtInt(lo)}, max ${fmtInt(hi)})`,
		);
		rows.push(
			`| ${c.name} | ${fmtInt(mid)} | ${fmtInt(lo)} | ${fmtInt(hi)} | ${c.target ?? ""} |`,
		);
	}
	if (!flags["no-results"])
		await writeResults(
			"startup",
			`## startup

Wall time of a fresh process from spawn to exit (serve: to its "mlship serving" log line, with REST and gRPC
listening and the model loaded), median of ${RUNS} runs after one unmeasured warm-up run each. \`mlship\` and
\`import("mlship")\` are the built package (dist/, as installed); one row shows a clone's \`bin/mlship.js\` on the
TypeScript sources. The model is examples/iris.

- date: ${new Date().toISOString().slice(0, 10)}
- machine: ${machine()}
- command: \`node bench/startup/run.ts --runs ${RUNS}\`

| what | median ms | min ms | max ms | target |
|---|---:|---:|---:|---|
${rows.join("\n")}
`,
		);
} finally {
	await rm(cwd, { recursive: true, force: true });
}
