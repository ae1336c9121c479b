// The model repository extension: POST /v2/repository/index, /v2/repository/models/:model/load|unload, and
// GET /v2/repository/models/:model/entities for per-entity families, GET /v2/models/:model/experiment.
import type { FastifyInstance } from "fastify";
import { invalidInput, MlshipError } from "../../../protocol/errors.ts";
import { isObject, jsonBody, kindOf } from "../body.ts";
import type { RestContext } from "../context.ts";

/** Registers the repository routes. */
export function registerRepositoryRoutes(
	app: FastifyInstance,
	{ dp }: RestContext,
): void {
	app.post("/v2/repository/index", (req) => {
		const body = jsonBody(req.body, req.headers);
		let ready: boolean | undefined;
		if (body !== undefined) {
			if (!isObject(body))
				throw invalidInput(
					`the index request must be an object like {"ready": true}, got ${kindOf(body)}`,
				);
			if (body.ready !== undefined && typeof body.ready !== "boolean")
				throw invalidInput(
					`ready must be a boolean, got ${kindOf(body.ready)}`,
				);
			ready = body.ready;
		}
		return dp.repositoryIndex(ready === true);
	});
	// mlship's extension: a per-entity family's entities, their serving versions and load state.
	app.get<{ Params: { model: string } }>(
		"/v2/repository/models/:model/entities",
		(req) => dp.entities(req.params.model),
	);
	// mlship's extension: the traffic policy a model serves under and its shadows' comparison figures.
	app.get<{ Params: { model: string } }>(
		"/v2/models/:model/experiment",
		(req) => {
			if (!dp.experiment)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					"this server does not run experiments",
				);
			return dp.experiment(req.params.model);
		},
	);
	app.post<{ Params: { model: string } }>(
		"/v2/repository/models/:model/load",
		async (req) => {
			// Triton accepts parameters (config overrides) here; mlship takes none, but a body must still be JSON.
			jsonBody(req.body, req.headers);
			await dp.load(req.params.model);
			return {};
		},
	);
	app.post<{ Params: { model: string } }>(
		"/v2/repository/models/:model/unload",
		async (req) => {
			jsonBody(req.body, req.headers);
			await dp.unload(req.params.model);
			return {};
		},
	);
}
