// The protocol-neutral data plane every entry point (REST, gRPC, stream, batch, SQL) calls.
import type { MetricObjectWithValues, MetricValue } from "prom-client";
import type { FeatureSpec } from "../codec/feature-specs.ts";
import type { Row } from "../codec/table.ts";
import type { StoredRoute } from "../experiments/policy.ts";
import type {
	FeedbackItem,
	FeedbackOutcome,
	TruthListener,
} from "../feedback/join.ts";
import type { VersionQuality } from "../feedback/quality.ts";
import type { TraceSpan } from "../protocol/trace.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	TensorSpec,
} from "../protocol/types.ts";
import type { ModelStore, VersionTotals } from "../registry/types.ts";
import type { ExplainOptions, ExplainResult } from "./explain.ts";

/** A served model version's cumulative request totals (requests: ok, error, timeout; errors: error, timeout). */
export interface ServedTotals {
	/** The served name. */
	model: string;
	version: number;
	totals: VersionTotals;
}

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
	/**
	 * The request id: the client's (OIP `id`, header `x-request-id`), else one the transport generated. It is
	 * echoed in the answer and handed to predict hooks, so feedback and payload logs can refer to the request.
	 */
	requestId?: string;
	/** Who called: the id of the caller's API token, when the server checks tokens. */
	caller?: string;
	/** A request header (lower-case name) or gRPC metadata value: a traffic policy's sticky key may come from one. */
	header?: (name: string) => string | undefined;
	/** Request parameters of a predict call (OIP infer requests carry their own): a sticky key may come from one. */
	parameters?: Record<string, unknown>;
	/** The transport's span of this request when tracing is on: queue and compute spans become its children. */
	trace?: TraceSpan;
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

/** The figures a user reads (rates and means) of a shadow's stats. */
export interface ShadowSummary {
	version: string;
	compared: number;
	errors: number;
	dropped: number;
	/** Share of label elements that agree (undefined: the model has no label output). */
	agreement?: number;
	meanAbsDiff?: number;
	maxAbsDiff?: number;
	/** Mean latency in ms of the primary answers and of the shadow copies compared. */
	primaryMs?: number;
	shadowMs?: number;
}

/** A served model's traffic policy and its shadows' comparison figures (see DataPlane.experiment). */
export interface ExperimentInfo {
	name: string;
	/** The policy being applied (with its alias), as read from the registry. */
	route?: StoredRoute;
	/** The versions loaded for it. */
	versions: string[];
	shadows: ShadowSummary[];
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
	/** The request id (InferOptions.requestId), when the transport set one. */
	id?: string;
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
	 * The traffic policy a model serves under (loaded from its alias) and, per shadow version, the comparison
	 * figures since the server started; `policy` undefined when the model has none.
	 */
	experiment?(name: string): ExperimentInfo;
	/**
	 * Explains predictions of records or columns: per row and target, each feature's contribution to the raw
	 * output and the `top` largest (exact TreeSHAP on the trees runtime; other models: MLSHIP_UNSUPPORTED_MODEL).
	 */
	explain?(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts?: ExplainOptions & { entity?: string },
	): Promise<ExplainResponse>;
	/** A per-entity family's entities (from the registry index the server keeps) with their load state. */
	entities(name: string): Promise<FamilyInfo>;
	/** The model repository index (`POST /v2/repository/index`). */
	repositoryIndex(readyOnly?: boolean): RepositoryEntry[];
	/** Loads (or reloads) a known model by name. */
	load(name: string): Promise<void>;
	/** Unloads a model; in-flight requests finish first. */
	unload(name: string): Promise<void>;
	/**
	 * Adds a model to serve (a bundle path or registry reference as `source`; not loaded yet: call `load`).
	 * MLSHIP_ALREADY_EXISTS when the name is served.
	 */
	addModel(spec: { name: string; source: string }): void;
	/** Forgets a model that is not loaded (e.g. one whose first load failed); false when it is loaded or unknown. */
	removeModel(name: string): boolean;
	/** The registry's reachability, when models come from one (loaded models keep serving without it). */
	registry(): { available: boolean; reason?: string } | undefined;
	/**
	 * The registry the server serves from (a registry URI was given, or a served model came from one), e.g. to store
	 * an uploaded version; undefined when every model is a bundle on disk.
	 */
	registryStore(): Promise<ModelStore> | undefined;
	/**
	 * Feedback on answers of model `name` by request id (`POST /v2/models/{name}/feedback`): rewards and truths,
	 * checked all first, then applied. MLSHIP_INVALID_ARGUMENT when the server keeps no request ids (feedback off).
	 */
	feedback?(name: string, items: readonly FeedbackItem[]): FeedbackOutcome;
	/** Live quality of each version of `name` from its feedback (window and cumulative); [] without feedback. */
	quality?(name: string): VersionQuality[];
	/** Prometheus exposition of every metric (`GET /metrics`). */
	metrics(): Promise<{ contentType: string; body: string }>;
	/** Cumulative request totals per served model and version since start (what the monitor records per window). */
	requestTotals?(): Promise<ServedTotals[]>;
	/** Calls `fn` for every truth joined to an answer (feedback on); returns its removal. */
	onTruth?(fn: TruthListener): () => void;
	/** The same metrics as prom-client JSON (summed across `serve --processes` workers by the primary). */
	metricsJson?(): Promise<MetricObjectWithValues<MetricValue<string>>[]>;
	/** Stops accepting work, finishes in-flight requests, unloads everything. */
	close(): Promise<void>;
}
