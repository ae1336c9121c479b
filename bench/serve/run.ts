// bench/serve: requests/s and p50/p99 latency of `mlship serve` vs MLServer vs a FastAPI + scikit-learn
// baseline at fixed client concurrency, plus the raw in-process onnxruntime-node call as the limit.
//
//   node bench/serve/run.ts [--models gbdt,mlp] [--seconds 8] [--warmup 2] [--levels 1,8,64]
//                           [--contenders mlship,mlship-nobatch,mlship-p2,mlship-log,mlship-log-down,mlserver,fastapi] [--no-results]
//   the payload log's memory (peak RSS with and without it, ~2.5 min):
//   node bench/serve/run.ts --models gbdt,mlp --contenders mlship,mlship-log,mlship-log-down --protocols rest --levels 64 --seconds 20
//                           [--mlserver-variant pw0] [--fastapi-workers 1] [--tune] [--profile] [--cli src/cli/main.ts]
//
// Before anything runs (only when a Python contender is chosen): bench/serve/setup.sh (venv + wrk) and bench/serve/train_models.py (the same sklearn
// models as the ONNX fixtures, checked against their golden labels) — run.ts calls both (both are idempotent).
// Per model and contender: start the server on a free 127.0.0.1 port, wait for /v2/models/{m}/ready, check that
// the first 16 golden rows come back with their golden labels, then per concurrency level run wrk for a
// short warm-up and a measured window (both bounded by wrk's -d), and read the server's CPU time (utime+stime
// of the process and its descendants, /proc) before/after the measured window. Then stop the server (SIGTERM
// to its process group, SIGKILL after 10 s). --tune runs every MLServer variant and FastAPI with 1 and 2
// workers instead (to pick their best settings); --profile starts mlship with --cpu-prof (bench/out/serve/prof).
import {
	type ChildProcess,
	execFileSync,
	spawn,
	spawnSync,
} from "node:child_process";
import {
	createWriteStream,
	existsSync,
	readdirSync,
	readFileSync,
} from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import ort from "onnxruntime-node";
import { parseManifest } from "../../src/bundle/manifest.ts";
import { machine, writeResults } from "../common.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const HERE = join(ROOT, "bench/serve");
const OUT = join(ROOT, "bench/out/serve");
const VENV = join(HERE, ".venv");
const PY = join(VENV, "bin/python");
const NODE = process.execPath;
const HOST = "127.0.0.1";
const CLK_TCK = 100; // Linux USER_HZ (getconf CLK_TCK), the unit of utime/stime in /proc/<pid>/stat
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const GOLDEN_CHECK_ROWS = 16;

const { values: args } = parseArgs({
	options: {
		models: { type: "string", default: "gbdt,mlp" },
		seconds: { type: "string", default: "8" },
		warmup: { type: "string", default: "2" },
		levels: { type: "string", default: "1,8,64" },
		protocols: { type: "string", default: "rest,binary,grpc" },
		contenders: {
			type: "string",
			default:
				"mlship,mlship-nobatch,mlserver,mlserver-ab,fastapi,http-floor,grpc-floor",
		},
		"mlserver-variant": { type: "string", default: "pw0" },
		"mlserver-ab-variant": { type: "string", default: "pw0-ab" },
		"fastapi-workers": { type: "string", default: "1" },
		tune: { type: "boolean", default: false },
		profile: { type: "boolean", default: false },
		"no-results": { type: "boolean", default: false },
		cli: { type: "string", default: "src/cli/main.ts" },
	},
});

type ModelKey = "gbdt" | "mlp";
const MODELS: Record<
	ModelKey,
	{ fixture: string; dataset: string; features: number }
> = {
	gbdt: {
		fixture: "breast-cancer-gbdt",
		dataset: "breast_cancer GradientBoostingClassifier (100 trees, depth 3)",
		features: 30,
	},
	mlp: {
		fixture: "digits-mlp",
		dataset: "digits MLPClassifier (64 hidden)",
		features: 64,
	},
};

const SECONDS = positive("--seconds", args.seconds);
const WARMUP = positive("--warmup", args.warmup);
const LEVELS = list(args.levels).map((s) => positive("--levels", s));
const MODEL_KEYS = list(args.models).map((m) => {
	if (m !== "gbdt" && m !== "mlp")
		throw new Error(`--models: unknown '${m}' (gbdt, mlp)`);
	return m as ModelKey;
});
type Protocol = "rest" | "binary" | "grpc";
const PROTOCOL_NAMES: Record<Protocol, string> = {
	rest: "REST JSON",
	binary: "REST binary",
	grpc: "gRPC",
};
const PROTOCOLS = list(args.protocols).map((p) => {
	if (!(p in PROTOCOL_NAMES))
		throw new Error(`--protocols: unknown '${p}' (rest, binary, grpc)`);
	return p as Protocol;
});
const FASTAPI_WORKERS = positive("--fastapi-workers", args["fastapi-workers"]);
const MLSERVER_VARIANT = args["mlserver-variant"] ?? "pw0";
const MLSERVER_AB_VARIANT = args["mlserver-ab-variant"] ?? "pw0-ab";

function positive(flag: string, s: string | undefined): number {
	const n = Number(s);
	if (!Number.isFinite(n) || n <= 0)
		throw new Error(`${flag} must be a positive number, got '${s}'`);
	return n;
}

function list(s: string | undefined): string[] {
	return (s ?? "")
		.split(",")
		.map((x) => x.trim())
		.filter(Boolean);
}

// ------------------------------------------------------------------------------------------ contenders

interface Contender {
	id: string; // row label
	kind: "mlship" | "mlserver" | "fastapi" | "floor";
	describe: string;
	/** Builds the command for a model on a port. */
	command(
		model: ModelKey,
		port: number,
		extraPorts: number[],
	): { cmd: string; argv: string[]; cwd: string; env: NodeJS.ProcessEnv };
	extraPorts: number;
	/** The output holding the class label in this server's response; undefined = no model (the floor). */
	labelOutput: string | undefined;
	/** Run for the first model only (its answer does not depend on the model). */
	once?: boolean;
	/** The protocols it speaks (each is measured when in --protocols). */
	protocols: Protocol[];
	/** Its gRPC port, from its HTTP port and extra ports (gRPC-speaking contenders). */
	grpcPort?: (port: number, extra: number[]) => number;
	/** Ready when its port accepts connections (no HTTP /ready route). */
	tcpReady?: boolean;
}

function floorContender(): Contender {
	return {
		id: "http-floor",
		kind: "floor",
		describe:
			"bare node:http server (bench/serve/http-floor.ts): JSON.parse of the body + a canned response of mlship's size, no model — Node's HTTP cost, for reference",
		extraPorts: 0,
		labelOutput: undefined,
		once: true,
		protocols: ["rest", "binary"],
		command(_model, port) {
			return {
				cmd: NODE,
				argv: [join(HERE, "http-floor.ts"), String(port), HOST],
				cwd: ROOT,
				env: { ...process.env },
			};
		},
	};
}

