// Loads the vendored OIP proto (grpc_service.proto) into a @grpc/grpc-js service definition.
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync, type Options } from "@grpc/proto-loader";

/**
 * Absolute path of the vendored `inference` proto (KServe OIP + Triton repository extension): beside this module,
 * in src/ and in dist/ (scripts/build.ts copies it there).
 */
export const PROTO_FILE: string = fileURLToPath(
	new URL("./grpc_service.proto", import.meta.url),
);

/**
 * How messages are decoded: field names as in the proto, int64/uint64 as decimal strings (no precision lost),
 * bytes as Buffer, unset fields as their defaults, and oneofs named by a virtual `parameter_choice` field.
 */
export const LOADER_OPTIONS: Options = {
	keepCase: true,
	longs: String,
	enums: String,
	defaults: true,
	oneofs: true,
};

let cached: grpc.ServiceDefinition | undefined;

/** The `inference.GRPCInferenceService` definition, loaded once. */
export function inferenceService(): grpc.ServiceDefinition {
	if (!cached) {
		const pkg = grpc.loadPackageDefinition(
			loadSync(PROTO_FILE, LOADER_OPTIONS),
		) as unknown as {
			inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
		};
		cached = pkg.inference.GRPCInferenceService.service;
	}
	return cached;
}
