// gRPC status mapping, message limits and shutdown, over real sockets with a scripted data plane.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
	ERRORS,
	type ErrorCode,
	GRPC_STATUS,
	MlshipError,
} from "../../../src/protocol/errors.ts";
import {
	type GrpcServer,
	startGrpcServer,
} from "../../../src/server/grpc/index.ts";
import { InferenceClient, rejectsWith, toRaw } from "./client.ts";
import { type EchoPlane, echoPlane } from "./stub.ts";

const ECHO = {
	model_name: "echo",
	inputs: [{ name: "x", datatype: "FP32", shape: [1] }],
	raw_input_contents: [toRaw("FP32", [1])],
};

describe("status mapping", () => {
	let plane: EchoPlane;
	let server: GrpcServer;
	let client: InferenceClient;
	const internal: { err: unknown; method: string }[] = [];

	before(async () => {
		plane = echoPlane();
		server = await startGrpcServer(plane, {
			port: 0,
			onInternalError: (err, method) => internal.push({ err, method }),
		});
		client = new InferenceClient(server.port);
	});
	after(async () => {
		client.close();
		await server.close();
	});

	test("every MlshipError code maps through GRPC_STATUS, message as details (internal ones generic)", async () => {
		for (const code of Object.keys(ERRORS) as ErrorCode[]) {
			plane.fail = new MlshipError(code, `because ${code}`);
			for (const [method, req] of [
				["ModelInfer", ECHO],
				["ModelMetadata", { name: "echo" }],
				["ServerMetadata", {}],
				["RepositoryModelLoad", { model_name: "echo" }],
			] as const)
				await rejectsWith(
					client.call(method, req),
					GRPC_STATUS[code],
					code === "MLSHIP_INTERNAL"
						? /^internal error$/
						: new RegExp(`because ${code}`),
				);
		}
		plane.fail = undefined;
	});

	test("overload is UNAVAILABLE, timeout DEADLINE_EXCEEDED, not found NOT_FOUND", async () => {
		const cases: [ErrorCode, grpc.status][] = [
			["MLSHIP_OVERLOADED", grpc.status.UNAVAILABLE],
			["MLSHIP_TIMEOUT", grpc.status.DEADLINE_EXCEEDED],
			["MLSHIP_MODEL_NOT_FOUND", grpc.status.NOT_FOUND],
			["MLSHIP_INVALID_INPUT", grpc.status.INVALID_ARGUMENT],
			["MLSHIP_INTERNAL", grpc.status.INTERNAL],
		];
		for (const [code, status] of cases) {
			plane.fail = new MlshipError(code, "x");
			await rejectsWith(client.infer(ECHO), status);
		}
		plane.fail = undefined;
	});

	test("unknown errors are INTERNAL with a generic message; details go to onInternalError only", async () => {
		internal.length = 0;
		plane.fail = new Error("ENOENT /secret/path/model.onnx");
		const err = await rejectsWith(client.infer(ECHO), grpc.status.INTERNAL);
		assert.equal(err.details, "internal error");
		assert.doesNotMatch(err.details, /secret/);
		plane.fail = new TypeError("cannot read properties of undefined");
		await rejectsWith(
			client.call("ModelReady", { name: "echo" }),
			grpc.status.INTERNAL,
		);
		plane.fail = undefined;
		assert.deepEqual(
			internal.map((e) => e.method),
			["ModelInfer", "ModelReady"],
		);
		assert.match(String(internal[0]?.err), /secret/);
		// 4xx errors are the client's business, not logged as internal.
		await rejectsWith(
			client.infer({ ...ECHO, model_name: "nope" }),
			grpc.status.NOT_FOUND,
		);
		assert.equal(internal.length, 2);
		assert.deepEqual(await client.call("ServerLive"), { live: true });
	});

	test("stream errors carry the same generic message for unknown errors", async () => {
		plane.fail = new Error("secret");
		const stream = client.stream();
		const got: Record<string, unknown>[] = [];
		const done = new Promise<void>((resolve, reject) => {
			stream.on("data", (m: Record<string, unknown>) => got.push(m));
			stream.on("end", resolve);
			stream.on("error", reject);
		});
		stream.write({ ...ECHO, id: "s1" });
		stream.end();
		await done;
		plane.fail = undefined;
		assert.equal(got.length, 1);
		assert.equal(got[0]?.error_message, "internal error");
		assert.equal(
			(got[0]?.infer_response as { id?: string } | undefined)?.id,
			"s1",
		);
	});
});

describe("limits and lifecycle", () => {
	test("messages over maxMessageBytes are RESOURCE_EXHAUSTED; the server keeps serving", async () => {
		const server = await startGrpcServer(echoPlane(), {
			port: 0,
			maxMessageBytes: 4096,
		});
		const client = new InferenceClient(server.port);
		try {
			await rejectsWith(
				client.infer({
					model_name: "echo",
					inputs: [{ name: "x", datatype: "FP32", shape: [2048] }],
					raw_input_contents: [Buffer.alloc(8192)],
				}),
				grpc.status.RESOURCE_EXHAUSTED,
			);
			const ok = await client.infer(ECHO);
			assert.equal(ok.outputs.length, 1);
		} finally {
			client.close();
			await server.close();
		}
	});

	test("graceful close lets an in-flight call finish, then refuses new ones", async () => {
		const plane = echoPlane();
		const server = await startGrpcServer(plane, { port: 0 });
		const client = new InferenceClient(server.port);
		try {
			await client.call("ServerLive");
			plane.delayMs = 200;
			const inflight = client.infer({ ...ECHO, id: "slow" });
			await new Promise((r) => setTimeout(r, 50));
			const closing = server.close(true);
			const res = await inflight;
			assert.equal(res.id, "slow");
			await closing;
			await rejectsWith(
				client.call("ServerLive", {}, { deadline: Date.now() + 2000 }),
				grpc.status.UNAVAILABLE,
			);
		} finally {
			client.close();
			await server.close();
		}
	});

	test("forced close ends in-flight calls", async () => {
		const plane = echoPlane();
		const server = await startGrpcServer(plane, { port: 0 });
		const client = new InferenceClient(server.port);
		try {
			await client.call("ServerLive");
			plane.delayMs = 2000;
			const inflight = client.infer(ECHO);
			await new Promise((r) => setTimeout(r, 50));
			const t0 = Date.now();
			await server.close(false);
			await assert.rejects(inflight);
			assert.ok(Date.now() - t0 < 1000);
		} finally {
			client.close();
		}
	});

	test("a port in use is a clear error", async () => {
		const a = await startGrpcServer(echoPlane(), { port: 0 });
		try {
			await assert.rejects(
				startGrpcServer(echoPlane(), { port: a.port }),
				new RegExp(`cannot listen for gRPC on 127.0.0.1:${a.port}`),
			);
		} finally {
			await a.close();
		}
	});
});