/**
 * mlship serve (batching on) with its payload log at 100% sampling: to a Parquet directory (`mlship-log`), or to a
 * PostgreSQL port nothing listens on (`mlship-log-down`: every record queues, then drops; RSS must stay bounded).
 */
function mlshipLogContender(down: boolean): Contender {
	const base = mlshipContender(true);
	return {
		...base,
		id: down ? "mlship-log-down" : "mlship-log",
		describe: down
			? "mlship serve with --log-payloads to an unreachable PostgreSQL (127.0.0.1, a closed port): the log queues 10 000 records, then drops and counts"
			: "mlship serve with --log-payloads DIR (Parquet files, 100% sampling, default queue and rotation)",
		command(model, port, extraPorts) {
			const c = base.command(model, port, extraPorts);
			const dest = down
				? `postgres://bench@127.0.0.1:${extraPorts[0]}/bench`
				: join(OUT, "payloads", model);
			return { ...c, argv: [...c.argv, "--log-payloads", dest] };
		},
		// A port found free and left closed: the destination that is down.
		extraPorts: down ? 1 : 0,
	};
}

/** mlship serve --processes N (batching on): N server processes share the ports; CPU is summed over all of them. */
function mlshipProcessesContender(n: number): Contender {
	const base = mlshipContender(true);
	return {
		...base,
		id: `mlship-p${n}`,
		describe: `mlship serve --processes ${n} (adaptive batching on, bundle defaults, ${n} server processes on one port)`,
		command(model, port, extraPorts) {
			const c = base.command(model, port, extraPorts);
			return { ...c, argv: [...c.argv, "--processes", String(n)] };
		},
	};
}

function grpcFloorContender(): Contender {
	return {
		id: "grpc-floor",
		kind: "floor",
		describe:
			"bare @grpc/grpc-js server (bench/serve/grpc-floor.ts): the OIP proto decoded by grpc-js + a canned ModelInfer answer of mlship's shape, no model — grpc-js's cost, for reference",
		extraPorts: 0,
		labelOutput: undefined,
		once: true,
		protocols: ["grpc"],
		grpcPort: (port) => port,
		tcpReady: true,
		command(_model, port) {
			return {
				cmd: NODE,
				argv: [join(HERE, "grpc-floor.ts"), String(port), HOST],
				cwd: ROOT,
				env: { ...process.env },
			};
		},
	};
}

function mlshipContender(batching: boolean): Contender {
	return {
		id: batching ? "mlship" : "mlship-nobatch",
		kind: "mlship",
		describe: batching
			? "mlship serve, adaptive batching on (bundle defaults)"
			: "mlship serve --max-batch-size 1 (batching off)",
		extraPorts: 1,
		labelOutput: "label",
		protocols: ["rest", "binary", "grpc"],
		grpcPort: (_port, extra) => extra[0] as number,
		command(model, port, [grpcPort]) {
			const argv = [
				...(args.profile
					? ["--cpu-prof", "--cpu-prof-dir", join(OUT, "prof")]
					: []),
				args.cli ?? "src/cli/main.ts",
				"serve",
				"--model",
				`${join(ROOT, "test/fixtures/models", MODELS[model].fixture)}:${model}`,
				"--host",
				HOST,
				"--http-port",
				String(port),
				"--grpc-port",
				String(PROTOCOLS.includes("grpc") ? grpcPort : -1),
				"--log-level",
				"warn",
				...(batching ? [] : ["--max-batch-size", "1"]),
			];
			return { cmd: NODE, argv, cwd: ROOT, env: { ...process.env } };
		},
	};
}

/** Python servers: one BLAS thread per process (the single-row work gains nothing from more). */
function pyEnv(): NodeJS.ProcessEnv {
	return {
		...process.env,
		OPENBLAS_NUM_THREADS: "1",
		OMP_NUM_THREADS: "1",
		MKL_NUM_THREADS: "1",
		PYTHONUNBUFFERED: "1",
	};
}

function mlserverContender(variant: string, id = "mlserver"): Contender {
	return {
		id,
		kind: "mlserver",
		describe: `MLServer ${pkgVersion("mlserver")} + mlserver-sklearn, variant ${variant}`,
		extraPorts: 2,
		labelOutput: "predict",
		protocols: ["rest"],
		command(model, port, [grpc, metrics]) {
			return {
				cmd: join(VENV, "bin/mlserver"),
				argv: ["start", "."],
				cwd: join(OUT, "mlserver", variant, model),
				env: {
					...pyEnv(),
					MLSERVER_HOST: HOST,
					MLSERVER_HTTP_PORT: String(port),
					MLSERVER_GRPC_PORT: String(grpc),
					MLSERVER_METRICS_PORT: String(metrics),
				},
			};
		},
	};
}

function fastapiContender(workers: number, id = "fastapi"): Contender {
	return {
		id,
		kind: "fastapi",
		describe: `FastAPI ${pkgVersion("fastapi")} + uvicorn ${pkgVersion("uvicorn")} (uvloop, httptools), ${workers} worker${workers > 1 ? "s" : ""}`,
		extraPorts: 0,
		labelOutput: "label",
		protocols: ["rest"],
		command(_model, port) {
			return {
				cmd: join(VENV, "bin/uvicorn"),
				argv: [
					"fastapi_app:app",
					"--host",
					HOST,
					"--port",
					String(port),
					"--workers",
					String(workers),
					"--loop",
					"uvloop",
					"--http",
					"httptools",
					"--no-access-log",
					"--log-level",
					"warning",
				],
				cwd: HERE,
				env: pyEnv(),
			};
		},
	};
}

const pkgVersions = new Map<string, string>();
function pkgVersion(name: string): string {
	let v = pkgVersions.get(name);
	if (v === undefined) {
		try {
			v = execFileSync(
				PY,
				["-c", `import importlib.metadata as m; print(m.version("${name}"))`],
				{ encoding: "utf8" },
			).trim();
		} catch {
			v = "?";
		}
		pkgVersions.set(name, v);
	}
	return v;
}

function contenders(): Contender[] {
	if (args.tune) {
		const variants = JSON.parse(
			readFileSync(join(OUT, "manifest.json"), "utf8"),
		).mlserver_variants as Record<string, unknown>;
		return [
			...Object.keys(variants).map((v) =>
				mlserverContender(v, `mlserver-${v}`),
			),
			fastapiContender(1, "fastapi-w1"),
			fastapiContender(2, "fastapi-w2"),
		];
	}
	const all: Record<string, () => Contender> = {
		mlship: () => mlshipContender(true),
		"mlship-nobatch": () => mlshipContender(false),
		"mlship-p2": () => mlshipProcessesContender(2),
		"mlship-log": () => mlshipLogContender(false),
		"mlship-log-down": () => mlshipLogContender(true),
		mlserver: () => mlserverContender(MLSERVER_VARIANT),
		"mlserver-ab": () => mlserverContender(MLSERVER_AB_VARIANT, "mlserver-ab"),
		"http-floor": () => floorContender(),
		"grpc-floor": () => grpcFloorContender(),
		fastapi: () => fastapiContender(FASTAPI_WORKERS),
	};
	return list(args.contenders).map((c) => {
		const make = all[c];
		if (!make)
			throw new Error(
				`--contenders: unknown '${c}' (${Object.keys(all).join(", ")})`,
			);
		return make();
	});
}

