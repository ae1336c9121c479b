// Message headers as an ordered list of [name, bytes | null]: lookups and edits that keep order, repeats and nulls.
import type { Header } from "./types.ts";

/** The first value of header `name` as UTF-8 text; undefined when absent or null. */
export function headerText(
	headers: readonly Header[],
	name: string,
): string | undefined {
	for (const [n, v] of headers)
		if (n === name && v !== null) return v.toString("utf8");
	return undefined;
}

/** A header with a UTF-8 text value. */
export function textHeader(name: string, value: string): Header {
	return [name, Buffer.from(value, "utf8")];
}

/** `headers` without any header named in `names`, then `added`: the others keep their order, repeats and nulls. */
export function replaceHeaders(
	headers: readonly Header[],
	names: ReadonlySet<string>,
	added: readonly Header[],
): Header[] {
	const out: Header[] = [];
	for (const h of headers) if (!names.has(h[0])) out.push(h);
	for (const h of added) out.push(h);
	return out;
}

/** Header carrying the event time (ms since the epoch) on brokers whose messages have no timestamp field (Redis, NATS). */
export const TIMESTAMP_HEADER = "mlship-timestamp";

/** The event time in a `mlship-timestamp` header, if it holds a whole number of milliseconds. */
export function headerTimestamp(
	headers: readonly Header[],
): number | undefined {
	const t = headerText(headers, TIMESTAMP_HEADER);
	if (t === undefined || !/^\d{1,16}$/.test(t)) return undefined;
	return Number(t);
}
