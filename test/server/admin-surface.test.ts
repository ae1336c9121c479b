// The admin surface takes model names only: load and unload never read a path the client names (traversal attempts
// in the name, Triton's "file:"/"config" load parameters), over REST and gRPC.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGrpcServer } from "../../src/server/grpc/index.ts";
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