// ------------------------------------------------------------------------------------------ processes

const live = new Set<ChildProcess>();

async function freePort(): Promise<number> {
	return new Promise((res, rej) => {
		const s = createServer();
		s.once("error", rej);
		s.listen(0, HOST, () => {
			const addr = s.address();
			const port = typeof addr === "object" && addr ? addr.port : 0;
			s.close(() => res(port));
		});
	});
}

function sleep(ms: number): Promise<void> {
	return new Promise((r) => setTimeout(r, ms));
}

/** Stops a child we started: SIGTERM to its process group, SIGKILL after the grace period. */
async function stop(child: ChildProcess): Promise<void> {
	const pid = child.pid;
	if (pid === undefined) return;
	const exited =
		child.exitCode !== null || child.signalCode !== null
			? Promise.resolve()
			: new Promise<void>((r) => child.once("exit", () => r()));
	const signal = (sig: NodeJS.Signals) => {
		try {
			process.kill(-pid, sig); // the group we created with detached: true
		} catch {
			// already gone
		}
	};
	signal("SIGTERM");
	const timer = setTimeout(() => signal("SIGKILL"), STOP_GRACE_MS);
	await exited;
	clearTimeout(timer);
	await sleep(200);
	signal("SIGKILL"); // stragglers of the group (worker processes), if any
	live.delete(child);
}

function stopAllSync(): void {
	for (const child of live) {
		if (child.pid === undefined) continue;
		try {
			process.kill(-child.pid, "SIGKILL");
		} catch {
			// gone
		}
	}
	live.clear();
}
process.on("exit", stopAllSync);
for (const sig of ["SIGINT", "SIGTERM"] as const)
	process.on(sig, () => {
		stopAllSync();
		process.exit(130);
	});

/** Busy clock ticks of the whole machine (all CPUs: total minus idle and iowait), from /proc/stat. */
function machineBusyTicks(): number {
	const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
	const v = line.trim().split(/\s+/).slice(1).map(Number);
	const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
	return total - (v[3] ?? 0) - (v[4] ?? 0);
}

/** utime+stime (clock ticks) of pid and all its descendants. */
function treeCpuTicks(pid: number): number {
	let total = 0;
	const stack = [pid];
	const seen = new Set<number>();
	while (stack.length > 0) {
		const p = stack.pop() as number;
		if (seen.has(p)) continue;
		seen.add(p);
		try {
			const stat = readFileSync(`/proc/${p}/stat`, "utf8");
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			// fields[0] is field 3 (state); utime = field 14, stime = field 15
			total += Number(fields[11]) + Number(fields[12]);
			for (const tid of readdirSync(`/proc/${p}/task`)) {
				const children = readFileSync(
					`/proc/${p}/task/${tid}/children`,
					"utf8",
				).trim();
				if (children)
					for (const c of children.split(" ")) stack.push(Number(c));
			}
		} catch {
			// exited meanwhile
		}
	}
	return total;
}

async function waitReady(
	child: ChildProcess,
	port: number,
	model: ModelKey,
	logPath: string,
): Promise<void> {
	const deadline = Date.now() + READY_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (child.exitCode !== null || child.signalCode !== null)
			throw new Error(
				`server exited (${child.exitCode ?? child.signalCode}) before ready; log: ${logPath}\n${tail(logPath)}`,
			);
		try {
			const r = await fetch(`http://${HOST}:${port}/v2/models/${model}/ready`, {
				signal: AbortSignal.timeout(1000),
			});
			await r.arrayBuffer();
			if (r.status === 200) return;
		} catch {
			// not listening yet
		}
		await sleep(200);
	}
	throw new Error(
		`server not ready within ${READY_TIMEOUT_MS} ms; log: ${logPath}`,
	);
}

/** Waits until `port` accepts a TCP connection (servers with no HTTP /ready route, e.g. the gRPC floor). */
async function waitPort(
	child: ChildProcess,
	port: number,
	logPath: string,
): Promise<void> {
	const { connect } = await import("node:net");
	const deadline = Date.now() + READY_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (child.exitCode !== null || child.signalCode !== null)
			throw new Error(
				`server exited (${child.exitCode ?? child.signalCode}) before listening; log: ${logPath}\n${tail(logPath)}`,
			);
		const ok = await new Promise<boolean>((r) => {
			const s = connect(port, HOST);
			s.once("connect", () => {
				s.destroy();
				r(true);
			});
			s.once("error", () => r(false));
		});
		if (ok) return;
		await sleep(200);
	}
	throw new Error(
		`server not listening within ${READY_TIMEOUT_MS} ms; log: ${logPath}`,
	);
}

function tail(path: string): string {
	try {
		return readFileSync(path, "utf8").split("\n").slice(-15).join("\n");
	} catch {
		return "";
	}
}

// ------------------------------------------------------------------------------------------ golden + load

interface Golden {
	features: string[];
	rows: number[][];
	labels: number[];
}

function golden(model: ModelKey): Golden {
	const trained = join(OUT, "models", model, "golden.json");
	if (existsSync(trained))
		return JSON.parse(readFileSync(trained, "utf8")) as Golden;
	// No Python contender ran train_models.py: the fixture's own golden rows (features in manifest order).
	const dir = join(ROOT, "test/fixtures/models", MODELS[model].fixture);
	const features =
		parseManifest(readFileSync(join(dir, "mlship.yaml"), "utf8")).features?.map(
			(f) => f.name,
		) ?? [];
	const g = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as {
		records: Record<string, number>[];
		expected: { label: number[] };
	};
	return {
		features,
		rows: g.records.map((r) => features.map((f) => r[f] as number)),
		labels: g.expected.label.map(Number),
	};
}

/** One row in Triton's binary tensor extension: the JSON header (its length goes in a header) + FP32 bytes. */
function binaryBody(row: number[]): { bytes: Buffer; headerLength: number } {
	const header = Buffer.from(
		JSON.stringify({
			inputs: [
				{
					name: "float_input",
					datatype: "FP32",
					shape: [1, row.length],
					parameters: { binary_data_size: row.length * 4 },
				},
			],
			parameters: { binary_data_output: true },
		}),
	);
	return {
		bytes: Buffer.concat([header, Buffer.from(new Float32Array(row).buffer)]),
		headerLength: header.length,
	};
}

