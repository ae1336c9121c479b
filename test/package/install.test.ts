// The packed package in a fresh app (issue 20): `npm pack`, then under every supported Node major an offline install
// into a new app, and there the library (import, loadModel, predict, the subpath exports), the installed `mlship`
// bin run from another directory (--help, predict, models, serve), and a TypeScript consumer checked with tsc.
// Each test names its Node version; each assertion names the step.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
	cpSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO } from "../helpers/fixtures.ts";
import {
	cleanEnv,
	type NodeBinary,
	npmCli,
	type Run,
	run,
	supportedNodes,
} from "./helpers.ts";

interface PackedFile {
	path: string;
	size: number;
}
interface Packed {
	filename: string;
	size: number;
	unpackedSize: number;
	files: PackedFile[];
}

const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
	version: string;
	license: string;
	bin: Record<string, string>;
	engines: Record<string, string>;
	dependencies: Record<string, string>;
};
const work = mkdtempSync(join(tmpdir(), "mlship-package-"));
after(() => rmSync(work, { recursive: true, force: true }));
const devNode: NodeBinary = {
	version: process.versions.node,
	major: Number(process.versions.node.split(".")[0]),
	path: process.execPath,
};

let packed: Packed;
let tgz: string;
const nodes = supportedNodes();
const installs = new Map<string, Promise<Run>>();
const appDir = (node: NodeBinary) => join(work, `app-${node.version}`);

/** `npm ci --offline` of a fresh app under `node`, skipping onnxruntime-node's GPU download as the README says. */
function install(node: NodeBinary): Promise<Run> {
	makeApp(appDir(node));
	return run(
		node.path,
		[npmCli(), "ci", "--offline", "--no-audit", "--no-fund"],
		{
			cwd: appDir(node),
			env: cleanEnv(node, { ONNXRUNTIME_NODE_INSTALL: "skip" }),
			timeoutMs: 300_000,
		},
	);
}

before(async () => {
	const r = await run(
		process.execPath,
		[npmCli(), "pack", "--json", "--pack-destination", work],
		{ cwd: REPO, env: cleanEnv(devNode), timeoutMs: 300_000 },
	);
	assert.equal(r.code, 0, `npm pack failed: ${r.stderr}`);
	packed = (JSON.parse(r.stdout) as Packed[])[0] as Packed;
	tgz = join(work, packed.filename);
	// All majors install at once (mostly file I/O); each describe below waits for its own.
	for (const node of nodes) installs.set(node.version, install(node));
});

test("npm pack: built JS, types and runtime assets; no sources, tests, fixtures, benches or tools", (t) => {
	const paths = packed.files.map((f) => f.path);
	for (const want of [
		"package.json",
		"README.md",
		"bin/mlship.js",
		"bin/node-version.js",
		"dist/index.js",
		"dist/index.d.ts",
		"dist/cli/main.js",
		"dist/server/grpc/grpc_service.proto",
		"examples/iris/mlship.yaml",
		"examples/iris/model.onnx",
		"examples/iris.csv",
		...["server", "stream", "batch", "sql"].flatMap((s) => [
			`dist/${s}/index.js`,
			`dist/${s}/index.d.ts`,
		]),
	])
		assert.ok(paths.includes(want), `pack: ${want} is missing`);
	const stray = paths.filter(
		(p) =>
			/^(src|test|bench|tools|scripts|\.ci)\//.test(p) ||
			(p.endsWith(".ts") && !p.endsWith(".d.ts")) ||
			p.endsWith(".map"),
	);
	assert.deepEqual(stray, [], "pack: files that must not ship");
	t.diagnostic(
		`${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${paths.length} files`,
	);
});

