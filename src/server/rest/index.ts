// The REST transport's public surface.
export {
	createRestServer,
	DEFAULT_BODY_LIMIT,
	type RestServerOptions,
} from "./server.ts";
