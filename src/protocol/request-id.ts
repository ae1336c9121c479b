// The request id every answer carries (so feedback and payload logs can refer to a request), and the version header.
import { randomUUID } from "node:crypto";
import { invalidInput } from "./errors.ts";

/** The request id a client may set (REST header, gRPC metadata); the answer carries it back. */
export const REQUEST_ID_HEADER = "x-request-id";
/** The answer's header naming the version that served it. */
export const VERSION_HEADER = "mlship-model-version";
/** Longest request id accepted from a client (longer ones are refused, not cut). */
export const MAX_REQUEST_ID = 256;

/**
 * The request id of a call: the OIP body's `id`, else the `x-request-id` header/metadata, else a new UUID.
 * A client's id must be 1–256 printable ASCII characters (it goes into logs and headers; spaces allowed).
 */
export function requestIdOf(
	bodyId: string | undefined,
	header: string | string[] | undefined,
): string {
	const given =
		bodyId !== undefined && bodyId !== ""
			? bodyId
			: Array.isArray(header)
				? header[0]
				: header;
	if (given === undefined || given === "") return randomUUID();
	if (given.length > MAX_REQUEST_ID || !/^[\x20-\x7e]+$/.test(given))
		throw invalidInput(
			`the request id (OIP 'id' or header ${REQUEST_ID_HEADER}) must be 1–${MAX_REQUEST_ID} printable ASCII characters`,
		);
	return given;
}
