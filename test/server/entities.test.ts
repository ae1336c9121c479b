// Per-entity families through the transports: REST header and feature, gRPC metadata, and `mlship serve --entity-key`.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { resolveSettings } from "../../src/server/settings.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { serve } from "../helpers/serve-process.ts";
import { goldenTensors } from "../helpers/server.ts";
import { InferenceClient, toContents } from "./grpc/client.ts";

let dir: string;
let registry: string;
let store: ModelStore;
let server: RunningServer;
const g = golden("iris-logreg");

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-ent-srv-"));
	registry = `sqlite:${join(dir, "r.db")}`;
	store = await openRegistry(registry);
	const b = await readBundle(bundleDir("iris-logreg"));
	await store.register(b, { name: "price" }); // v1 default
	await store.register(b, { name: "price", entity: "berlin" }); // v2
	server = await startServer(
		resolveSettings(
			{
				host: "127.0.0.1",
				http_port: 0,
				grpc_port: 0,
				log_level: "silent",
				registry,
				lazy: true,
				memory_budget: "64MiB",
				models: [{ name: "price", source: "price", entity_key: "city" }],
			},
			undefined,
			{},
		),
	);
});
after(async () => {
	await server?.close();
	await store?.close();
	await rm(dir, { recursive: true, force: true });
});

const base = () => `http://127.0.0.1:${server.httpPort}`;

it("REST infer names the entity with the x-mlship-entity header; the answer says which model served", async () => {
	const inputs = (await goldenTensors("iris-logreg")).map((t) => ({
		name: t.name,
		datatype: t.datatype,
		shape: t.shape,
		data: Array.from(t.data as ArrayLike<number>),
	}));
	const ask = async (entity?: string) => {
		const r = await fetch(`${base()}/v2/models/price/infer`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				...(entity ? { "x-mlship-entity": entity } : {}),
			},
			body: JSON.stringify({ inputs }),
		});
		assert.equal(r.status, 200);
		const body = (await r.json()) as {
			model_version: string;
			parameters?: Record<string, unknown>;
			outputs: { name: string; data: number[] }[];
		};
		assert.deepEqual(
			body.outputs.find((o) => o.name === "label")?.data,
			g.expected.label,
		);
		return [body.model_version, body.parameters];
	};
	assert.deepEqual(await ask("berlin"), [
		"2",
		{ entity: "berlin", entity_fallback: false },
	]);
	assert.deepEqual(await ask("tokyo"), [
		"1",
		{ entity: "tokyo", entity_fallback: true },
	]);
	assert.deepEqual(await ask(), ["1", undefined]);
});

it("REST predict groups records by their city feature", async () => {
	const r = await fetch(`${base()}/v2/models/price/predict`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({
			instances: g.records
				.slice(0, 4)
				.map((x, i) => ({ ...x, city: i % 2 ? "berlin" : "oslo" })),
		}),
	});
	assert.equal(r.status, 200);
	const body = (await r.json()) as {
		model_version: string;
		predictions: { model_version: string; entity: string }[];
	};
	assert.equal(body.model_version, "mixed");
	assert.deepEqual(
		body.predictions.map((p) => `${p.entity}:${p.model_version}`),
		["oslo:1", "berlin:2", "oslo:1", "berlin:2"],
	);
});

it("GET /v2/repository/models/price/entities lists the family's entities with versions and load state", async () => {
	const r = await fetch(`${base()}/v2/repository/models/price/entities`);
	assert.equal(r.status, 200);
	assert.deepEqual(await r.json(), {
		name: "price",
		key: "city",
		fallback: true,
		entities: [{ entity: "berlin", version: 2, state: "READY" }],
	});
	const notFamily = await fetch(`${base()}/v2/repository/models/nope/entities`);
	assert.equal(notFamily.status, 404);
});

it("gRPC ModelInfer names the entity in metadata x-mlship-entity", async () => {
	const client = new InferenceClient(server.grpcPort as number);
	try {
		const inputs = (await goldenTensors("iris-logreg")).map((t) => ({
			name: t.name,
			datatype: t.datatype,
			shape: t.shape.map(String),
			contents: toContents(t.datatype, t.data as ArrayLike<unknown>),
		}));
		const res = await client.infer(
			{ model_name: "price", inputs },
			{},
			{ "x-mlship-entity": "berlin" },
		);
		assert.equal(res.model_version, "2");
		assert.equal(res.parameters.entity?.string_param, "berlin");
		assert.equal(res.parameters.entity_fallback?.bool_param, false);
	} finally {
		client.close();
	}
});

it("mlship serve --entity-key serves a family from the command line; a bad flag is a clear error", async () => {
	const s = await serve([
		"--registry",
		registry,
		"-m",
		"price",
		"--entity-key",
		"price=city",
		"--lazy",
		"--log-level",
		"info",
	]);
	try {
		const r = await fetch(`${s.http}/v2/models/price/predict`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"x-mlship-entity": "berlin",
			},
			body: JSON.stringify({ instances: g.records.slice(0, 2) }),
		});
		const body = (await r.json()) as { model_version: string };
		assert.equal(r.status, 200);
		assert.equal(body.model_version, "2");
	} finally {
		s.proc.kill("SIGTERM");
		await s.exit;
	}
	await assert.rejects(
		serve(["--registry", registry, "-m", "price", "--entity-key", "nope=city"]),
		/--entity-key names model 'nope', which is not served/,
	);
});
