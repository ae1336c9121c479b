// Lean entry points (issue 10.5): `import "mlship"` and `mlship --help` load no server, broker client, database
// driver or DuckDB; those load when the pattern that needs them is used.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { REPO } from "../helpers/fixtures.ts";

/** The packages each pattern brings, which a plain import must not load. */
const HEAVY = [
	"fastify",
	"@grpc/grpc-js",
	"@grpc/proto-loader",
	"pg",
	"@duckdb/node-api",
	"ioredis",
	"@platformatic/kafka",
	"@nats-io/transport-node",
	"@nats-io/jetstream",
	// OpenTelemetry's SDK and exporter load only with --otlp-endpoint.
	"@opentelemetry/sdk-trace",
	"@opentelemetry/exporter-trace-otlp-http",
	"@opentelemetry/core",
	"@opentelemetry/resources",
];

const dir = mkdtempSync(join(tmpdir(), "mlship-lean-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// Records every package a module load resolves into, and writes the list when the process exits.
const HOOK = (out: string) => `
import { registerHooks } from "node:module";
import { writeFileSync } from "node:fs";
const seen = new Set();
registerHooks({ resolve(specifier, context, next) {
	const r = next(specifier, context);
	const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
	if (m) seen.add(m[1]);
	return r;
} });
process.on("exit", () => writeFileSync(${JSON.stringify(out)}, JSON.stringify([...seen].sort())));
`;

let runs = 0;
/** Runs `node ...args` in a child with the hook; returns the packages it loaded. */
function loadedPackages(args: string[]): string[] {
	const out = join(dir, `loaded-${runs++}.json`);
	const hook = `data:text/javascript,${encodeURIComponent(HOOK(out))}`;
	const r = spawnSync(process.execPath, ["--import", hook, ...args], {
		cwd: REPO,
		encoding: "utf8",
	});
	assert.equal(r.status, 0, `node ${args.join(" ")} failed: ${r.stderr}`);
	return JSON.parse(readFileSync(out, "utf8")) as string[];
}

const importOf = (path: string) => [
	"--input-type=module",
	"-e",
	`await import(${JSON.stringify(pathToFileURL(join(REPO, path)).href)});`,
];

test('import "mlship" loads no server, broker client, database driver, DuckDB or onnxruntime', () => {
	const loaded = loadedPackages(importOf("src/index.ts"));
	assert.deepEqual(
		loaded.filter((p) => [...HEAVY, "onnxruntime-node"].includes(p)),
		[],
		`loaded: ${loaded.join(", ")}`,
	);
});

test("mlship --help loads none of them, nor onnxruntime", () => {
	const loaded = loadedPackages(["src/cli/main.ts", "--help"]);
	assert.deepEqual(
		loaded.filter((p) => [...HEAVY, "onnxruntime-node"].includes(p)),
		[],
		`loaded: ${loaded.join(", ")}`,
	);
	assert.ok(loaded.includes("commander"), "the hook saw the CLI's imports");
});

test('"mlship/stream" loads no HTTP or gRPC server', () => {
	const loaded = loadedPackages(importOf("src/stream/index.ts"));
	assert.deepEqual(
		loaded.filter((p) =>
			["fastify", "@grpc/grpc-js", "@grpc/proto-loader"].includes(p),
		),
		[],
		`loaded: ${loaded.join(", ")}`,
	);
});

test("the hook sees a heavy package when one is loaded (mlship/sql brings DuckDB)", () => {
	assert.ok(
		loadedPackages(importOf("src/sql/index.ts")).includes("@duckdb/node-api"),
	);
});
