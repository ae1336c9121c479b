// GET /v2/openapi.json: an OpenAPI 3.1 document of every REST route, with each served model's /predict schema.
import type { FastifyInstance } from "fastify";
import type { FeatureSpec } from "../../../codec/feature-specs.ts";
import type { DataPlane, ModelInfo } from "../../../dataplane/types.ts";
import { DATATYPE_INFO, isDatatype } from "../../../protocol/datatypes.ts";
import { pathNeed } from "../../auth/policy.ts";
import type { RestContext } from "../context.ts";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({
	$ref: `#/components/schemas/${name}`,
});
const json = (schema: Schema, description: string) => ({
	description,
	content: { "application/json": { schema } },
});
const ERROR = json(ref("Error"), "an error: {error: message}");
const modelParam = {
	name: "model",
	in: "path",
	required: true,
	schema: { type: "string" },
};
const versionParam = { ...modelParam, name: "version" };

/** JSON Schema of one feature's values. */
export function featureSchema(f: FeatureSpec): Schema {
	let s: Schema;
	if (f.categories) s = { enum: f.categories };
	else {
		const kind = isDatatype(f.datatype)
			? DATATYPE_INFO[f.datatype].kind
			: undefined;
		s =
			kind === "bool"
				? { type: "boolean" }
				: kind === "bytes"
					? { type: "string" }
					: kind === "int" || kind === "bigint"
						? { type: "integer" }
						: { type: "number" };
		if (f.min !== undefined) s.minimum = f.min;
		if (f.max !== undefined) s.maximum = f.max;
	}
	s.description = `${f.datatype}${f.allow_missing ? ", null when missing" : ""}`;
	return f.allow_missing ? { anyOf: [s, { type: "null" }] } : s;
}

/** The predict request of one model: records (`instances`) or columns, with its features' schemas. */
function predictRequest(info: ModelInfo): Schema {
	const specs =
		info.featureSpecs ??
		info.features.map((name) => ({ name, datatype: "unknown" }));
	const properties: Record<string, Schema> = {};
	const columns: Record<string, Schema> = {};
	for (const f of specs) {
		properties[f.name] = featureSchema(f);
		columns[f.name] = { type: "array", items: featureSchema(f) };
	}
	const names = specs.map((f) => f.name);
	const record = {
		type: "object",
		properties,
		required: names,
	};
	return {
		oneOf: [
			{
				type: "object",
				properties: {
					instances: { type: "array", minItems: 1, items: record },
				},
				required: ["instances"],
			},
			{
				type: "object",
				properties: {
					columns: { type: "object", properties: columns, required: names },
				},
				required: ["columns"],
			},
		],
	};
}

/** One served model's routes with its concrete schemas (concrete paths match before templated ones). */
function modelPaths(info: ModelInfo): Record<string, unknown> {
	const name = encodeURIComponent(info.name);
	const prediction: Schema = { type: "object" };
	if (info.labels) prediction.properties = { label: { enum: info.labels } };
	return {
		[`/v2/models/${name}/predict`]: {
			post: {
				operationId: `predict_${info.name}`,
				summary: `Predict with '${info.name}' (version ${info.version}${info.task ? `, ${info.task}` : ""}): records or columns of its features`,
				tags: ["models"],
				requestBody: {
					required: true,
					content: { "application/json": { schema: predictRequest(info) } },
				},
				responses: {
					"200": json(
						{
							allOf: [
								ref("PredictResponse"),
								{
									type: "object",
									properties: {
										predictions: { type: "array", items: prediction },
									},
								},
							],
						},
						"one prediction per row, class indices as label names",
					),
					"400": ERROR,
					"503": ERROR,
				},
			},
		},
	};
}

