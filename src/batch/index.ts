// "mlship/batch": score a table or files into a sink (runBatch) and work through pending rows (runPending).

export {
	type PendingOptions,
	type PendingSummary,
	runPending,
} from "./pending.ts";
export {
	type BatchRunOptions,
	type BatchRunSummary,
	runBatch,
} from "./run.ts";
