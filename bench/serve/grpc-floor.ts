// The gRPC floor for bench/serve: a bare @grpc/grpc-js server (no model) implementing OIP ModelInfer and
// ServerReady with the project's proto and loader options; ModelInfer decodes the request (grpc-js + proto-loader do
// that) and answers a canned response of mlship's shape (label INT64 + probabilities FP32 as raw_output_contents).
// Its CPU per request is what grpc-js + protobuf decoding cost on this machine: the part of mlship's gRPC overhead
// no server code can remove.
//
//   node bench/serve/grpc-floor.ts <port> [host]
import * as grpc from "@grpc/grpc-js";
import { inferenceService } from "../../src/server/grpc/proto.ts";

const port = Number(process.argv[2]);
const host = process.argv[3] ?? "127.0.0.1";
const label = Buffer.alloc(8);
label.writeBigInt64LE(1n);
const probs = Buffer.from(
	new Float32Array([0.000611424446105957, 0.999388575553894]).buffer,
);
const answer = {
	model_name: "gbdt",
	model_version: "1",
	id: "b0f552dc-8ad7-478c-9374-bca6362b6244",
	outputs: [
		{ name: "label", datatype: "INT64", shape: [1] },
		{ name: "probabilities", datatype: "FP32", shape: [1, 2] },
	],
	raw_output_contents: [label, probs],
};

const server = new grpc.Server();
server.addService(inferenceService(), {
	ModelInfer: (
		_call: grpc.ServerUnaryCall<unknown, unknown>,
		cb: grpc.sendUnaryData<unknown>,
	) => cb(null, answer),
	ServerReady: (
		_call: grpc.ServerUnaryCall<unknown, unknown>,
		cb: grpc.sendUnaryData<unknown>,
	) => cb(null, { ready: true }),
});
server.bindAsync(
	`${host}:${port}`,
	grpc.ServerCredentials.createInsecure(),
	(err) => {
		if (err) {
			console.error(err);
			process.exit(1);
		}
	},
);
for (const sig of ["SIGTERM", "SIGINT"] as const)
	process.on(sig, () => {
		server.forceShutdown();
		process.exit(0); // exits normally, so --cpu-prof writes its profile
	});