const get = (
	operationId: string,
	summary: string,
	ok: Schema,
	params: unknown[] = [],
	more: Record<string, unknown> = {},
) => ({
	get: {
		operationId,
		summary,
		...(params.length > 0 ? { parameters: params } : {}),
		responses: { "200": json(ok, "success"), ...more },
	},
});
const post = (
	operationId: string,
	summary: string,
	body: Schema | undefined,
	ok: Schema,
	params: unknown[] = [],
) => ({
	post: {
		operationId,
		summary,
		...(params.length > 0 ? { parameters: params } : {}),
		...(body
			? {
					requestBody: {
						required: false,
						content: { "application/json": { schema: body } },
					},
				}
			: {}),
		responses: {
			"200": json(ok, "success"),
			"400": ERROR,
			"404": ERROR,
			"503": ERROR,
		},
	},
});

/** POST /v2/repository/models/{model}/versions: a bundle uploaded as tar or tar.gz (admin). */
function uploadOp(): Record<string, unknown> {
	const query = (name: string, description: string, schema: Schema) => ({
		name,
		in: "query",
		required: false,
		description,
		schema,
	});
	const archive = {
		schema: { type: "string", contentMediaType: "application/x-tar" },
	};
	return {
		post: {
			operationId: "repositoryModelUpload",
			summary:
				"Register an uploaded bundle as the model's next version (admin)",
			description:
				"Admin scope: changes what the registry holds. The body is a tar (or tar.gz) of a bundle directory: mlship.yaml and the files it names, at the top level or in one top-level directory. Only regular files and directories; no absolute paths, '..' or links; size, entry and extracted-size limits apply. Registered through the server's registry (400 when the server serves bundles from disk only); a signature that differs from the name's newest version is refused unless allow_signature_change=true.",
			parameters: [
				modelParam,
				{
					name: "x-mlship-sha256",
					in: "header",
					required: false,
					description:
						"sha256 of the body, 64 hex digits; required here or as the sha256 query parameter",
					schema: { type: "string", pattern: "^[0-9a-fA-F]{64}$" },
				},
				query("sha256", "sha256 of the body (instead of the header)", {
					type: "string",
					pattern: "^[0-9a-fA-F]{64}$",
				}),
				query("alias", "point this alias at the new version (repeatable)", {
					type: "string",
				}),
				query("entity", "register for this entity of a per-entity family", {
					type: "string",
				}),
				query(
					"allow_signature_change",
					"accept inputs, features or labels that differ from the newest version",
					{ type: "boolean", default: false },
				),
			],
			requestBody: {
				required: true,
				content: {
					"application/x-tar": archive,
					"application/gzip": archive,
					"application/octet-stream": archive,
				},
			},
			responses: {
				"201": json(
					{
						type: "object",
						required: ["name", "version", "sha256", "aliases", "served"],
						properties: {
							name: { type: "string" },
							version: { type: "integer" },
							sha256: { type: "string" },
							aliases: { type: "array", items: { type: "string" } },
							entity: { type: ["string", "null"] },
							created_at: { type: "string" },
							archive: {
								type: "object",
								properties: {
									sha256: { type: "string" },
									bytes: { type: "integer" },
								},
							},
							served: {
								type: "boolean",
								description:
									"this server serves the name and hot-loads the new version as its references move",
							},
						},
					},
					"registered",
				),
				"400": ERROR,
				"401": ERROR,
				"403": ERROR,
				"413": ERROR,
				"422": ERROR,
				"503": ERROR,
			},
		},
	};
}

const INFER_BODY = {
	required: true,
	content: {
		"application/json": { schema: ref("InferenceRequest") },
		"application/octet-stream": {
			schema: {
				type: "string",
				format: "binary",
				description:
					"binary tensor data extension: the JSON request (length in Inference-Header-Content-Length) then the raw tensors",
			},
		},
	},
};

