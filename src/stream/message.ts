// Stream message format: JSON requests (records or an OIP v2 request) in; results and dead letters out.
import type { Row } from "../codec/table.ts";
import type { PredictResult } from "../dataplane/types.ts";
import { invalidInput, type MlshipError } from "../protocol/errors.ts";
import type { InferenceRequest, InferenceResponse } from "../protocol/types.ts";
import { decodeInferJson } from "../server/rest/infer-request.ts";
import { encodeInferResponse } from "../server/rest/infer-response.ts";
import type { InMessage, OutMessage } from "./types.ts";

/** A decoded request: records (tabular) or an OIP v2 inference request. */
export type StreamRequest =
	| { kind: "records"; id: string; rows: Row[] }
	| { kind: "oip"; id: string; request: InferenceRequest };

/** Headers that name the request id, in order of preference. */
const ID_HEADERS = ["request_id", "x-request-id", "request-id"];

/**
 * Decodes a message value. Accepted JSON: a record `{...}`, a list of records `[{...}]`,
 * `{"records": [...]}` or `{"instances": [...]}` (optionally with `"id"`), or an OIP v2 inference request
 * `{"id"?, "inputs": [...]}`. The request id is the `request_id`/`x-request-id` header, else the body's `id`,
 * else the message's position in the source. Throws MLSHIP_INVALID_INPUT saying what was wrong.
 */
export function decodeRequest(m: InMessage): StreamRequest {
	let header: string | undefined;
	for (const h of ID_HEADERS) {
		header = m.headers[h];
		if (header !== undefined) break;
	}
	if (m.value.length === 0)
		throw invalidInput("empty message: expected a JSON record or request");
	let body: unknown;
	try {
		body = JSON.parse(m.value.toString("utf8"));
	} catch (err) {
		throw invalidInput(`the message is not JSON: ${(err as Error).message}`);
	}
	if (Array.isArray(body))
		return {
			kind: "records",
			id: header ?? m.id,
			rows: rowsOf(body, "the message"),
		};
	if (body === null || typeof body !== "object")
		throw invalidInput(
			`expected a JSON object or a list of records, got ${body === null ? "null" : typeof body}`,
		);
	const obj = body as Record<string, unknown>;
	const bodyId =
		typeof obj.id === "string" || typeof obj.id === "number"
			? String(obj.id)
			: undefined;
	const id = header ?? bodyId ?? m.id;
	if (Array.isArray(obj.inputs)) {
		// Parsed once: the id is the message's (header, body id of any JSON type, or broker id), set below.
		const { id: _bodyId, ...rest } = obj;
		const { request } = decodeInferJson(rest, undefined, m.value.length);
		request.id = id;
		return { kind: "oip", id, request };
	}
	for (const field of ["records", "instances"])
		if (field in obj)
			return { kind: "records", id, rows: rowsOf(obj[field], `'${field}'`) };
	return { kind: "records", id, rows: [obj] };
}

function rowsOf(v: unknown, where: string): Row[] {
	if (!Array.isArray(v) || v.length === 0)
		throw invalidInput(`${where} must be a non-empty list of records`);
	for (let i = 0; i < v.length; i++) {
		const r = v[i];
		if (r === null || typeof r !== "object" || Array.isArray(r))
			throw invalidInput(`${where}: record ${i} is not a JSON object`);
	}
	return v as Row[];
}

/** Headers every result carries besides the input's own. */
export const RESULT_HEADERS = {
	id: "x-request-id",
	model: "mlship-model-name",
	version: "mlship-model-version",
} as const;

/**
 * A result message: `{"id", "key"?, "model_name", "model_version", "predictions": [...]}` for records, the OIP
 * v2 response (with `id`) for an OIP request. Key and headers are the input's.
 */
export function encodeResult(
	m: InMessage,
	req: StreamRequest,
	res: PredictResult | InferenceResponse,
): OutMessage {
	let value: string;
	if (req.kind === "oip")
		value = encodeInferResponse(res as InferenceResponse, req.id, () => false)
			.body as string;
	else {
		const p = res as PredictResult;
		value = JSON.stringify({
			id: req.id,
			key: m.key,
			model_name: p.model_name,
			model_version: p.model_version,
			predictions: p.predictions,
		});
	}
	return {
		key: m.key,
		value,
		headers: {
			...m.headers,
			[RESULT_HEADERS.id]: req.id,
			[RESULT_HEADERS.model]: res.model_name,
			[RESULT_HEADERS.version]: res.model_version ?? "",
		},
	};
}

/** A dead letter: `{"error", "code", "source_id", "key"?, "payload"}` with the original payload as text. */
export function encodeDeadLetter(m: InMessage, err: MlshipError): OutMessage {
	return {
		key: m.key,
		value: JSON.stringify({
			error: err.message,
			code: err.code,
			source_id: m.id,
			key: m.key,
			payload: m.value.toString("utf8"),
		}),
		headers: { ...m.headers, "mlship-error": err.message.slice(0, 500) },
	};
}
