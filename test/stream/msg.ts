// Test helpers for stream messages: build one from text, read a header or the key as text.
import { headerText } from "../../src/stream/headers.ts";
import type { Header, OutMessage } from "../../src/stream/types.ts";

/** A message with a UTF-8 key (null: none), value and headers. */
export function textMessage(
	key: string | null,
	value: string,
	headers: Record<string, string> = {},
): OutMessage {
	return {
		key: key === null ? null : Buffer.from(key, "utf8"),
		value: Buffer.from(value, "utf8"),
		headers: Object.entries(headers).map(
			([n, v]): Header => [n, Buffer.from(v, "utf8")],
		),
	};
}

/** Header `name`'s first value as text. */
export const hdr = (m: { headers: readonly Header[] }, name: string) =>
	headerText(m.headers, name);

/** Bytes (key or value) as UTF-8 text; undefined for null. */
export const text = (b: Buffer | null) => b?.toString("utf8");