function inferOp(operationId: string, params: unknown[]) {
	return {
		post: {
			operationId,
			summary:
				"Open Inference Protocol v2 inference (JSON, or binary tensor data)",
			tags: ["inference"],
			parameters: params,
			requestBody: INFER_BODY,
			responses: {
				"200": {
					description: "the outputs",
					content: {
						"application/json": { schema: ref("InferenceResponse") },
						"application/octet-stream": {
							schema: { type: "string", format: "binary" },
						},
					},
				},
				"400": ERROR,
				"404": ERROR,
				"503": ERROR,
				"504": ERROR,
			},
		},
	};
}

/** A JSON body of records (`instances`) or columns, plus `extra` properties. */
function tableBody(extra: Record<string, unknown> = {}) {
	return {
		required: true,
		content: {
			"application/json": {
				schema: {
					type: "object",
					properties: {
						instances: { type: "array", items: { type: "object" } },
						columns: {
							type: "object",
							additionalProperties: { type: "array" },
						},
						...extra,
					},
				},
			},
		},
	};
}

function explainOp(operationId: string, params: unknown[]) {
	return {
		post: {
			operationId,
			summary:
				"Records ({instances}) or columns ({columns}) in; per row and target: base value, output, every feature's contribution (exact TreeSHAP or linear SHAP on the trees runtime; KernelSHAP for other models with a reference profile) and the `top` largest (default 5)",
			tags: ["inference"],
			parameters: params,
			requestBody: tableBody({
				top: { type: "integer", minimum: 1, maximum: 1000 },
				method: {
					type: "string",
					enum: ["exact", "kernel"],
					description:
						"default: exact when the runtime can explain, else KernelSHAP when the bundle has a reference profile",
				},
				samples: {
					type: "integer",
					minimum: 2,
					maximum: 100000,
					description: "KernelSHAP: most coalitions per row (default 2048)",
				},
				seed: {
					type: "integer",
					minimum: 0,
					description: "KernelSHAP: the sampler's seed (default 1)",
				},
			}),
			responses: {
				"200": json(
					ref("ExplainResponse"),
					"per row, per target: contributions",
				),
				"400": ERROR,
				"404": ERROR,
				"422": ERROR,
				"503": ERROR,
			},
		},
	};
}

function predictOp(operationId: string, params: unknown[]) {
	return {
		post: {
			operationId,
			summary:
				"Records ({instances}) or columns ({columns}) of feature values in, records out; each model's own schema is under its concrete path",
			tags: ["inference"],
			parameters: params,
			requestBody: tableBody({
				parameters: {
					type: "object",
					description:
						"request parameters; a traffic policy's sticky key may be one (--sticky-from param)",
				},
			}),
			responses: {
				"200": json(ref("PredictResponse"), "one prediction per row"),
				"400": ERROR,
				"404": ERROR,
				"503": ERROR,
			},
		},
	};
}

const TENSOR_METADATA = {
	type: "object",
	required: ["name", "datatype", "shape"],
	properties: {
		name: { type: "string" },
		datatype: { type: "string" },
		shape: { type: "array", items: { type: "integer" } },
	},
};
const TENSOR: Schema = {
	...TENSOR_METADATA,
	properties: {
		...TENSOR_METADATA.properties,
		parameters: { type: "object" },
		data: { type: "array" },
	},
};

