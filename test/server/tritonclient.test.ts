// Triton's own Python client (tritonclient) against `mlship serve`: HTTP JSON, HTTP binary and gRPC, every fixture.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import { tensorToJson } from "../../src/codec/tensor.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { resolveSettings } from "../../src/server/settings.ts";
import {
	assertOutputMatches,
	bundleDir,
	FIXTURES,
	golden,
	REPO,
} from "../helpers/fixtures.ts";
import { assertTritonclient, TRITON_PYTHON } from "../helpers/tritonclient.ts";

const PYTHON = TRITON_PYTHON;
let server: RunningServer;
let dir: string;

before(async () => {
	// scripts/setup installs the client; a missing venv is a failure here, never a skip.
	assertTritonclient();
	dir = await mkdtemp(join(tmpdir(), "mlship-tritonclient-"));
	server = await startServer(
		resolveSettings(
			{
				host: "127.0.0.1",
				http_port: 0,
				grpc_port: 0,
				log_level: "warn",
				models: FIXTURES.map((name) => ({ name, source: bundleDir(name) })),
			},
			undefined,
			{},
		),
	);
});
after(async () => {
	await server?.close();
	await rm(dir, { recursive: true, force: true });
});

it("tritonclient (HTTP JSON, HTTP binary, gRPC) gets the golden outputs of every fixture", async () => {
	const cases = [];
	for (const name of FIXTURES) {
		const b = await readBundle(bundleDir(name));
		const { tensors } = encodeRecords(
			planTable(b.manifest),
			golden(name).records,
		);
		cases.push({
			model: name,
			inputs: tensors.map(tensorToJson),
			outputs: Object.keys(golden(name).expected),
		});
	}
	const file = join(dir, "cases.json");
	await writeFile(file, JSON.stringify(cases));
	const p = spawn(PYTHON, [
		join(REPO, "tools/clients/tritonclient_check.py"),
		String(server.httpPort),
		String(server.grpcPort),
		file,
	]);
	let out = "";
	let err = "";
	p.stdout.on("data", (d) => {
		out += d;
	});
	p.stderr.on("data", (d) => {
		err += d;
	});
	const code = await new Promise<number | null>((r) => p.on("exit", r));
	assert.equal(code, 0, err);
	const lines = out
		.trim()
		.split("\n")
		.map((l) => JSON.parse(l));
	const health = lines.find((l) => l.check === "health");
	assert.deepEqual(
		{ ...health, extensions: [...health.extensions].sort() },
		{
			check: "health",
			http_live: true,
			http_ready: true,
			grpc_live: true,
			grpc_ready: true,
			extensions: ["binary_tensor_data", "model_repository"],
		},
	);
	const infers = lines.filter((l) => l.check === "infer");
	assert.equal(infers.length, FIXTURES.length * 3);
	for (const l of infers) {
		const g = golden(l.model);
		for (const [o, want] of Object.entries(g.expected))
			assertOutputMatches(`${l.model}/${l.transport}`, o, l.outputs[o], want);
	}
	for (const m of lines.filter((l) => l.check === "metadata")) {
		assert.equal(m.http_platform, "onnx_onnxv1");
		assert.equal(m.grpc_platform, "onnx_onnxv1");
		assert.ok(m.http_ready && m.grpc_ready);
	}
	const unknown = lines.filter((l) => l.check === "unknown");
	assert.equal(unknown.length, 2);
	for (const u of unknown)
		assert.match(u.error, /unknown model 'no-such-model'/);
});
