// The admin surface takes model names only: load and unload never read a path the client names (traversal attempts
// in the name, Triton's "file:"/"config" load parameters), over REST and gRPC.
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startGrpcServer } from "../../src/server/grpc/index.ts";
import { bundleDir } from "../helpers/fixtures.ts";
import { type RestHarness, startRest } from "../helpers/server.ts";
import { InferenceClient, rejectsWith } from "./grpc/client.ts";

describe("admin surface: load and unload take served model names only", () => {
	let rest: RestHarness;
	let grpcServer: Awaited<ReturnType<typeof startGrpcServer>>;
	let client: InferenceClient;
	before(async () => {
		rest = await startRest({ "iris-logreg": "iris" });
		grpcServer = await startGrpcServer(rest.dp, { port: 0 });
		client = new InferenceClient(grpcServer.port);
	});
	after(async () => {
		client.close();
		await grpcServer.close();
		await rest.close();
	});

	const NAMES = [
		"..%2F..%2F..%2Fetc%2Fpasswd",
		"%2Fetc%2Fpasswd",
		"..%5C..%5Cwindows",
		"iris%2F..%2F..%2Fetc",
		"%2E%2E",
	];

	it("REST: a name that is a path is an unknown model (404), never a file", async () => {
		for (const name of NAMES)
			for (const op of ["load", "unload"]) {
				const res = await fetch(
					`${rest.url}/v2/repository/models/${name}/${op}`,
					{
						method: "POST",
					},
				);
				const body = (await res.json()) as { error: string };
				assert.equal(res.status, 404, `${op} ${name}: ${body.error}`);
				assert.match(body.error, /unknown model|no route/, `${op} ${name}`);
			}
	});

	it("REST: Triton's load parameters (file:, config) are refused, so no path reaches the loader", async () => {
		for (const parameters of [
			{ "file:/etc/passwd": "AAAA" },
			{ config: '{"backend":"onnxruntime"}' },
		]) {
			const res = await fetch(`${rest.url}/v2/repository/models/iris/load`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ parameters }),
			});
			const body = (await res.json()) as { error: string };
			assert.equal(res.status, 400, body.error);
			assert.match(body.error, /load parameters are not supported/);
		}
		// Without parameters the served model reloads.
		const ok = await fetch(`${rest.url}/v2/repository/models/iris/load`, {
			method: "POST",
		});
		assert.equal(ok.status, 200);
	});

	it("gRPC: names that are paths are unknown models; load parameters are refused", async () => {
		for (const name of ["../../etc/passwd", "/etc/passwd", "iris/../../etc"]) {
			await rejectsWith(
				client.call("RepositoryModelLoad", { model_name: name }),
				5, // NOT_FOUND
				/unknown model/,
			);
		}
		await rejectsWith(
			client.call("RepositoryModelLoad", {
				model_name: "iris",
				parameters: { "file:/etc/passwd": { bytes_param: Buffer.from("x") } },
			}),
			3, // INVALID_ARGUMENT
			/load parameters are not supported/,
		);
	});
});

describe("admin surface: --model-root loads names not served yet from the root only", () => {
	let dir: string;
	let root: string;
	let rest: RestHarness;
	let grpcServer: Awaited<ReturnType<typeof startGrpcServer>>;
	let client: InferenceClient;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-model-root-"));
		root = join(dir, "models");
		await mkdir(root);
		await cp(bundleDir("iris-logreg"), join(root, "iris"), { recursive: true });
		// A valid bundle outside the root, reachable only through a symlink.
		await cp(bundleDir("iris-logreg"), join(dir, "outside"), {
			recursive: true,
		});
		await symlink(join(dir, "outside"), join(root, "escape"));
		await symlink("iris", join(root, "alias-inside"));
		await mkdir(join(root, "broken"));
		await writeFile(
			join(root, "broken", "mlship.yaml"),
			"mlship: 1\nname: broken\n",
		);
		rest = await startRest({ "iris-logreg": "served" }, { modelRoot: root });
		grpcServer = await startGrpcServer(rest.dp, { port: 0, modelRoot: root });
		client = new InferenceClient(grpcServer.port);
	});
	after(async () => {
		client.close();
		await grpcServer.close();
		await rest.close();
		await rm(dir, { recursive: true, force: true });
	});

	const load = (name: string) =>
		fetch(`${rest.url}/v2/repository/models/${name}/load`, {
			method: "POST",
		}).then(async (r) => ({
			status: r.status,
			body: (await r.json()) as { error?: string },
		}));

	it("loads ROOT/NAME and serves it; a symlink inside the root is fine", async () => {
		assert.equal((await load("iris")).status, 200);
		const res = await fetch(`${rest.url}/v2/models/iris/predict`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({
				instances: [
					{
						sepal_length: 5.1,
						sepal_width: 3.5,
						petal_length: 1.4,
						petal_width: 0.2,
					},
				],
			}),
		});
		assert.equal(res.status, 200);
		await client.call("RepositoryModelLoad", { model_name: "alias-inside" });
		assert.ok(
			rest.dp
				.repositoryIndex()
				.some((e) => e.name === "alias-inside" && e.state === "READY"),
		);
	});

	it("refuses a symlink out of the root, names that are paths, and names not in the root; readiness stays", async () => {
		const out = await load("escape");
		assert.equal(out.status, 404);
		assert.match(
			out.body.error ?? "",
			/escape is a symlink that leads out of the model root/,
		);
		for (const name of ["..%2Foutside", "%2Fetc%2Fpasswd", "..", ".hidden"]) {
			const r = await load(name);
			assert.ok(
				r.status === 400 || r.status === 404,
				`${name}: ${r.status} ${r.body.error}`,
			);
		}
		assert.match(
			(await load(".hidden")).body.error ?? "",
			/invalid model name.*never by path/,
		);
		assert.match(
			(await load("nope")).body.error ?? "",
			/unknown model 'nope': no nope\/ or nope.onnx under the model root/,
		);
		await rejectsWith(
			client.call("RepositoryModelLoad", { model_name: "escape" }),
			5,
			/leads out of the model root/,
		);
		await rejectsWith(
			client.call("RepositoryModelLoad", { model_name: "../outside" }),
			3,
			/never by path/,
		);
		// A bundle under the root that fails to load is reported and forgotten: the server stays ready.
		const broken = await load("broken");
		assert.equal(broken.status, 400, broken.body.error);
		const names = rest.dp.repositoryIndex().map((e) => e.name);
		for (const n of ["escape", "nope", "broken"])
			assert.ok(!names.includes(n), n);
		assert.equal((await fetch(`${rest.url}/v2/health/ready`)).status, 200);
	});
});
