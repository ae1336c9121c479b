// Request bodies: every body is read as raw bytes; JSON (and the binary extension's JSON header) is parsed here.
import type { FastifyInstance } from "fastify";
import { invalidInput } from "../../protocol/errors.ts";
import type { Parameters } from "../../protocol/types.ts";

/** Header of Triton's binary tensor data extension: byte length of the JSON part of the body. */
export const HEADER_LENGTH = "inference-header-content-length";

/**
 * Makes every request body (any content type, or none) arrive as a Buffer. JSON is parsed by the route, so
 * a malformed body is answered 400 without closing a keep-alive connection, and a binary body (JSON header
 * plus tensor bytes) is never decoded as text. Bodies over `bodyLimit` fail with FST_ERR_CTP_BODY_TOO_LARGE.
 */
export function registerRawBodyParser(app: FastifyInstance): void {
	app.removeAllContentTypeParsers();
	app.addContentTypeParser(
		"*",
		{ parseAs: "buffer" },
		(_req, body: Buffer, done) => done(null, body),
	);
}

/** Parses `bytes[0, end)` as JSON; a syntax error becomes a 400 that quotes the parser. */
export function parseJson(bytes: Buffer, end = bytes.length): unknown {
	try {
		return JSON.parse(bytes.toString("utf8", 0, end));
	} catch (err) {
		if (err instanceof SyntaxError)
			throw invalidInput(`malformed JSON: ${err.message}`);
		throw err;
	}
}

/** The body of a JSON-only route: undefined when empty; binary extension bodies are refused. */
export function jsonBody(
	body: unknown,
	headers: Record<string, unknown>,
): unknown {
	if (!Buffer.isBuffer(body) || body.length === 0) return undefined;
	if (headers[HEADER_LENGTH] !== undefined)
		throw invalidInput(
			"binary tensor data (Inference-Header-Content-Length) is only accepted by the infer route",
		);
	return parseJson(body);
}

/** True for a JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
	return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A short description of a JSON value for error messages. */
export function kindOf(v: unknown): string {
	if (v === null) return "null";
	if (Array.isArray(v)) return "a list";
	if (typeof v === "object") return "an object";
	if (typeof v === "string")
		return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
	return `${typeof v} ${String(v)}`;
}

/**
 * Validates an OIP `parameters` object (values are strings, numbers or booleans) into a fresh object.
 * `__proto__` is refused: it would set the prototype of the copy instead of a key.
 */
export function parseParameters(v: unknown, where: string): Parameters {
	if (!isObject(v))
		throw invalidInput(`${where} must be an object, got ${kindOf(v)}`);
	const out: Parameters = {};
	for (const key of Object.keys(v)) {
		const value = v[key];
		if (key === "__proto__")
			throw invalidInput(`${where}: '__proto__' is not allowed as a key`);
		if (
			typeof value !== "string" &&
			typeof value !== "number" &&
			typeof value !== "boolean"
		)
			throw invalidInput(
				`${where}.${key} must be a string, number or boolean, got ${kindOf(value)}`,
			);
		out[key] = value;
	}
	return out;
}
