// Stream message format: JSON requests (records or an OIP v2 request) in; results and dead letters out.

import { isUtf8 } from "node:buffer";
import type { Row } from "../codec/table.ts";
import type { PredictResult } from "../dataplane/types.ts";
import { invalidInput, type MlshipError } from "../protocol/errors.ts";
import { requestIdOf } from "../protocol/request-id.ts";
import type { InferenceRequest, InferenceResponse } from "../protocol/types.ts";
import { decodeInferJson } from "../server/rest/infer-request.ts";
import { encodeInferResponse } from "../server/rest/infer-response.ts";
import { jsonFormat, type PayloadFormat } from "./format.ts";
import { headerText, replaceHeaders, textHeader } from "./headers.ts";
import type { Header, InMessage, OutMessage } from "./types.ts";

/** A decoded request: records (tabular) or an OIP v2 inference request. */
export type StreamRequest =
	| { kind: "records"; id: string; rows: Row[] }
	| {
			kind: "columns";
			id: string;
			/** Records as columns (the decode thread's: numbers as Float64Array views). */
			columns: Record<string, ArrayLike<unknown>>;
	  }
	| { kind: "oip"; id: string; request: InferenceRequest };

/** Headers that name the request id, in order of preference. */
const ID_HEADERS = ["x-request-id", "request_id", "request-id"];

/**
 * The id of a message nobody named: its place in the source, `<topic>/<partition>/<offset>` (partition -1 where the
 * broker has none), so a redelivered message keeps its id and feedback can still refer to it; `line:N` for a
 * JSON-lines file or stdin.
 */
export function positionId(m: InMessage): string {
	const o = m.origin;
	// A JSON-lines file or stdin keeps its `line:N` (the same file scored again gives the same ids).
	return o && !m.id.startsWith("line:")
		? `${o.topic}/${o.partition}/${o.offset}`
		: m.id;
}

/**
 * Decodes a message value (JSON by default; see PayloadFormat). Accepted bodies: a record `{...}`, a list of records `[{...}]`,
 * `{"records": [...]}` or `{"instances": [...]}` (optionally with `"id"`), or an OIP v2 inference request
 * `{"id"?, "inputs": [...]}`. The request id is the `x-request-id` (or `request_id`, `request-id`) header, else the
 * body's `id`, else the message's position (`positionId`). A client's id must be 1–256 printable ASCII characters,
 * as on REST. Throws MLSHIP_INVALID_INPUT saying what was wrong.
 */
