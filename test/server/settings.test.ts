// Server settings: defaults < config file < MLSHIP_* env < flags, and errors that name the field.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { MlshipError } from "../../src/protocol/errors.ts";
import { defaultModelName } from "../../src/server/server.ts";
import { parseModelArg, resolveSettings } from "../../src/server/settings.ts";
import { bundleDir } from "../helpers/fixtures.ts";

it("defaults, then config file, then env, then flags", async () => {
	const dir = await mkdtemp(join(tmpdir(), "mlship-settings-"));
	try {
		const cfg = join(dir, "serve.yaml");
		await writeFile(
			cfg,
			"http_port: 9000\ngrpc_port: 9001\nmax_batch_size: 32\nmodels:\n  - {name: a, source: ./a}\n",
		);
		const d = resolveSettings({}, undefined, {});
		assert.equal(d.http_port, 8080);
		assert.equal(d.grpc_port, 8081);
		assert.equal(d.host, "0.0.0.0");
		assert.equal(d.body_limit_bytes, 64 * 1024 * 1024);
		const f = resolveSettings({}, cfg, {});
		assert.deepEqual(f.models, [{ name: "a", source: "./a" }]);
		const s = resolveSettings({ grpc_port: "-1" }, cfg, {
			MLSHIP_HTTP_PORT: "9100",
			MLSHIP_MODELS: "./b:bee, ./c:cee",
		});
		assert.equal(s.http_port, 9100, "env beats file");
		assert.equal(s.grpc_port, -1, "flag beats file");
		assert.equal(s.max_batch_size, 32, "file beats default");
		assert.deepEqual(
			s.models,
			[
				{ source: "./b", name: "bee" },
				{ source: "./c", name: "cee" },
			],
			"env models replace the file's",
		);
		assert.throws(
			() => resolveSettings({}, undefined, { MLSHIP_MODELS: "./b:bee,./c" }),
			(e: unknown) =>
				e instanceof MlshipError &&
				/MLSHIP_MODELS\[1\]\.name: required/.test(e.message),
		);
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
});

it("bad values are refused with the field named", () => {
	assert.throws(
		() =>
			resolveSettings({ http_port: "abc", log_level: "loud" }, undefined, {}),
		(e: unknown) =>
			e instanceof MlshipError &&
			/--http-port: not a port number: abc/.test(e.message) &&
			/--log-level: must be one of fatal, .*, got loud/.test(e.message),
	);
	assert.throws(
		() => resolveSettings({ colour: 1 }, undefined, {}),
		/colour: unknown field/,
	);
	// Named as the user gave it, with the value: a flag, an env variable.
	assert.throws(
		() => resolveSettings({ http_port: "abc" }, undefined, {}),
		/\n {2}--http-port: not a port number: abc$/,
	);
	assert.throws(
		() => resolveSettings({}, undefined, { MLSHIP_GRPC_PORT: "-5" }),
		/\n {2}MLSHIP_GRPC_PORT: must be ≥ -1 \(a port number\), got -5$/,
	);
});

it("model arguments: src[:name], and default names from the bundle, the file or the registry ref", async () => {
	assert.deepEqual(parseModelArg("./bundles/gbdt:gbdt"), {
		source: "./bundles/gbdt",
		name: "gbdt",
	});
	assert.deepEqual(parseModelArg("churn@production"), {
		source: "churn@production",
	});
	assert.equal(await defaultModelName(bundleDir("iris-logreg")), "iris-logreg");
	assert.equal(await defaultModelName("/x/y/model.onnx"), "model");
	assert.equal(await defaultModelName("churn@production"), "churn");
});

it("memory_budget takes bytes or a size with a unit, from flags, env or a file; a bad size names the field", () => {
	const budget = (v: unknown, env: NodeJS.ProcessEnv = {}) =>
		resolveSettings(v === undefined ? {} : { memory_budget: v }, undefined, env)
			.memory_budget;
	assert.equal(budget(undefined), 0, "no limit by default");
	assert.equal(budget("512MiB"), 512 * 1024 ** 2);
	assert.equal(budget("2GiB"), 2 * 1024 ** 3);
	assert.equal(budget("1.5GB"), 1.5e9);
	assert.equal(budget("800k"), 800_000);
	assert.equal(budget(4096), 4096);
	assert.equal(budget(undefined, { MLSHIP_MEMORY_BUDGET: "1GiB" }), 1024 ** 3);
	assert.throws(
		() => budget("lots"),
		(err: unknown) =>
			err instanceof MlshipError &&
			/memory-budget: expected a size such as 512MiB, 2GiB or a number of bytes, got 'lots'/.test(
				err.message,
			),
	);
});

it("models[].entity_key and entity_fallback are settings of a served model", () => {
	const s = resolveSettings(
		{
			models: [
				{
					name: "price",
					source: "price@production",
					entity_key: "city",
					entity_fallback: false,
				},
			],
		},
		undefined,
		{},
	);
	assert.deepEqual(s.models[0], {
		name: "price",
		source: "price@production",
		entity_key: "city",
		entity_fallback: false,
	});
	assert.throws(
		() =>
			resolveSettings(
				{ models: [{ name: "p", source: "p", entity_key: "" }] },
				undefined,
				{},
			),
		/models\[0\]\.entity_key: must not be empty/,
	);
});
