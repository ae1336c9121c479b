// The request id every answer carries (so feedback and payload logs can refer to a request), and the version header.
import { randomFillSync } from "node:crypto";
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
	if (given === undefined || given === "") return newRequestId();
	if (given.length > MAX_REQUEST_ID || !/^[\x20-\x7e]+$/.test(given))
		throw invalidInput(
			`the request id (OIP 'id' or header ${REQUEST_ID_HEADER}) must be 1–${MAX_REQUEST_ID} printable ASCII characters`,
		);
	return given;
}

/** Ids drawn per refill of the random pool (16 bytes each), as node's own randomUUID buffers them. */
const IDS_PER_FILL = 128;
const random = Buffer.alloc(16 * IDS_PER_FILL);
let nextId = IDS_PER_FILL;
const text = Buffer.alloc(36);
const HEX = Buffer.from("0123456789abcdef", "latin1");

/**
 * A new random (version 4) UUID as one flat string. `crypto.randomUUID` returns a rope of ~20 joined pieces (~560
 * bytes allocated per id, and ~450 more for as long as it is kept, e.g. by the feedback join); this writes the 36
 * characters into a buffer and reads them back once.
 * @example newRequestId() // "3b241101-e2bb-4255-8caf-4136c566a962"
 */
export function newRequestId(): string {
	if (nextId === IDS_PER_FILL) {
		randomFillSync(random);
		nextId = 0;
	}
	const at = 16 * nextId++;
	let o = 0;
	for (let i = 0; i < 16; i++) {
		let b = random[at + i] as number;
		if (i === 6)
			b = (b & 0x0f) | 0x40; // version 4
		else if (i === 8) b = (b & 0x3f) | 0x80; // RFC 4122 variant
		if (i === 4 || i === 6 || i === 8 || i === 10) text[o++] = 0x2d; // -
		text[o++] = HEX[b >> 4] as number;
		text[o++] = HEX[b & 0x0f] as number;
	}
	return text.toString("latin1", 0, 36);
}
