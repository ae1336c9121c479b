// The protocol-neutral data plane every entry point (REST, gRPC, stream, batch, SQL) calls.
import type { FeatureSpec } from "../codec/feature-specs.ts";
import type { Row } from "../codec/table.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	TensorSpec,
} from "../protocol/types.ts";
import type { ExplainResult } from "./explain.ts";

/** Lifecycle state of a served model version (as in the repository extension's index). */
export type ModelState = "READY" | "LOADING" | "UNAVAILABLE" | "UNLOADED";

/** What a transport needs to describe a model (OIP model metadata plus tabular extras). */
export interface ModelInfo {
	name: string;
	/** Served versions, newest last; the default version is the last. */
	versions: string[];
	/** The version this info describes. */
	version: string;
	/** OIP platform string, e.g. "onnx_onnxv1". */
	platform: string;
	inputs: TensorSpec[];
	outputs: TensorSpec[];
	/** Table columns the model reads (records/columns route). */
	features: string[];
	labels?: string[];
	/** The bundle's task (classification, regression, other), when it says. */
	task?: string;
	/** Each feature column: datatype and the values it accepts (metadata `parameters`, OpenAPI schemas). */
	featureSpecs?: FeatureSpec[];
	state: ModelState;
}

export interface RepositoryEntry {
	name: string;
	version: string;
	state: ModelState;
	reason: string;
	/** For a loaded member of a per-entity family: its entity (`name` is the family). */
	entity?: string;
}

export interface InferOptions {
	/** Reject when the request cannot be served within this many ms (queue wait + compute). */
	timeoutMs?: number;
	/** For a per-entity family: the entity the transport named (e.g. header `x-mlship-entity`). */
	entity?: string;
}

/** A per-entity family as a server sees it: which entities have a model, and which are loaded. */
export interface FamilyInfo {
	name: string;
	/** The request key that names the entity (header x-mlship-entity works too). */
	key: string;
	/** Whether entities without a model are served by the default. */
	fallback: boolean;
	entities: { entity: string; version: number; state: ModelState }[];
}

/** Explanations of records, with the model version that computed them. */
export interface ExplainResponse extends ExplainResult {
	model_name: string;
	model_version: string;
}

/** Records in, records out: the convenience route for tabular users. */
export interface PredictResult {
	model_name: string;
	model_version: string;
	predictions: Row[];
}

/**
 * Every entry point decodes into these calls and encodes what they return; nothing model-specific lives
 * in an adapter. Errors are MlshipError (codes map to HTTP/gRPC status in protocol/errors.ts).
 */
export interface DataPlane {
	/** Server metadata (`GET /v2`). */
	metadata(): { name: string; version: string; extensions: string[] };
	live(): boolean;
	/** True when every model the server was asked to serve is loaded and the server is not draining. */
	ready(): boolean;
	/** Model metadata; `version` undefined = the default (newest) version. Throws MLSHIP_MODEL_NOT_FOUND. */
	modelMetadata(name: string, version?: string): ModelInfo;
	/** Whether a model (version) is loaded and serving. Throws MLSHIP_MODEL_NOT_FOUND for unknown names. */
	modelReady(name: string, version?: string): boolean;
	/** Runs an OIP inference request through the model's scheduler. */
	infer(
		name: string,
		version: string | undefined,
		request: InferenceRequest,
		opts?: InferOptions,
	): Promise<InferenceResponse>;
	/** Records (`[{...}]`) or columns (`{col: [...]}`) in, records out with class names. */
	predict(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts?: InferOptions,
	): Promise<PredictResult>;
	/**
	 * Explains predictions of records or columns: per row and target, each feature's contribution to the raw
	 * output and the `top` largest (exact TreeSHAP on the trees runtime; other models: MLSHIP_UNSUPPORTED_MODEL).
	 */
	explain?(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts?: { top?: number; entity?: string },
	): Promise<ExplainResponse>;
	/** A per-entity family's entities (from the registry index the server keeps) with their load state. */
	entities(name: string): Promise<FamilyInfo>;
	/** The model repository index (`POST /v2/repository/index`). */
	repositoryIndex(readyOnly?: boolean): RepositoryEntry[];
	/** Loads (or reloads) a known model by name. */
	load(name: string): Promise<void>;
	/** Unloads a model; in-flight requests finish first. */
	unload(name: string): Promise<void>;
	/** The registry's reachability, when models come from one (loaded models keep serving without it). */
	registry(): { available: boolean; reason?: string } | undefined;
	/** Prometheus exposition of every metric (`GET /metrics`). */
	metrics(): Promise<{ contentType: string; body: string }>;
	/** Stops accepting work, finishes in-flight requests, unloads everything. */
	close(): Promise<void>;
}