/** A binary-extension answer's first output (the label, INT64) must be the golden label. */
async function checkBinary(
	c: Contender,
	model: ModelKey,
	port: number,
): Promise<void> {
	const g = golden(model);
	const b = binaryBody(g.rows[0] as number[]);
	const r = await fetch(`http://${HOST}:${port}/v2/models/${model}/infer`, {
		method: "POST",
		headers: {
			"content-type": "application/octet-stream",
			"inference-header-content-length": String(b.headerLength),
		},
		body: b.bytes,
		signal: AbortSignal.timeout(10_000),
	});
	const bytes = Buffer.from(await r.arrayBuffer());
	const n = Number(r.headers.get("inference-header-content-length"));
	if (r.status !== 200 || !(n > 0))
		throw new Error(
			`${c.id}/${model}: binary request: HTTP ${r.status}, header length ${n}: ${bytes.toString("utf8", 0, 300)}`,
		);
	const header = JSON.parse(bytes.toString("utf8", 0, n)) as {
		outputs: { name: string }[];
	};
	if (c.labelOutput !== undefined && header.outputs[0]?.name === "label") {
		const got = Number(bytes.readBigInt64LE(n));
		if (got !== g.labels[0])
			throw new Error(
				`${c.id}/${model}: binary answer label ${got}, golden ${g.labels[0]}`,
			);
	}
}

function body(row: number[]): string {
	return JSON.stringify({
		inputs: [
			{
				name: "float_input",
				datatype: "FP32",
				shape: [1, row.length],
				data: row,
			},
		],
	});
}

/** The first rows' labels over HTTP must equal the golden labels (same model, same answer). */
async function checkGolden(
	c: Contender,
	model: ModelKey,
	port: number,
): Promise<void> {
	if (c.labelOutput === undefined) return;
	const g = golden(model);
	for (let i = 0; i < Math.min(GOLDEN_CHECK_ROWS, g.rows.length); i++) {
		const r = await fetch(`http://${HOST}:${port}/v2/models/${model}/infer`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: body(g.rows[i] as number[]),
			signal: AbortSignal.timeout(10_000),
		});
		const text = await r.text();
		if (r.status !== 200)
			throw new Error(
				`${c.id}/${model}: golden row ${i}: HTTP ${r.status} ${text}`,
			);
		const out = (
			JSON.parse(text) as { outputs: { name: string; data: unknown[] }[] }
		).outputs.find((o) => o.name === c.labelOutput);
		const got = Number(out?.data.flat()[0]);
		if (got !== g.labels[i])
			throw new Error(
				`${c.id}/${model}: golden row ${i}: label ${got}, golden ${g.labels[i]} (${text})`,
			);
	}
}

interface WrkResult {
	requests: number;
	duration_us: number;
	connect: number;
	read: number;
	write: number;
	status: number;
	timeout: number;
	p50_us: number;
	p99_us: number;
	mean_us: number;
}

async function wrk(
	url: string,
	bodyFile: string,
	connections: number,
	seconds: number,
	headerLength?: number,
): Promise<WrkResult> {
	const argv = [
		"-t1",
		`-c${connections}`,
		`-d${Math.max(1, Math.round(seconds))}s`,
		"--timeout",
		"10s",
		"-s",
		join(HERE, "post.lua"),
		url,
		"--",
		bodyFile,
		...(headerLength !== undefined ? [String(headerLength)] : []),
	];
	return loadChild("wrk", argv, "WRK_JSON ", seconds);
}

/** Runs a load generator child (wrk or grpc-load.ts) and parses its one-line JSON summary. */
async function loadChild(
	cmd: string,
	argv: string[],
	prefix: string,
	seconds: number,
): Promise<WrkResult> {
	const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
	live.add(child);
	let out = "";
	child.stdout?.on("data", (d) => {
		out += d;
	});
	child.stderr?.on("data", (d) => {
		out += d;
	});
	// wrk stops by itself after -d; the kill is a safety net
	const guard = setTimeout(() => child.kill("SIGKILL"), (seconds + 20) * 1000);
	const code = await new Promise<number | null>((r) =>
		child.once("exit", (c) => r(c)),
	);
	clearTimeout(guard);
	live.delete(child);
	const line = out.split("\n").find((l) => l.startsWith(prefix));
	if (code !== 0 || !line)
		throw new Error(`${cmd} failed (exit ${code}): ${out}`);
	return JSON.parse(line.slice(prefix.length)) as WrkResult;
}

/** The gRPC load generator (bench/serve/grpc-load.ts, a grpc-js client in its own process). */
function grpcLoad(
	port: number,
	model: ModelKey,
	clients: number,
	seconds: number,
	expectLabel: number | undefined,
): Promise<WrkResult> {
	return loadChild(
		NODE,
		[
			join(HERE, "grpc-load.ts"),
			"--port",
			String(port),
			"--model",
			model,
			"--row",
			(golden(model).rows[0] as number[]).join(","),
			"--clients",
			String(clients),
			"--seconds",
			String(seconds),
			...(expectLabel !== undefined
				? ["--expect-label", String(expectLabel)]
				: []),
		],
		"GRPC_JSON ",
		seconds + 30,
	);
}

// ------------------------------------------------------------------------------------------ measurements

interface Row {
	model: ModelKey;
	contender: string;
	protocol: Protocol;
	kind: Contender["kind"];
	concurrency: number;
	rps: number;
	p50_ms: number;
	p99_ms: number;
	errors: number;
	requests: number;
	cpu_us_per_req: number;
	/** CPU cores used by the server during the window. */
	server_cores: number;
	/** CPU cores used by everything else (wrk included) during the window. */
	other_cores: number;
	/** mlship: resident memory of the server process after the level, MiB. */
	rss_mib?: number;
	/** mlship: the server process's peak resident memory since it started (VmHWM), MiB, read after the level. */
	peak_rss_mib?: number;
	/** Payload-log contenders: records written and dropped so far (from /metrics). */
	log_written?: number;
	log_dropped?: number;
}

/** Resident memory of a process, MiB (/proc/<pid>/status VmRSS, or VmHWM: its peak since it started). */
function rssMib(pid: number, field = "VmRSS"): number | undefined {
	try {
		const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
			readFileSync(`/proc/${pid}/status`, "utf8"),
		);
		return m ? Number(m[1]) / 1024 : undefined;
	} catch {
		return undefined;
	}
}

/** The payload log's written and dropped totals from a server's /metrics. */
async function logCounters(
	port: number,
): Promise<{ written: number; dropped: number }> {
	const text = await (
		await fetch(`http://${HOST}:${port}/metrics`, {
			signal: AbortSignal.timeout(10_000),
		})
	).text();
	const sum = (name: string) =>
		text
			.split("\n")
			.filter((l) => l.startsWith(name))
			.reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
	return {
		written: sum("mlship_payload_log_written_total"),
		dropped: sum("mlship_payload_log_dropped_total"),
	};
}