const COMPONENTS = {
	schemas: {
		Error: {
			type: "object",
			required: ["error"],
			properties: { error: { type: "string" } },
		},
		Tensor: TENSOR,
		TensorMetadata: TENSOR_METADATA,
		InferenceRequest: {
			type: "object",
			required: ["inputs"],
			properties: {
				id: { type: "string" },
				parameters: { type: "object" },
				inputs: { type: "array", items: ref("Tensor") },
				outputs: {
					type: "array",
					items: {
						type: "object",
						required: ["name"],
						properties: {
							name: { type: "string" },
							parameters: { type: "object" },
						},
					},
				},
			},
		},
		InferenceResponse: {
			type: "object",
			required: ["model_name", "outputs"],
			properties: {
				model_name: { type: "string" },
				model_version: { type: "string" },
				id: { type: "string" },
				parameters: { type: "object" },
				outputs: { type: "array", items: ref("Tensor") },
			},
		},
		ModelMetadata: {
			type: "object",
			required: ["name", "platform", "inputs", "outputs"],
			properties: {
				name: { type: "string" },
				versions: { type: "array", items: { type: "string" } },
				platform: { type: "string" },
				inputs: { type: "array", items: ref("TensorMetadata") },
				outputs: { type: "array", items: ref("TensorMetadata") },
				parameters: {
					type: "object",
					description:
						"mlship: features (name, datatype, categories, min, max, allow_missing), labels and task",
					properties: {
						features: { type: "array", items: { type: "object" } },
						labels: { type: "array", items: { type: "string" } },
						task: { type: "string" },
					},
				},
			},
		},
		ExplainResponse: {
			type: "object",
			required: ["model_name", "model_version", "method", "explanations"],
			properties: {
				model_name: { type: "string" },
				model_version: { type: "string" },
				method: {
					type: "string",
					description: "tree_path_dependent, linear or kernel",
				},
				space: {
					type: "string",
					enum: ["raw", "output"],
					description:
						"raw: the model's margin (exact methods); output: the served output, e.g. probabilities (KernelSHAP)",
				},
				samples: {
					type: "integer",
					description: "KernelSHAP: coalitions evaluated per row",
				},
				explanations: {
					type: "array",
					items: {
						type: "array",
						items: {
							type: "object",
							required: ["target", "base", "output", "values", "top"],
							properties: {
								target: { type: "string" },
								base: { type: "number" },
								output: { type: "number" },
								values: {
									type: "object",
									additionalProperties: { type: "number" },
								},
								top: {
									type: "array",
									items: {
										type: "object",
										properties: {
											feature: { type: "string" },
											value: { type: "number" },
										},
									},
								},
							},
						},
					},
				},
			},
		},
		PredictResponse: {
			type: "object",
			required: ["model_name", "model_version", "predictions"],
			properties: {
				model_name: { type: "string" },
				model_version: { type: "string" },
				predictions: { type: "array", items: { type: "object" } },
			},
		},
	},
};

