// Server metadata, liveness, readiness, model metadata and model readiness (OIP v2 REST).
import type { FastifyInstance } from "fastify";
import type { ModelInfo } from "../../../dataplane/types.ts";
import type { ModelParams, RestContext } from "../context.ts";

export type { ModelParams };

/** Extensions this transport adds to the data plane's own list. */
const REST_EXTENSIONS = ["binary_tensor_data", "model_repository"];

/**
 * mlship's model metadata `parameters`: what an HTTP client needs to call `/predict` (feature columns with their
 * datatype and allowed values, class labels, task), beyond the tensor shapes OIP defines.
 */
export function modelParameters(info: ModelInfo): Record<string, unknown> {
	const out: Record<string, unknown> = {
		features:
			info.featureSpecs ??
			info.features.map((name) => ({ name, datatype: "unknown" })),
	};
	if (info.labels) out.labels = info.labels;
	if (info.task) out.task = info.task;
	return out;
}

/** Registers `GET /v2`, `/v2/health/*`, `/v2/models/:model[/versions/:version][/ready]`. */
export function registerHealthRoutes(
	app: FastifyInstance,
	{ dp, readiness }: RestContext,
): void {
	app.get("/v2", () => {
		const m = dp.metadata();
		const extensions = [...m.extensions];
		for (const e of REST_EXTENSIONS)
			if (!extensions.includes(e)) extensions.push(e);
		return { name: m.name, version: m.version, extensions };
	});
	app.get("/v2/health/live", (_req, reply) => {
		const live = dp.live();
		reply.code(live ? 200 : 503);
		return { live };
	});
	app.get("/v2/health/ready", (_req, reply) => {
		const ready = dp.ready();
		reply.code(ready ? 200 : 503);
		// Detail only: a registry outage does not make the server unready (loaded models keep serving).
		const registry = dp.registry();
		return {
			ready,
			...(registry ? { registry } : {}),
			...readiness?.(),
		};
	});

	const metadata = (p: ModelParams) => {
		const info = dp.modelMetadata(p.model, p.version);
		return {
			name: info.name,
			versions: info.versions,
			platform: info.platform,
			inputs: info.inputs,
			outputs: info.outputs,
			parameters: modelParameters(info),
		};
	};
	app.get<{ Params: ModelParams }>("/v2/models/:model", (req) =>
		metadata(req.params),
	);
	app.get<{ Params: ModelParams }>(
		"/v2/models/:model/versions/:version",
		(req) => metadata(req.params),
	);

	const ready = (p: ModelParams, reply: { code(n: number): unknown }) => {
		const ok = dp.modelReady(p.model, p.version);
		reply.code(ok ? 200 : 503);
		return { name: p.model, ready: ok };
	};
	app.get<{ Params: ModelParams }>("/v2/models/:model/ready", (req, reply) =>
		ready(req.params, reply),
	);
	app.get<{ Params: ModelParams }>(
		"/v2/models/:model/versions/:version/ready",
		(req, reply) => ready(req.params, reply),
	);
}