async function runContender(c: Contender, model: ModelKey): Promise<Row[]> {
	const port = await freePort();
	const extra: number[] = [];
	for (let i = 0; i < c.extraPorts; i++) extra.push(await freePort());
	const { cmd, argv, cwd, env } = c.command(model, port, extra);
	await mkdir(join(OUT, "logs"), { recursive: true });
	if (args.profile) await mkdir(join(OUT, "prof"), { recursive: true });
	const logPath = join(OUT, "logs", `${c.id}-${model}.log`);
	const log = createWriteStream(logPath);
	const child = spawn(cmd, argv, {
		cwd,
		env,
		detached: true, // own process group: stop() signals it and its workers
		stdio: ["ignore", "pipe", "pipe"],
	});
	live.add(child);
	child.stdout?.pipe(log);
	child.stderr?.pipe(log);
	const rows: Row[] = [];
	try {
		const t0 = Date.now();
		if (c.tcpReady) await waitPort(child, port, logPath);
		else await waitReady(child, port, model, logPath);
		const protocols = PROTOCOLS.filter((p) => c.protocols.includes(p));
		if (protocols.includes("rest")) await checkGolden(c, model, port);
		if (protocols.includes("binary")) await checkBinary(c, model, port);
		const startup = ((Date.now() - t0) / 1000).toFixed(1);
		process.stdout.write(
			`  ${c.id} / ${model}: pid ${child.pid}, port ${port}, ready + golden check in ${startup} s\n`,
		);
		const bodyFile = join(OUT, `body-${model}.json`);
		await writeFile(bodyFile, body(golden(model).rows[0] as number[]));
		const bin = binaryBody(golden(model).rows[0] as number[]);
		const binFile = join(OUT, `body-${model}.bin`);
		await writeFile(binFile, bin.bytes);
		const url = `http://${HOST}:${port}/v2/models/${model}/infer`;
		const grpcPort = c.grpcPort?.(port, extra);
		const expect =
			c.labelOutput !== undefined ? golden(model).labels[0] : undefined;
		const drive = (p: Protocol, level: number, s: number) =>
			p === "rest"
				? wrk(url, bodyFile, level, s)
				: p === "binary"
					? wrk(url, binFile, level, s, bin.headerLength)
					: grpcLoad(grpcPort as number, model, level, s, expect);
		for (const protocol of protocols)
			for (const level of LEVELS) {
				await drive(protocol, level, WARMUP);
				const cpu0 = treeCpuTicks(child.pid as number);
				const busy0 = machineBusyTicks();
				const r = await drive(protocol, level, SECONDS);
				const cpu1 = treeCpuTicks(child.pid as number);
				const busy1 = machineBusyTicks();
				const windowS = r.duration_us / 1e6;
				const errors = r.connect + r.read + r.write + r.status + r.timeout;
				const row: Row = {
					model,
					contender: c.id,
					protocol,
					kind: c.kind,
					concurrency: level,
					rps: r.requests / (r.duration_us / 1e6),
					p50_ms: r.p50_us / 1000,
					p99_ms: r.p99_us / 1000,
					errors,
					requests: r.requests,
					cpu_us_per_req:
						r.requests > 0 ? (((cpu1 - cpu0) / CLK_TCK) * 1e6) / r.requests : 0,
					server_cores: (cpu1 - cpu0) / CLK_TCK / windowS,
					other_cores: (busy1 - busy0 - (cpu1 - cpu0)) / CLK_TCK / windowS,
				};
				if (c.kind === "mlship") {
					const rss = rssMib(child.pid as number);
					if (rss !== undefined) row.rss_mib = rss;
					const peak = rssMib(child.pid as number, "VmHWM");
					if (peak !== undefined) row.peak_rss_mib = peak;
				}
				if (c.id.startsWith("mlship-log")) {
					const l = await logCounters(port);
					row.log_written = l.written;
					row.log_dropped = l.dropped;
				}
				rows.push(row);
				process.stdout.write(
					`    ${protocol.padEnd(6)} c=${String(level).padStart(2)}  ${fmt0(row.rps).padStart(7)} req/s  p50 ${row.p50_ms.toFixed(2)} ms  p99 ${row.p99_ms.toFixed(2)} ms  errors ${errors}  server CPU ${row.cpu_us_per_req.toFixed(0)} µs/req (${row.server_cores.toFixed(2)} cores; others ${row.other_cores.toFixed(2)})\n`,
				);
			}
	} finally {
		await stop(child);
		log.end();
	}
	return rows;
}

interface Raw {
	model: ModelKey;
	us_per_call: number;
	calls_per_s: number;
	cpu_us_per_call: number;
}

/** The limit: in-process onnxruntime-node session.run on one row, 1 intra-op thread (mlship's session options). */
async function runRaw(model: ModelKey): Promise<Raw> {
	const bytes = readFileSync(
		join(ROOT, "test/fixtures/models", MODELS[model].fixture, "model.onnx"),
	);
	const session = await ort.InferenceSession.create(bytes, {
		intraOpNumThreads: 1,
		interOpNumThreads: 1,
		executionMode: "sequential",
		graphOptimizationLevel: "all",
	});
	const g = golden(model);
	const x = Float32Array.from(g.rows[0] as number[]);
	const feeds = () => ({
		float_input: new ort.Tensor("float32", x, [1, x.length]),
	});
	const first = await session.run(feeds());
	const labels = first.label?.data as BigInt64Array | undefined;
	const label = Number(labels?.[0]);
	if (label !== g.labels[0])
		throw new Error(`raw ${model}: label ${label}, golden ${g.labels[0]}`);
	for (let i = 0; i < 2000; i++) await session.run(feeds());
	let n = 0;
	const cpu0 = process.cpuUsage();
	const t0 = process.hrtime.bigint();
	const until = t0 + BigInt(Math.round(Math.min(3, SECONDS) * 1e9));
	let now = t0;
	while (now < until) {
		for (let i = 0; i < 200; i++) await session.run(feeds());
		n += 200;
		now = process.hrtime.bigint();
	}
	const cpu = process.cpuUsage(cpu0);
	await session.release();
	const us = Number(now - t0) / 1000 / n;
	return {
		model,
		us_per_call: us,
		calls_per_s: 1e6 / us,
		cpu_us_per_call: (cpu.user + cpu.system) / n,
	};
}

// ------------------------------------------------------------------------------------------ report

function fmt0(n: number): string {
	return Math.round(n).toLocaleString("en-US");
}
function f2(n: number): string {
	return n.toFixed(2);
}
function ratio(n: number): string {
	return `${n.toFixed(2)}×`;
}

function find(
	rows: Row[],
	model: ModelKey,
	contender: string,
	level: number,
	protocol: Protocol = "rest",
): Row | undefined {
	return rows.find(
		(r) =>
			r.model === model &&
			r.contender === contender &&
			r.concurrency === level &&
			r.protocol === protocol,
	);
}