test("npm pack: everything dist/ imports (JS and .d.ts) is a dependency, never a devDependency, or a Node builtin", () => {
	const builtins = new Set(builtinModules);
	const root = join(work, "unpacked");
	rmSync(root, { recursive: true, force: true });
	mkdirSync(root);
	// Read the files from the tarball itself, not the working tree.
	const tar = spawnSync("tar", ["-xzf", tgz, "-C", root], { encoding: "utf8" });
	assert.equal(
		tar.status,
		0,
		`pack: tar could not read the tarball: ${tar.stderr}`,
	);
	const missing = new Set<string>();
	let seen = 0;
	for (const f of packed.files) {
		if (!f.path.endsWith(".js") && !f.path.endsWith(".d.ts")) continue;
		const text = readFileSync(join(root, "package", f.path), "utf8");
		for (const m of text.matchAll(IMPORTS)) {
			const spec = (m[2] ?? m[4] ?? m[6]) as string;
			if (/^[./]/.test(spec)) continue;
			seen++;
			if (spec.startsWith("node:") || builtins.has(spec)) continue;
			const name = spec.startsWith("@")
				? spec.split("/").slice(0, 2).join("/")
				: (spec.split("/")[0] as string);
			if (name !== "mlship" && !(name in pkg.dependencies))
				missing.add(`${name} (${f.path})`);
		}
	}
	assert.ok(
		seen > 50,
		`pack: the import scan found only ${seen} package imports`,
	);
	assert.deepEqual([...missing], [], "pack: imports that are not dependencies");
});

