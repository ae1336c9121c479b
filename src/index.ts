// mlship's public API: small on purpose; the rest is internal.

export {
	type PendingOptions,
	type PendingSummary,
	runPending,
} from "./batch/pending.ts";
export {
	type BatchRunOptions,
	type BatchRunSummary,
	runBatch,
} from "./batch/run.ts";
export { type Bundle, readBundle } from "./bundle/bundle.ts";
export type { Manifest } from "./bundle/manifest.ts";
export { type LoadModelOptions, loadModel, Model } from "./model.ts";
export type { Datatype } from "./protocol/datatypes.ts";
export { type ErrorCode, MlshipError } from "./protocol/errors.ts";
export type {
	InferenceRequest,
	InferenceResponse,
	Signature,
	Tensor,
	TensorSpec,
} from "./protocol/types.ts";
export { openRegistry } from "./registry/open.ts";
export type { ModelStore, ModelVersion } from "./registry/types.ts";
export { registerDuckDBFunctions } from "./sql/duckdb.ts";
export type { RegisterOptions, SqlModels } from "./sql/models.ts";
export { registerSqliteFunctions } from "./sql/sqlite.ts";
export type { StreamStats } from "./stream/processor.ts";
export {
	type RunningStream,
	runStream,
	type StreamOptions,
} from "./stream/run.ts";