/** The floor of a protocol at a level (http-floor for REST JSON and binary, grpc-floor for gRPC). */
function floorOf(
	rows: Row[],
	protocol: Protocol,
	level: number,
): Row | undefined {
	return rows.find(
		(r) =>
			r.kind === "floor" && r.protocol === protocol && r.concurrency === level,
	);
}

/** The MLServer row to compare with at a level: the variant with the highest req/s there. */
function bestMlserver(
	rows: Row[],
	model: ModelKey,
	level: number,
): Row | undefined {
	let best: Row | undefined;
	for (const r of rows)
		if (
			r.kind === "mlserver" &&
			r.model === model &&
			r.concurrency === level &&
			r.protocol === "rest"
		)
			if (!best || r.rps > best.rps) best = r;
	return best;
}

function table(rows: Row[]): string {
	const L: string[] = [];
	const hasMl = rows.some((r) => r.kind === "mlserver");
	L.push(
		`| model | contender | protocol | clients | req/s | p50 ms | p99 ms | errors | server CPU µs/req | server cores | other cores |${hasMl ? " req/s ÷ best MLServer | p99 ÷ its p99 |" : ""}`,
	);
	L.push(
		`|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|${hasMl ? "---:|---:|" : ""}`,
	);
	for (const r of rows) {
		const ml =
			r.kind === "floor" || r.protocol !== "rest"
				? undefined
				: bestMlserver(rows, r.model, r.concurrency);
		const extra = !hasMl
			? ""
			: ml
				? ` ${ratio(r.rps / ml.rps)} | ${ratio(r.p99_ms / ml.p99_ms)} |`
				: " | |";
		L.push(
			`| ${r.kind === "floor" ? "—" : r.model} | ${r.contender} | ${PROTOCOL_NAMES[r.protocol]} | ${r.concurrency} | ${fmt0(r.rps)} | ${f2(r.p50_ms)} | ${f2(r.p99_ms)} | ${r.errors} | ${r.cpu_us_per_req.toFixed(0)} | ${f2(r.server_cores)} | ${f2(r.other_cores)} |${extra}`,
		);
	}
	return L.join("\n");
}

function rawTable(raws: Raw[]): string {
	const L = [
		"| model | µs/call (wall) | calls/s | CPU µs/call |",
		"|---|---:|---:|---:|",
	];
	for (const r of raws)
		L.push(
			`| ${r.model} | ${r.us_per_call.toFixed(1)} | ${fmt0(r.calls_per_s)} | ${r.cpu_us_per_call.toFixed(1)} |`,
		);
	return L.join("\n");
}

/** Server CPU per request minus the raw call's CPU (and minus the bare HTTP floor), per model and level. */
function overheadTable(rows: Row[], raws: Raw[]): string {
	const L = [
		"| model | clients | raw CPU µs/call | batching off: CPU µs/req | overhead (− raw) | batching on: CPU µs/req | overhead (− raw) | http-floor CPU µs/req | batching off − raw − floor |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|",
	];
	for (const model of MODEL_KEYS) {
		const raw = raws.find((r) => r.model === model);
		if (!raw) continue;
		for (const level of LEVELS) {
			const off = find(rows, model, "mlship-nobatch", level);
			const on = find(rows, model, "mlship", level);
			const floor = floorOf(rows, "rest", level);
			if (!off && !on) continue;
			const c = (r: Row | undefined) => (r ? r.cpu_us_per_req.toFixed(0) : "—");
			const o = (r: Row | undefined) =>
				r ? (r.cpu_us_per_req - raw.cpu_us_per_call).toFixed(0) : "—";
			const beyond =
				off && floor
					? (
							off.cpu_us_per_req -
							raw.cpu_us_per_call -
							floor.cpu_us_per_req
						).toFixed(0)
					: "—";
			L.push(
				`| ${model} | ${level} | ${raw.cpu_us_per_call.toFixed(1)} | ${c(off)} | ${o(off)} | ${c(on)} | ${o(on)} | ${c(floor)} | ${beyond} |`,
			);
		}
	}
	return L.join("\n");
}

/** The payload log's cost: each log contender beside mlship without one, at each level. */
function logTable(rows: Row[]): string {
	const L = [
		"| model | contender | clients | req/s | ÷ mlship (no log) | p99 ms | server CPU µs/req | ÷ mlship (no log) | RSS MiB | peak RSS MiB | records written | records dropped |",
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	];
	for (const r of rows) {
		if (r.kind !== "mlship" || r.contender === "mlship-nobatch") continue;
		const base = find(rows, r.model, "mlship", r.concurrency);
		const n = (v: number | undefined) => (v === undefined ? "—" : fmt0(v));
		L.push(
			`| ${r.model} | ${r.contender} | ${r.concurrency} | ${fmt0(r.rps)} | ${base && r !== base ? ratio(r.rps / base.rps) : "—"} | ${f2(r.p99_ms)} | ${r.cpu_us_per_req.toFixed(0)} | ${base && r !== base ? ratio(r.cpu_us_per_req / base.cpu_us_per_req) : "—"} | ${r.rss_mib === undefined ? "—" : r.rss_mib.toFixed(0)} | ${r.peak_rss_mib === undefined ? "—" : r.peak_rss_mib.toFixed(0)} | ${n(r.log_written)} | ${n(r.log_dropped)} |`,
		);
	}
	return L.join("\n");
}

