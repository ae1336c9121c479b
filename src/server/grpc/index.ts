// The gRPC transport's public surface: start the OIP v2 gRPC server in front of a data plane.

export { LOADER_OPTIONS, PROTO_FILE } from "./proto.ts";
export {
	DEFAULT_MAX_MESSAGE_BYTES,
	type GrpcServer,
	type GrpcServerOptions,
	grpcStatusOf,
	startGrpcServer,
} from "./server.ts";