export function decodeRequest(
	m: InMessage,
	format: PayloadFormat = jsonFormat,
): StreamRequest {
	const header = headerId(m);
	if (m.value === null)
		throw invalidInput(
			"a tombstone (null value): nothing to score; forward, skip or dead-letter it with --tombstones",
		);
	if (m.value.length === 0)
		throw invalidInput("empty message: expected a JSON record or request");
	const body = format.decode(m.value);
	if (Array.isArray(body))
		return {
			kind: "records",
			id: idOf(m, header, undefined),
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
	const id = idOf(m, header, bodyId);
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

/** The request id of a message whose body the decode thread read: as `decodeRequest` gives it. */
export function requestIdOfMessage(
	m: InMessage,
	bodyId: string | undefined,
): string {
	return idOf(m, headerId(m), bodyId);
}

/** The id a header names (`x-request-id`, `request_id`, `request-id`, in that order). */
function headerId(m: InMessage): string | undefined {
	for (const h of ID_HEADERS) {
		const v = headerText(m.headers, h);
		if (v !== undefined) return v;
	}
	return undefined;
}

/** The client's id (header, else body; checked as on REST), else the message's position. */
function idOf(
	m: InMessage,
	header: string | undefined,
	bodyId: string | undefined,
): string {
	const given = header ?? bodyId;
	return given === undefined || given === ""
		? positionId(m)
		: requestIdOf(given, undefined);
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

const RESULT_HEADER_NAMES: ReadonlySet<string> = new Set(
	Object.values(RESULT_HEADERS),
);

/** The key as text for a JSON body: only when it is UTF-8 (a binary key travels as the message key alone). */
function keyText(key: Buffer | null): string | undefined {
	return key !== null && isUtf8(key) ? key.toString("utf8") : undefined;
}

/** What a result carries from its input besides the payload: key, event time, input partition. */
function carried(
	m: InMessage,
): Pick<OutMessage, "key" | "timestamp" | "partition"> {
	return {
		key: m.key,
		timestamp: m.timestamp,
		partition:
			m.origin !== undefined && m.origin.partition >= 0
				? m.origin.partition
				: undefined,
	};
}

/**
 * A result message: `{"id", "key"?, "model_name", "model_version", "predictions": [...]}` for records, the OIP
 * v2 response (with `id`) for an OIP request. Key (bytes), headers (in order, repeats and nulls kept) and event
 * time are the input's; the request id and model headers replace any of the same name.
 */
export function encodeResult(
	m: InMessage,
	req: StreamRequest,
	res: PredictResult | InferenceResponse,
	format: PayloadFormat = jsonFormat,
): OutMessage {
	let value: Buffer;
	if (req.kind === "oip")
		value = Buffer.from(
			encodeInferResponse(res as InferenceResponse, req.id, () => false)
				.body as string,
			"utf8",
		);
	else {
		const p = res as PredictResult;
		value = format.encode({
			id: req.id,
			key: keyText(m.key),
			model_name: p.model_name,
			model_version: p.model_version,
			predictions: p.predictions,
		});
	}
	return {
		...carried(m),
		value,
		headers: replaceHeaders(m.headers, RESULT_HEADER_NAMES, [
			textHeader(RESULT_HEADERS.id, req.id),
			textHeader(RESULT_HEADERS.model, res.model_name),
			textHeader(RESULT_HEADERS.version, res.model_version ?? ""),
		]),
	};
}

/** A tombstone for the input's key: a compacted result topic then drops that key's prediction. */
export function encodeTombstone(m: InMessage): OutMessage {
	return { ...carried(m), value: null, headers: [...m.headers] };
}

/** How dead letters are written: the original record plus Kafka Connect-style error headers, or a JSON envelope. */
export type DeadLetterFormat = "connect" | "envelope";
export const DEAD_LETTER_FORMATS: readonly DeadLetterFormat[] = [
	"connect",
	"envelope",
];

/** Kafka Connect's dead-letter header names (`errors.deadletterqueue.context.headers.enable`), plus the time of failure. */
export const CONNECT_HEADERS = {
	topic: "__connect.errors.topic",
	partition: "__connect.errors.partition",
	offset: "__connect.errors.offset",
	connector: "__connect.errors.connector.name",
	exceptionClass: "__connect.errors.exception.class.name",
	exceptionMessage: "__connect.errors.exception.message",
	timestamp: "__connect.errors.timestamp",
} as const;
const CONNECT_HEADER_NAMES: ReadonlySet<string> = new Set(
	Object.values(CONNECT_HEADERS),
);

/**
 * A dead letter. `connect` (the default): the original record byte for byte (key, value — null for a tombstone —,
 * headers, timestamp) with Connect's `__connect.errors.*` headers added (topic, partition, offset, the error code as
 * the exception class, its message, the time of failure); a replayed dead letter is the original request again.
 * `envelope`: `{"error", "code", "source_id", "key"?, "payload"}` with the payload as text (`payload_base64`
 * when it is not UTF-8; `payload: null` for a tombstone).
 */
export function encodeDeadLetter(
	m: InMessage,
	err: MlshipError,
	format: DeadLetterFormat = "connect",
): OutMessage {
	if (format === "connect") {
		const added: Header[] = [];
		if (m.origin) {
			added.push(textHeader(CONNECT_HEADERS.topic, m.origin.topic));
			added.push(
				textHeader(CONNECT_HEADERS.partition, String(m.origin.partition)),
			);
			added.push(textHeader(CONNECT_HEADERS.offset, m.origin.offset));
		}
		added.push(
			textHeader(CONNECT_HEADERS.connector, "mlship"),
			textHeader(CONNECT_HEADERS.exceptionClass, err.code),
			textHeader(CONNECT_HEADERS.exceptionMessage, err.message),
			textHeader(CONNECT_HEADERS.timestamp, String(Date.now())),
		);
		return {
			key: m.key,
			value: m.value,
			headers: replaceHeaders(m.headers, CONNECT_HEADER_NAMES, added),
			timestamp: m.timestamp,
		};
	}
	const payload =
		m.value === null
			? { payload: null }
			: isUtf8(m.value)
				? { payload: m.value.toString("utf8") }
				: { payload_base64: m.value.toString("base64") };
	return {
		key: m.key,
		value: Buffer.from(
			JSON.stringify({
				error: err.message,
				code: err.code,
				source_id: m.id,
				key: keyText(m.key),
				...payload,
			}),
			"utf8",
		),
		headers: replaceHeaders(m.headers, ERROR_HEADER_NAMES, [
			textHeader("mlship-error", err.message.slice(0, 500)),
		]),
		timestamp: m.timestamp,
	};
}
const ERROR_HEADER_NAMES: ReadonlySet<string> = new Set(["mlship-error"]);

/** A dead letter's headers without the error headers it was given: a replay sends the original record again. */
export function stripDeadLetterHeaders(headers: readonly Header[]): Header[] {
	return replaceHeaders(headers, CONNECT_HEADER_NAMES, []);
}
