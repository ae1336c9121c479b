// Which scope each REST route and gRPC RPC needs: one table, read by both transports and by docs/security.md.
import type { Scope } from "../../registry/access.ts";

/** What a call needs: no token (`open`), or a token with this scope. */
export type Need = Scope | "open";

/**
 * REST routes (fastify URL patterns) and the scope each needs. A route that names a model (`:model`) is also checked
 * against the token's model patterns; a server-wide route (no `:model`) needs a token without model patterns.
 * A route missing here needs `admin` (fail closed); test/server/auth.test.ts keeps every registered route listed.
 */
export const REST_SCOPES: Readonly<Record<string, Need>> = {
	"GET /v2/health/live": "open",
	"GET /v2/health/ready": "open",
	"GET /v2": "read",
	"GET /v2/models/:model": "read",
	"GET /v2/models/:model/versions/:version": "read",
	"GET /v2/models/:model/ready": "read",
	"GET /v2/models/:model/versions/:version/ready": "read",
	"POST /v2/models/:model/infer": "predict",
	"POST /v2/models/:model/versions/:version/infer": "predict",
	"POST /v2/models/:model/predict": "predict",
	"POST /v2/models/:model/versions/:version/predict": "predict",
	"POST /v2/models/:model/explain": "predict",
	"POST /v2/models/:model/versions/:version/explain": "predict",
	"POST /v2/models/:model/feedback": "predict",
	"POST /v2/models/:model/versions/:version/feedback": "predict",
	"POST /v2/repository/index": "read",
	"GET /v2/repository/models/:model/entities": "read",
	"GET /v2/models/:model/experiment": "read",
	"GET /v2/models/:model/monitor": "read",
	"GET /v2/models/:model/quality": "read",
	"POST /v2/repository/models/:model/load": "admin",
	"POST /v2/repository/models/:model/unload": "admin",
	"POST /v2/repository/models/:model/versions": "admin",
	"PUT /v2/repository/models/:model/aliases/:alias": "admin",
	"GET /metrics": "read",
	"GET /v2/openapi.json": "read",
	// The dashboard (serve --ui, mlship ui): the page itself is open (it asks for a token), its data is not.
	"GET /ui": "open",
	"GET /ui/": "open",
	"GET /ui/assets/:file": "open",
	"GET /ui/api/models": "read",
	"GET /ui/api/models/:model": "read",
	"GET /ui/api/models/:model/live": "read",
	"GET /ui/api/models/:model/drift": "read",
	"GET /ui/api/models/:model/quality": "read",
	"GET /ui/api/experiments": "read",
	"GET /ui/api/servers": "read",
	"POST /ui/api/servers/:server/models/:model/unload": "admin",
	"POST /ui/api/rollouts/:model/:alias": "admin",
	"POST /ui/api/rollouts/:model/:alias/:action": "admin",
	"GET /ui/api/streams": "read",
};

/** gRPC methods of inference.GRPCInferenceService and the scope each needs (same rules as REST). */
export const GRPC_SCOPES: Readonly<Record<string, Need>> = {
	ServerLive: "open",
	ServerReady: "open",
	ServerMetadata: "read",
	ModelReady: "read",
	ModelMetadata: "read",
	ModelInfer: "predict",
	ModelStreamInfer: "predict",
	RepositoryIndex: "read",
	RepositoryModelLoad: "admin",
	RepositoryModelUnload: "admin",
};

/** The scope a REST route needs; routes not in the table need `admin`. */
export function restNeed(method: string, url: string | undefined): Need {
	if (url === undefined) return "open"; // no route: the 404 handler answers, and names nothing
	return REST_SCOPES[`${method === "HEAD" ? "GET" : method} ${url}`] ?? "admin";
}

/** The scope a gRPC method needs; methods not in the table need `admin`. */
export function grpcNeed(method: string): Need {
	return GRPC_SCOPES[method] ?? "admin";
}

const PATTERNS = Object.entries(REST_SCOPES).map(([key, need]) => {
	const [method, url] = key.split(" ") as [string, string];
	return {
		method,
		re: new RegExp(`^${url.replace(/:[A-Za-z]+/g, "[^/]+")}$`),
		need,
	};
});

/**
 * The scope of a concrete path (`/v2/models/iris/predict`) or an OpenAPI path (`/v2/models/{model}`), for documents;
 * paths not in the table need `admin`.
 */
export function pathNeed(method: string, path: string): Need {
	const m = method.toUpperCase();
	return (
		PATTERNS.find((p) => p.method === m && p.re.test(path))?.need ?? "admin"
	);
}
