// Test helpers for stream messages: build one from text, read a header or the key as text.
import { headerText } from "../../src/stream/headers.ts";
import { runStream, type StreamOptions } from "../../src/stream/run.ts";
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

/** Runs mlship stream in-process until `done()` holds (polled every 50 ms, at most 400 times), then drains and stops it. */
export async function streamUntil(
	opts: StreamOptions,
	done: () => Promise<boolean> | boolean,
): Promise<void> {
	const s = await runStream(opts);
	try {
		for (let i = 0; i < 400 && !(await done()); i++)
			await new Promise((r) => setTimeout(r, 50));
	} finally {
		s.stop();
		await s.done;
	}
}