/** The payload log's targets: ≤ 10% of throughput at 100% sampling; bounded RSS when its destination is down. */
function logVerdicts(rows: Row[]): string[] {
	const lines: string[] = [];
	const cost: string[] = [];
	let met = 0;
	let n = 0;
	for (const model of MODEL_KEYS)
		for (const level of LEVELS) {
			const on = find(rows, model, "mlship-log", level);
			const off = find(rows, model, "mlship", level);
			if (!on || !off) continue;
			n++;
			const ok = on.rps >= 0.9 * off.rps;
			if (ok) met++;
			cost.push(
				`${model}@${level}: ${fmt0(on.rps)} vs ${fmt0(off.rps)} req/s (${((1 - on.rps / off.rps) * 100).toFixed(1)}% less; CPU ${on.cpu_us_per_req.toFixed(0)} vs ${off.cpu_us_per_req.toFixed(0)} µs/req) ${ok ? "✓" : "✗"}`,
			);
		}
	if (n > 0)
		lines.push(
			`- **Payload log at 100% sampling costs ≤ 10% of throughput: ${met === n ? "met" : "missed"}** (${met} of ${n} model × level cells; mlship-log vs mlship in the same run) — ${cost.join("; ")}.`,
		);
	// Peak RSS with and without the log: each server's VmHWM after its last level (its peak over the whole run).
	for (const model of MODEL_KEYS) {
		const peaks = ["mlship", "mlship-log", "mlship-log-down"].flatMap((c) => {
			const last = rows
				.filter((r) => r.model === model && r.contender === c)
				.at(-1);
			return last?.peak_rss_mib === undefined
				? []
				: [`${c} ${last.peak_rss_mib.toFixed(0)} MiB`];
		});
		if (peaks.length > 1)
			lines.push(
				`- **Peak RSS with and without the payload log (${model})**, each server's VmHWM over its whole run: ${peaks.join(", ")}.`,
			);
	}
	for (const model of MODEL_KEYS) {
		const down = rows.filter(
			(r) => r.model === model && r.contender === "mlship-log-down",
		);
		const first = down[0];
		const last = down.at(-1);
		if (!first || !last || first.rss_mib === undefined) continue;
		const overload = last.log_dropped ?? 0;
		lines.push(
			`- **Log destination down: drops with a count, RSS bounded (${model})** — every record beyond the 10 000-record queue was dropped and counted (${fmt0(last.log_dropped ?? 0)} dropped, ${fmt0(last.log_written ?? 0)} written by the end; the offered load is unbounded overload for the log, more than 3×); RSS after each level: ${down.map((r) => `${r.concurrency} clients ${r.rss_mib?.toFixed(0)} MiB`).join(", ")}${overload > 0 ? "" : " (nothing was dropped: the run was too short to fill the queue)"}.`,
		);
	}
	return lines;
}

/**
 * Issue 17's serve target, per protocol: mlship's server CPU per request (default settings, batching on) against
 * (its protocol's floor + the raw call) in the same run; the target is ≤ 1.5×.
 */
function floorTable(rows: Row[], raws: Raw[]): string {
	const L = [
		"| model | protocol | clients | mlship CPU µs/req | floor CPU µs/req | raw CPU µs/call | mlship ÷ (floor + raw) | req/s mlship ÷ floor | ≤ 1.5× |",
		"|---|---|---:|---:|---:|---:|---:|---:|---|",
	];
	for (const model of MODEL_KEYS) {
		const raw = raws.find((r) => r.model === model);
		if (!raw) continue;
		for (const protocol of PROTOCOLS)
			for (const level of LEVELS) {
				const m = find(rows, model, "mlship", level, protocol);
				const f = floorOf(rows, protocol, level);
				if (!m || !f) continue;
				const x = m.cpu_us_per_req / (f.cpu_us_per_req + raw.cpu_us_per_call);
				L.push(
					`| ${model} | ${PROTOCOL_NAMES[protocol]} | ${level} | ${m.cpu_us_per_req.toFixed(0)} | ${f.cpu_us_per_req.toFixed(0)} | ${raw.cpu_us_per_call.toFixed(1)} | ${ratio(x)} | ${ratio(m.rps / f.rps)} | ${x <= 1.5 ? "✓" : "✗"} |`,
				);
			}
	}
	return L.join("\n");
}

function verdicts(rows: Row[], raws: Raw[]): string[] {
	const lines: string[] = [];
	// 1. >= 3x MLServer's throughput at equal or better p99 (vs MLServer's best variant at each level)
	{
		const parts: string[] = [];
		let met = 0;
		let n = 0;
		for (const model of MODEL_KEYS)
			for (const level of LEVELS) {
				const m = find(rows, model, "mlship", level);
				const s = bestMlserver(rows, model, level);
				if (!m || !s) continue;
				const ok = m.rps >= 3 * s.rps && m.p99_ms <= s.p99_ms;
				n++;
				if (ok) met++;
				parts.push(
					`${model}@${level}: ${ratio(m.rps / s.rps)} req/s (vs ${s.contender}), p99 ${f2(m.p99_ms)} vs ${f2(s.p99_ms)} ms ${ok ? "✓" : "✗"}`,
				);
			}
		if (n > 0)
			lines.push(
				`- **≥ 3× MLServer's throughput at equal or better p99: ${met === n ? "met" : "missed"}** (${met} of ${n} model × level cells; mlship with batching on vs MLServer's best variant at each level) — ${parts.join("; ")}.`,
			);
	}
	// 2. server overhead per request <= 50 µs CPU (batching off: one session.run per request, like the raw call)
	{
		const parts: string[] = [];
		let ok = true;
		let n = 0;
		const top = LEVELS[LEVELS.length - 1] as number;
		for (const model of MODEL_KEYS) {
			const raw = raws.find((r) => r.model === model);
			const off = find(rows, model, "mlship-nobatch", top);
			const on = find(rows, model, "mlship", top);
			if (!raw || !off) continue;
			n++;
			const o = off.cpu_us_per_req - raw.cpu_us_per_call;
			if (o > 50) ok = false;
			parts.push(
				`${model}: ${off.cpu_us_per_req.toFixed(0)} − ${raw.cpu_us_per_call.toFixed(0)} = ${o.toFixed(0)} µs${on ? ` (batching on: ${(on.cpu_us_per_req - raw.cpu_us_per_call).toFixed(0)} µs)` : ""}`,
			);
		}
		const floor = floorOf(rows, "rest", top);
		if (n > 0)
			lines.push(
				`- **Server overhead ≤ 50 µs CPU per request (server CPU/request with batching off − raw session.run CPU/call, ${top} clients): ${ok ? "met" : "missed"}** — ${parts.join("; ")}.${floor ? ` For scale, a bare node:http server with no model costs ${floor.cpu_us_per_req.toFixed(0)} µs CPU per request here (http-floor).` : ""}`,
			);
	}
	// 3. batching on >= 4x batching off, MLP at the top level
	{
		const top = LEVELS[LEVELS.length - 1] as number;
		const on = find(rows, "mlp", "mlship", top);
		const off = find(rows, "mlp", "mlship-nobatch", top);
		if (on && off)
			lines.push(
				`- **Adaptive batching ≥ 4× batching off (MLP, ${top} clients): ${on.rps >= 4 * off.rps ? "met" : "missed"}** — ${fmt0(on.rps)} vs ${fmt0(off.rps)} req/s = ${ratio(on.rps / off.rps)} (p99 ${f2(on.p99_ms)} vs ${f2(off.p99_ms)} ms).`,
			);
	}
	return lines;
}

function machineLine(): string {
	const py = existsSync(PY)
		? execFileSync(PY, ["--version"], { encoding: "utf8" })
				.trim()
				.replace("Python ", "")
		: "not used";
	// `wrk --version` prints its banner and usage, then exits 1
	const wrkBanner = spawnSync("wrk", ["--version"], { encoding: "utf8" });
	const wrkVersion =
		`${wrkBanner.stdout}${wrkBanner.stderr}`.split("\n")[0]?.split(" ")[1] ??
		"?";
	return machine(`Python ${py}, wrk ${wrkVersion}`);
}

