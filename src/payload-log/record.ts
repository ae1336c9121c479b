// One payload-log record per successful prediction: the call's ids, model, latency, and its rows decoded to records.
import { inputsToJson, outputsToRecords } from "../codec/table.ts";
import type { PredictCall } from "../dataplane/instance.ts";

/**
 * What every destination stores (docs/payload-log.md): `inputs` and `outputs` are JSON arrays with one object per
 * row (feature → value, output → value; class indices as class names when the bundle has labels).
 */
export interface PayloadRecord {
	/** The request id ("" when the caller gave none and the transport made none, e.g. `batch run`). */
	id: string;
	/** When the prediction finished, ms since the epoch. */
	time: number;
	model: string;
	/** Registry version; null for a bundle served outside a registry. */
	version: number | null;
	entity: string | null;
	/** The caller's token id, when the server checks tokens. */
	caller: string | null;
	/** Queue wait plus compute, ms. */
	latency_ms: number;
	/** Rows in the request. */
	rows: number;
	/** JSON: `[{feature: value, ...}, ...]`. */
	inputs: string;
	/** JSON: `[{output: value, ...}, ...]`. */
	outputs: string;
}

/** Outputs as JSON: NaN and ±Infinity (which JSON cannot hold) become null, as JSON.stringify writes them. */
function json(rows: unknown): string {
	return JSON.stringify(rows);
}

/** Decodes a call into its record (the caller catches: a hook never throws). */
export function toRecord(call: PredictCall, now = Date.now()): PayloadRecord {
	const inputs = inputsToJson(call.plan, call.inputs);
	return {
		id: call.requestId ?? "",
		time: now,
		model: call.model,
		version: call.version ?? null,
		entity: call.entity ?? null,
		caller: call.caller ?? null,
		latency_ms: call.seconds * 1000,
		rows: inputs.rows,
		inputs: inputs.json,
		outputs: json(outputsToRecords(call.plan, call.outputs)),
	};
}

/** The size a record is counted at (queue limit, `mlship_payload_log_written_bytes_total`): its JSON text. */
export function recordBytes(r: PayloadRecord): number {
	return (
		r.inputs.length +
		r.outputs.length +
		r.id.length +
		r.model.length +
		(r.entity?.length ?? 0) +
		(r.caller?.length ?? 0) +
		64
	);
}

/** A record as one JSON object (the Kafka message value; `inputs`/`outputs` nested, not as strings). */
export function recordJson(r: PayloadRecord): string {
	return `{"id":${JSON.stringify(r.id)},"time":${JSON.stringify(new Date(r.time).toISOString())},"model":${JSON.stringify(r.model)},"version":${r.version ?? "null"},"entity":${JSON.stringify(r.entity)},"caller":${JSON.stringify(r.caller)},"latency_ms":${r.latency_ms},"rows":${r.rows},"inputs":${r.inputs},"outputs":${r.outputs}}`;
}
