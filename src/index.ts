// mlship's public API ("mlship"): the embedded model and the registry. Small on purpose, and light to import:
// nothing here loads a server, a broker client, a database driver or DuckDB. The other patterns have their own
// entry points: "mlship/server", "mlship/stream", "mlship/batch", "mlship/sql".

export { type Bundle, readBundle } from "./bundle/bundle.ts";
export type { Manifest } from "./bundle/manifest.ts";
export type { Columns, Row } from "./codec/table.ts";
export type {
	Contribution,
	ExplainResult,
	TargetExplanation,
} from "./dataplane/explain.ts";
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