function commandLine(): string {
	const a = process.argv.slice(2).join(" ");
	return `node bench/serve/run.ts${a ? ` ${a}` : ""}`;
}

// ------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
	const tStart = Date.now();
	const load = loadavg()[0] ?? 0;
	if (load > 0.5)
		process.stdout.write(
			`bench/serve: WARNING load average ${load.toFixed(2)} before start: other work on this machine will skew the figures\n`,
		);
	const list = contenders();
	// Python (MLServer, FastAPI) only when a Python contender runs; else the fixtures' golden rows serve.
	const python = list.some(
		(c) => c.kind === "mlserver" || c.kind === "fastapi",
	);
	if (python) {
		process.stdout.write("bench/serve: setup.sh\n");
		execFileSync("bash", [join(HERE, "setup.sh")], { stdio: "inherit" });
		execFileSync(PY, [join(HERE, "train_models.py")], { stdio: "inherit" });
	}
	if (list.some((c) => c.id === "mlship-log"))
		await rm(join(OUT, "payloads"), { recursive: true, force: true });
	const machineText = machineLine();

	process.stdout.write(
		"raw onnxruntime-node limit (1 row per call, 1 thread):\n",
	);
	const raws: Raw[] = [];
	for (const model of MODEL_KEYS) {
		const raw = await runRaw(model);
		raws.push(raw);
		process.stdout.write(
			`  ${model}: ${raw.us_per_call.toFixed(1)} µs/call, ${fmt0(raw.calls_per_s)} calls/s, ${raw.cpu_us_per_call.toFixed(1)} µs CPU/call\n`,
		);
	}

	const rows: Row[] = [];
	for (const model of MODEL_KEYS) {
		process.stdout.write(`model ${model} (${MODELS[model].dataset}):\n`);
		for (const c of list)
			if (!c.once || model === MODEL_KEYS[0])
				rows.push(...(await runContender(c, model)));
	}

	const tbl = table(rows);
	const raw = rawTable(raws);
	const over = overheadTable(rows, raws);
	const floors = floorTable(rows, raws);
	const v = verdicts(rows, raws);
	const logged = rows.some((r) => r.contender.startsWith("mlship-log"));
	const logTbl = logged ? logTable(rows) : "";
	const logV = logged ? logVerdicts(rows) : [];
	const minutes = ((Date.now() - tStart) / 60_000).toFixed(1);
	process.stdout.write(
		`\n${tbl}\n\n${raw}\n\n${over}\n\n${floors}\n\n${v.join("\n")}\n\n${logTbl}\n\n${logV.join("\n")}\n\n(${minutes} min)\n`,
	);
	await writeFile(
		join(OUT, args.tune ? "tune.json" : "results.json"),
		`${JSON.stringify({ rows, raws, argv: process.argv.slice(2) }, null, 2)}\n`,
	);
	if (args.tune || args["no-results"]) return;
	if (logged && !python) {
		// A payload-log run (mlship contenders only) has a section of its own: the full comparison stays as it was.
		await writeResults(
			"serve: payload log",
			[
				"## serve: payload log",
				"",
				"The payload log's cost, side by side in one `bench/serve` run: the same one-row REST `infer` load (`wrk -t1 -cN`, keep-alive, golden row 0) against `mlship serve` without a payload log, with one at 100% sampling to a Parquet directory, and with one whose destination (PostgreSQL) is down. RSS is the server process's resident memory after each level; written/dropped are the log's own counters (`mlship_payload_log_written_total`, `mlship_payload_log_dropped_total`) at the end of each level.",
				"",
				`- date: ${new Date().toISOString().slice(0, 10)}`,
				`- machine: ${machineText}. **Shared**: other engineers' builds and tests ran on the same 2 cores during this run, so absolute figures are low and noisy; the ratios of neighbouring rows are what this measures.`,
				`- command: \`${commandLine()}\` (${SECONDS} s measured per level after a ${WARMUP} s warm-up; whole run ${minutes} min)`,
				`- contenders: ${list.map((c) => `\`${c.id}\`: ${c.describe}`).join("; ")}`,
				"",
				logTbl,
				"",
				...logV,
				"",
			].join("\n"),
		);
		process.stdout.write(
			"wrote the ## serve: payload log section of bench/RESULTS.md\n",
		);
		return;
	}

	const described = list.map((c) => `\`${c.id}\`: ${c.describe}`).join("; ");
	const section = [
		"## serve",
		"",
		"Requests/s and latency of one-row Open Inference Protocol v2 REST calls (`POST /v2/models/{m}/infer`, JSON, keep-alive) at fixed client concurrency, generated by `wrk -t1 -cN` (one load-generator thread on the same 2-core machine: every contender shares the cores with it). Every server gets the same body (golden row 0, FP32) and must first return the golden labels of the first 16 golden rows. MLServer and FastAPI serve the sklearn models re-trained by `bench/serve/train_models.py` with the fixtures' code, seed and scikit-learn 1.9.1 (labels and probabilities equal to the fixtures' golden outputs on all golden rows); mlship serves the committed ONNX bundles of the same models. MLServer answers its default output (`predict`, the label only); mlship returns label + probabilities, FastAPI label + probabilities. Server CPU µs/req = utime+stime of the server process and all its descendants during the measured window ÷ requests; server cores / other cores = CPU used by the server / by everything else (wrk, and any other load on the machine) during the window. MLServer ratios compare with the better of its two variants at each level (`mlserver` without, `mlserver-ab` with its adaptive batching; see bench/README.md for how they were chosen).",
		"",
		`- date: ${new Date().toISOString().slice(0, 10)}`,
		`- machine: ${machineText}`,
		`- command: \`${commandLine()}\` (${SECONDS} s measured per level after a ${WARMUP} s warm-up; whole run ${minutes} min)`,
		`- contenders: ${described}`,
		"",
		tbl,
		"",
		"The limit — raw onnxruntime-node `session.run` in-process on the same row (1 intra-op thread, mlship's session options, no HTTP, one call at a time):",
		"",
		raw,
		"",
		"mlship's CPU per request beyond the model call (overhead = server CPU µs/req − raw CPU µs/call):",
		"",
		over,
		"",
		"Server CPU per request against each protocol's floor (http-floor for REST JSON and binary, grpc-floor for gRPC; load from wrk for REST and from bench/serve/grpc-load.ts, a grpc-js client on one channel, for gRPC) plus the raw call — issue 17's target is ≤ 1.5× at 1, 8 and 64 clients:",
		"",
		floors,
		"",
		"Conclusion per target:",
		"",
		...v,
		"",
		...(logged ? ["Payload log:", "", logTbl, "", ...logV, ""] : []),
	].join("\n");
	await writeResults("serve", section);
	process.stdout.write("wrote the ## serve section of bench/RESULTS.md\n");
}

main().catch((e: unknown) => {
	stopAllSync();
	process.stderr.write(
		`bench/serve failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
	);
	process.exit(1);
});