/** The OpenAPI document for the server as it is now (models come and go, so it is built per request). */
export function openApiDocument(dp: DataPlane): Record<string, unknown> {
	const m = dp.metadata();
	const ready = { type: "object", properties: { ready: { type: "boolean" } } };
	const paths: Record<string, unknown> = {
		"/v2": get("serverMetadata", "Server metadata", {
			type: "object",
			properties: {
				name: { type: "string" },
				version: { type: "string" },
				extensions: { type: "array", items: { type: "string" } },
			},
		}),
		"/v2/health/live": get(
			"serverLive",
			"Liveness (200 live, 503 not)",
			{ type: "object", properties: { live: { type: "boolean" } } },
			[],
			{ "503": json({ type: "object" }, "not live") },
		),
		"/v2/health/ready": get(
			"serverReady",
			"Readiness: every model loaded (200) or not (503)",
			ready,
			[],
			{ "503": json(ready, "not ready") },
		),
		"/v2/openapi.json": get("openApi", "This document", { type: "object" }),
		"/v2/models/{model}": get(
			"modelMetadata",
			"Model metadata, with features, labels and task in parameters",
			ref("ModelMetadata"),
			[modelParam],
			{ "404": ERROR },
		),
		"/v2/models/{model}/versions/{version}": get(
			"modelVersionMetadata",
			"Model metadata of one version",
			ref("ModelMetadata"),
			[modelParam, versionParam],
			{ "404": ERROR },
		),
		"/v2/models/{model}/ready": get(
			"modelReady",
			"Model readiness (200 ready, 503 not)",
			ready,
			[modelParam],
			{ "404": ERROR, "503": json(ready, "not ready") },
		),
		"/v2/models/{model}/versions/{version}/ready": get(
			"modelVersionReady",
			"Readiness of one model version",
			ready,
			[modelParam, versionParam],
			{ "404": ERROR, "503": json(ready, "not ready") },
		),
		"/v2/models/{model}/infer": inferOp("modelInfer", [modelParam]),
		"/v2/models/{model}/versions/{version}/infer": inferOp(
			"modelVersionInfer",
			[modelParam, versionParam],
		),
		"/v2/models/{model}/predict": predictOp("modelPredict", [modelParam]),
		"/v2/models/{model}/explain": explainOp("modelExplain", [modelParam]),
		"/v2/models/{model}/versions/{version}/explain": explainOp(
			"modelVersionExplain",
			[modelParam, versionParam],
		),
		"/v2/models/{model}/versions/{version}/predict": predictOp(
			"modelVersionPredict",
			[modelParam, versionParam],
		),
		"/v2/models/{model}/monitor": get(
			"modelMonitor",
			"Per window (serve --monitor-window): drift of the model's live traffic against its reference profile, and every version's requests, errors, latency and feedback quality",
			{
				type: "object",
				properties: {
					model: { type: "string" },
					window_seconds: { type: "number" },
					min_rows: { type: "integer" },
					versions: { type: "array", items: { type: "object" } },
					windows: {
						type: "array",
						description:
							"per window: version, start, end, rows, replicas, features/outputs (method, statistic, threshold, drifted), dataset, prediction_drift",
						items: { type: "object" },
					},
					latest: { type: "array", items: { type: "object" } },
					latency_bounds_ms: {
						type: "array",
						items: { type: "number" },
						description:
							"upper bounds of the latency buckets in stats (then +Inf)",
					},
					stats: {
						type: "array",
						description:
							"per version and window, every replica merged, for every served version (with or without a reference profile): start, end, replicas, requests, errors, error_rate, latency_buckets, p50_ms, p99_ms, quality (feedback figures of the answers served in the window, or null), open",
						items: { type: "object" },
					},
				},
			},
			[
				modelParam,
				{
					name: "since",
					in: "query",
					required: false,
					schema: { type: "string", default: "24h" },
					description: "how far back: 30m, 24h, 7d",
				},
				{
					name: "profiles",
					in: "query",
					required: false,
					schema: { type: "string", enum: ["true", "false"] },
					description: "true: include the merged live and reference profiles",
				},
			],
			{ "400": ERROR, "404": ERROR },
		),
		"/v2/models/{model}/feedback": post(
			"modelFeedback",
			"Feedback by request id: {id, reward} or {id, truth} (one per row of the request), or a list; optional version for a reward served by another replica. 404 unknown or expired id, 400 bad reward/truth, 409 feedback twice",
			{
				oneOf: [
					{ type: "object", required: ["id"] },
					{ type: "array", items: { type: "object", required: ["id"] } },
				],
			},
			{
				type: "object",
				properties: {
					accepted: { type: "integer" },
					joined: { type: "integer" },
					byVersion: { type: "integer" },
				},
			},
			[modelParam],
		),
		"/v2/models/{model}/quality": get(
			"modelQuality",
			"Live quality by version from feedback: window and cumulative accuracy, f1_macro, roc_auc, log_loss (classification) or mae, rmse (regression), and rewards",
			{ type: "object" },
			[modelParam],
			{ "404": ERROR },
		),
		"/v2/repository/index": post(
			"repositoryIndex",
			"Model repository index",
			{ type: "object", properties: { ready: { type: "boolean" } } },
			{ type: "array", items: { type: "object" } },
		),
		"/v2/repository/models/{model}/load": post(
			"repositoryModelLoad",
			"Load (or reload) a model",
			{ type: "object" },
			{ type: "object" },
			[modelParam],
		),
		"/v2/repository/models/{model}/unload": post(
			"repositoryModelUnload",
			"Unload a model",
			{ type: "object" },
			{ type: "object" },
			[modelParam],
		),
		"/v2/repository/models/{model}/versions": uploadOp(),
		"/v2/repository/models/{model}/aliases/{alias}": {
			put: {
				operationId: "repositoryAliasSet",
				summary:
					"Move an alias to a version in the registry (admin; servers with a registry only). Audited as the caller; replicas following the alias switch within a second.",
				parameters: [
					modelParam,
					{
						name: "alias",
						in: "path",
						required: true,
						schema: { type: "string" },
					},
				],
				requestBody: {
					required: true,
					content: {
						"application/json": {
							schema: {
								type: "object",
								required: ["version"],
								properties: { version: { type: "integer", minimum: 1 } },
							},
						},
					},
				},
				responses: {
					"200": json(
						{
							type: "object",
							properties: {
								model: { type: "string" },
								alias: { type: "string" },
								version: { type: "integer" },
							},
						},
						"the alias now points at the version",
					),
					"400": ERROR,
					"404": ERROR,
				},
			},
		},
		"/v2/repository/models/{model}/entities": get(
			"repositoryModelEntities",
			"A per-entity family's entities and their load state",
			{ type: "object" },
			[modelParam],
			{ "404": ERROR },
		),
		"/v2/models/{model}/experiment": get(
			"modelExperiment",
			"The traffic policy a model serves under and its shadow versions' comparison figures (agreement, score differences, latency, errors)",
			{ type: "object" },
			[modelParam],
			{ "404": ERROR },
		),
		"/metrics": {
			get: {
				operationId: "metrics",
				summary: "Prometheus metrics",
				responses: {
					"200": {
						description: "Prometheus text exposition",
						content: { "text/plain": { schema: { type: "string" } } },
					},
				},
			},
		},
	};
	for (const e of dp.repositoryIndex(true)) {
		if (e.entity !== undefined) continue;
		try {
			Object.assign(paths, modelPaths(dp.modelMetadata(e.name)));
		} catch {
			// unloaded between the index and now: described by the templated paths only
		}
	}
	withSecurity(paths);
	return {
		openapi: "3.1.0",
		info: {
			title: `${m.name} (Open Inference Protocol v2)`,
			version: m.version,
			description:
				"mlship serve: OIP v2 REST with Triton's binary tensor data and model repository extensions, plus /predict for records and columns.",
		},
		paths,
		components: {
			...COMPONENTS,
			securitySchemes: {
				bearer: {
					type: "http",
					scheme: "bearer",
					description:
						"An API token from `mlship tokens create` (mls_…). Needed once any token exists in the registry (or with --auth required); `x-mlship-scope` on each operation names the scope it needs. See docs/security.md.",
				},
			},
		},
	};
}

/** Marks each operation with the scope it needs (src/server/auth/policy.ts), the bearer scheme and 401/403/429. */
function withSecurity(paths: Record<string, unknown>): void {
	for (const [path, item] of Object.entries(paths))
		for (const [method, op] of Object.entries(item as Record<string, Schema>)) {
			const need = pathNeed(method, path);
			op["x-mlship-scope"] = need;
			if (need === "open") {
				op.security = [];
				continue;
			}
			op.security = [{ bearer: [] }];
			const responses = op.responses as Record<string, unknown>;
			responses["401"] ??= json(ref("Error"), "missing or invalid token");
			responses["403"] ??= json(
				ref("Error"),
				`the token's scopes do not include '${need}', or its model patterns do not match`,
			);
			responses["429"] ??= json(
				ref("Error"),
				"rate limit exceeded (Retry-After)",
			);
		}
}

/** Registers `GET /v2/openapi.json`. */
export function registerOpenApiRoute(
	app: FastifyInstance,
	{ dp }: RestContext,
): void {
	app.get("/v2/openapi.json", () => openApiDocument(dp));
}
