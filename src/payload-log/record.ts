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

/**
 * The string as one flat piece. JSON built by `+=` is a rope (a tree of the pieces) until something reads it: kept in
 * the queue as a rope, a record of 30 features took 2.6× its length in heap, 64 features 5.3× (measured), so the
 * queue's byte budget counted a fraction of its memory. Converting it to a number makes V8 flatten it (what the
 * `flatstr` package does); the pieces become garbage.
 */
function flat(s: string): string {
	Number(s);
	return s;
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
		inputs: flat(inputs.json),
		outputs: flat(json(outputsToRecords(call.plan, call.outputs))),
	};
}

/**
 * What a queued record holds beyond its text: the object, its fields and string headers (measured ~150–200 bytes
 * of heap per record beside the text; counted high so the queue's budget bounds its memory).
 */
export const RECORD_OVERHEAD = 256;

/**
 * The size a record is counted at (the queue's byte budget, `mlship_payload_log_written_bytes_total`): its text
 * (one byte per character: JSON of numbers and names is ASCII; V8 keeps such strings one byte per character) plus
 * RECORD_OVERHEAD.
 */
export function recordBytes(r: PayloadRecord): number {
	return (
		r.inputs.length +
		r.outputs.length +
		r.id.length +
		r.model.length +
		(r.entity?.length ?? 0) +
		(r.caller?.length ?? 0) +
		RECORD_OVERHEAD
	);
}

/** A record as one JSON object (the Kafka message value; `inputs`/`outputs` nested, not as strings). */
export function recordJson(r: PayloadRecord): string {
	return `{"id":${JSON.stringify(r.id)},"time":${JSON.stringify(new Date(r.time).toISOString())},"model":${JSON.stringify(r.model)},"version":${r.version ?? "null"},"entity":${JSON.stringify(r.entity)},"caller":${JSON.stringify(r.caller)},"latency_ms":${r.latency_ms},"rows":${r.rows},"inputs":${r.inputs},"outputs":${r.outputs}}`;
}