/** Static `import … from "x"` / `export … from "x"`, bare `import "x"`, and dynamic `import("x")`. */
const IMPORTS =
	/^\s*(?:import|export)\b[^'"]*?\bfrom\s*(["'])([^"']+)\1|^\s*import\s*(["'])([^"']+)\3|\bimport\(\s*(["'])([^"']+)\5\s*\)/gm;

/**
 * A fresh app depending on the tarball, with a lockfile taken from ours (the same dependency tree, without the
 * devDependencies), so `npm ci --offline` installs from npm's cache, which the repository's `npm ci` filled.
 */
function makeApp(dir: string): void {
	mkdirSync(dir, { recursive: true });
	cpSync(tgz, join(dir, basename(tgz)));
	const spec = `file:${basename(tgz)}`;
	writeFileSync(
		join(dir, "package.json"),
		JSON.stringify(
			{
				name: "app",
				private: true,
				type: "module",
				dependencies: { mlship: spec },
			},
			null,
			2,
		),
	);
	const lock = JSON.parse(
		readFileSync(join(REPO, "package-lock.json"), "utf8"),
	) as { packages: Record<string, { dev?: boolean }> };
	const packages: Record<string, unknown> = {
		"": { name: "app", dependencies: { mlship: spec } },
		"node_modules/mlship": {
			version: pkg.version,
			resolved: spec,
			integrity: `sha512-${createHash("sha512").update(readFileSync(tgz)).digest("base64")}`,
			license: pkg.license,
			dependencies: pkg.dependencies,
			bin: pkg.bin,
			engines: pkg.engines,
		},
	};
	for (const [path, entry] of Object.entries(lock.packages))
		if (path !== "" && !entry.dev) packages[path] = entry;
	writeFileSync(
		join(dir, "package-lock.json"),
		JSON.stringify(
			{ name: "app", lockfileVersion: 3, requires: true, packages },
			null,
			2,
		),
	);
}

const APP_JS = `
import { loadModel } from "mlship";
import { fileURLToPath } from "node:url";
const m = await loadModel(fileURLToPath(new URL("./node_modules/mlship/examples/iris", import.meta.url)));
const rows = await m.predict([
	{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
	{ sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 },
]);
await m.close();
const subpaths = {};
for (const s of ["server", "stream", "batch", "sql"]) subpaths[s] = Object.keys(await import("mlship/" + s)).sort();
console.log(JSON.stringify({ node: process.versions.node, rows, subpaths }));
`;

const CONSUMER_TS = `
import { loadModel, MlshipError, type Model, type Row } from "mlship";
import { registerDuckDBFunctions, registerSqliteFunctions } from "mlship/sql";
import { runBatch, runPending } from "mlship/batch";
import { type RunningServer, resolveSettings, startServer } from "mlship/server";
import { runStream } from "mlship/stream";

export async function main(): Promise<number> {
	const m: Model = await loadModel("./iris");
	const rows: Row[] = await m.predict([{ sepal_length: 5.1 }]);
	const cols: Record<string, unknown[]> = await m.predict({ sepal_length: [5.1] });
	// @ts-expect-error rows in, rows out: not a number (fails if predict's result types were lost to any)
	const wrong: number = await m.predict([{ sepal_length: 5.1 }]);
	const server: RunningServer = await startServer(
		resolveSettings({ models: [{ name: "iris", source: "./iris" }], http_port: 0 }),
	);
	// @ts-expect-error the port is a number
	const port: string = server.httpPort;
	await server.close();
	const err = new MlshipError("MLSHIP_INVALID_INPUT", "x");
	void [registerDuckDBFunctions, registerSqliteFunctions, runBatch, runPending, runStream, wrong, port, err.code];
	return rows.length + Object.keys(cols).length;
}
`;

const IRIS_INFER = {
	inputs: [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [1, 4],
			data: [6.7, 3.0, 5.2, 2.3],
		},
	],
};

for (const node of nodes) {
	describe(`Node ${node.version}`, () => {
		const app = appDir(node);
		const elsewhere = join(work, `elsewhere-${node.version}`);
		const env = cleanEnv(node);
		const bin = join(app, "node_modules", ".bin", "mlship");
		const where = (step: string) => `Node ${node.version}: ${step}`;

		before(async () => {
			const r = (await installs.get(node.version)) as Run;
			assert.equal(r.code, 0, `${where("offline install")}: ${r.stderr}`);
			assert.doesNotMatch(
				r.stderr,
				/EBADENGINE/,
				`${where("offline install")}: an engines range excludes this Node`,
			);
			mkdirSync(elsewhere);
			cpSync(join(REPO, "examples", "iris"), join(elsewhere, "iris"), {
				recursive: true,
			});
			cpSync(join(REPO, "examples", "iris.csv"), join(elsewhere, "iris.csv"));
		});

		test(`Node ${node.version}: import "mlship", loadModel + predict, and the subpath exports`, async () => {
			writeFileSync(join(app, "app.mjs"), APP_JS);
			const r = await run(node.path, ["app.mjs"], { cwd: app, env });
			assert.equal(r.code, 0, `${where("import + predict")}: ${r.stderr}`);
			const out = JSON.parse(r.stdout) as {
				node: string;
				rows: { label: string; probabilities: number[] }[];
				subpaths: Record<string, string[]>;
			};
			assert.equal(out.node, node.version, where("the Node that ran"));
			assert.deepEqual(
				out.rows.map((x) => x.label),
				["setosa", "virginica"],
				where("predict"),
			);
			for (const row of out.rows)
				assert.ok(
					Math.abs(row.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5,
					where("probabilities sum to 1"),
				);
			assert.deepEqual(
				out.subpaths,
				{
					server: ["resolveSettings", "startServer"],
					stream: ["runStream"],
					batch: ["runBatch", "runPending"],
					sql: ["registerDuckDBFunctions", "registerSqliteFunctions"],
				},
				where("subpath exports"),
			);
		});

		test(`Node ${node.version}: the installed bin from another directory (--help, predict, models, serve)`, async () => {
			const cli = (...args: string[]) =>
				run(bin, args, { cwd: elsewhere, env });
			const help = await cli("--help");
			assert.equal(help.code, 0, `${where("mlship --help")}: ${help.stderr}`);
			for (const c of ["bundle", "models", "predict", "batch", "serve", "sql"])
				assert.match(
					help.stdout,
					new RegExp(`\\n  ${c} `),
					where(`--help lists ${c}`),
				);
			assert.equal(help.stderr, "", where("--help prints no warnings"));

			// Paths are the caller's: relative to this directory, not the package's.
			const p = await cli(
				"predict",
				"-m",
				"iris",
				"-i",
				"iris.csv",
				"-o",
				"p.csv",
				"--json",
			);
			assert.equal(p.code, 0, `${where("mlship predict")}: ${p.stderr}`);
			assert.equal(p.stderr, "", where("predict prints no warnings"));
			assert.equal(
				(JSON.parse(p.stdout) as { rows_scored: number }).rows_scored,
				38,
				where("predict rows"),
			);
			assert.equal(
				readFileSync(join(elsewhere, "p.csv"), "utf8").trim().split("\n")
					.length,
				39,
				where("predict output"),
			);

			// The default registry is ./.mlship/registry.db of the caller.
			const reg = await cli(
				"models",
				"register",
				"iris",
				"--alias",
				"production",
				"--json",
			);
			assert.equal(
				reg.code,
				0,
				`${where("mlship models register")}: ${reg.stderr}`,
			);
			// Node 22 flags node:sqlite experimental on every use; the CLI keeps that warning out of its output.
			assert.equal(reg.stderr, "", where("models register prints no warnings"));
			assert.ok(
				existsSync(join(elsewhere, ".mlship", "registry.db")),
				where("default registry in the caller's directory"),
			);
			const byRef = await cli(
				"predict",
				"-m",
				"iris-logreg@production",
				"-i",
				"iris.csv",
				"-o",
				"q.csv",
				"--json",
			);
			assert.equal(
				byRef.code,
				0,
				`${where("mlship predict name@alias")}: ${byRef.stderr}`,
			);
			assert.equal(
				(JSON.parse(byRef.stdout) as { version: number }).version,
				1,
				where("predict from the registry"),
			);

			await serveOnce(bin, elsewhere, env, where);
		});

		test(`Node ${node.version}: a TypeScript app (moduleResolution nodenext) type-checks against the .d.ts`, async () => {
			writeFileSync(join(app, "consumer.ts"), CONSUMER_TS);
			writeFileSync(
				join(app, "tsconfig.json"),
				JSON.stringify({
					compilerOptions: {
						target: "es2023",
						module: "nodenext",
						moduleResolution: "nodenext",
						strict: true,
						noEmit: true,
						// As most apps set it; what it would hide in our .d.ts, the import scan above checks.
						skipLibCheck: true,
						types: ["node"],
					},
					files: ["consumer.ts"],
				}),
			);
			const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
			const r = await run(node.path, [tsc, "-p", "tsconfig.json"], {
				cwd: app,
				env,
			});
			assert.equal(r.code, 0, `${where("tsc")}: ${r.stdout}${r.stderr}`);
		});
	});
}

/** `mlship serve` of the registered model: ready, one inference over REST, then SIGTERM exits 0. */
async function serveOnce(
	bin: string,
	cwd: string,
	env: NodeJS.ProcessEnv,
	where: (step: string) => string,
): Promise<void> {
	const proc = spawn(
		bin,
		[
			"serve",
			"-m",
			"iris-logreg@production",
			"--host",
			"127.0.0.1",
			"--http-port",
			"0",
			"--grpc-port",
			"0",
		],
		{ cwd, env, stdio: ["ignore", "pipe", "pipe"] },
	);
	const exited = new Promise<number | null>((r) =>
		proc.on("exit", (c) => r(c)),
	);
	try {
		let out = "";
		let err = "";
		proc.stderr.on("data", (d) => {
			err += d;
		});
		const port = await new Promise<number>((resolve, reject) => {
			const timer = setTimeout(
				() =>
					reject(
						new Error(
							`${where("serve")}: not serving within 60 s: ${err}${out}`,
						),
					),
				60_000,
			);
			proc.stdout.on("data", (d) => {
				out += d;
				for (const line of out.split("\n")) {
					if (!line.startsWith("{")) continue;
					const j = JSON.parse(line) as { http?: unknown; grpc?: unknown };
					if (typeof j.http === "number" && typeof j.grpc === "number") {
						clearTimeout(timer);
						resolve(j.http);
					}
				}
			});
			void exited.then((c) =>
				reject(new Error(`${where("serve")}: exited ${c}: ${err}${out}`)),
			);
		});
		const base = `http://127.0.0.1:${port}`;
		assert.equal(
			(await fetch(`${base}/v2/health/ready`)).status,
			200,
			where("serve ready"),
		);
		const res = await fetch(`${base}/v2/models/iris-logreg/infer`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(IRIS_INFER),
		});
		assert.equal(res.status, 200, where("serve infer"));
		const body = (await res.json()) as {
			outputs: { name: string; data: unknown[] }[];
		};
		// The graph's own label output: the class index (virginica is class 2).
		assert.deepEqual(
			body.outputs.find((o) => o.name === "label")?.data,
			[2],
			where("serve infer label"),
		);
	} finally {
		proc.kill("SIGTERM");
	}
	assert.equal(await exited, 0, where("serve exits 0 on SIGTERM"));
}
