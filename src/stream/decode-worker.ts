// The stream's decode thread: parses a batch of JSON payloads of records into columns, off the processor's main thread.
//
// Receives `{id, bytes, ends}` (the batch's payloads back to back, `ends[i]` the end of payload i) and answers
// `{id, numbers, decoded}` with `decoded[i]` the columns of payload i (see DecodedColumns) or null when the payload
// is not a plain list of uniform records; the main thread then decodes that one itself, so every error text, id
// rule and edge case stays the main path's (`decodeRequest`). Numbers of all payloads travel in one transferred
// Float64Array.
import { parentPort } from "node:worker_threads";
import type { DecodedColumns, DecodeReply, DecodeTask } from "./decode.ts";

/** Columns of one payload: numbers column-major in `numbers` (n per key), a column with other values in `other`. */
interface Parsed {
	keys: string[];
	n: number;
	bodyId: string | undefined;
	numbers: Float64Array;
	/** Per key: its values when not all are numbers (then its part of `numbers` is unused). */
	other: (unknown[] | undefined)[];
}

/** The records of a body this thread handles: a list, or `{"records"|"instances": [...], "id"?}`; else null. */
function recordsOf(
	body: unknown,
): { rows: unknown[]; bodyId: string | undefined } | null {
	if (Array.isArray(body)) return { rows: body, bodyId: undefined };
	if (body === null || typeof body !== "object") return null;
	const obj = body as Record<string, unknown>;
	if ("inputs" in obj) return null;
	const bodyId =
		typeof obj.id === "string" || typeof obj.id === "number"
			? String(obj.id)
			: undefined;
	for (const field of ["records", "instances"])
		if (field in obj) {
			const rows = obj[field];
			return Array.isArray(rows) ? { rows, bodyId } : null;
		}
	return null;
}

function parse(text: string): Parsed | null {
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		return null;
	}
	const got = recordsOf(body);
	if (got === null || got.rows.length === 0) return null;
	const { rows, bodyId } = got;
	const first = rows[0];
	if (first === null || typeof first !== "object" || Array.isArray(first))
		return null;
	const keys = Object.keys(first);
	// A key that would set an object's prototype when copied: the main path reads such records.
	if (keys.includes("__proto__")) return null;
	const n = rows.length;
	const k = keys.length;
	const numbers = new Float64Array(n * k);
	const other: (unknown[] | undefined)[] = new Array(k).fill(undefined);
	for (let r = 0; r < n; r++) {
		const row = rows[r];
		if (row === null || typeof row !== "object" || Array.isArray(row))
			return null;
		// Same keys as the first record, or the main path decides (missing keys, extra keys: its own messages).
		let count = 0;
		for (const _ in row) count++;
		if (count !== k) return null;
		for (let c = 0; c < k; c++) {
			const key = keys[c] as string;
			if (!Object.hasOwn(row, key)) return null;
			const v = (row as Record<string, unknown>)[key];
			const o = other[c];
			if (o !== undefined) o[r] = v;
			else if (typeof v === "number") numbers[c * n + r] = v;
			else {
				// The first value that is not a number: the column goes as a plain list.
				const list: unknown[] = Array.from(numbers.subarray(c * n, c * n + r));
				list[r] = v;
				other[c] = list;
			}
		}
	}
	return { keys, n, bodyId, numbers, other };
}

const port = parentPort;
if (port === null) throw new Error("decode-worker.ts runs as a worker thread");
const decoder = new TextDecoder("utf-8", { fatal: true });
port.on("message", (task: DecodeTask) => {
	const parsed: (Parsed | null)[] = [];
	let start = 0;
	let total = 0;
	for (const end of task.ends) {
		let p: Parsed | null = null;
		try {
			p = parse(decoder.decode(task.bytes.subarray(start, end)));
		} catch {
			// Not UTF-8: the main path says so in its own words.
		}
		parsed.push(p);
		if (p) total += p.numbers.length;
		start = end;
	}
	const numbers = new Float64Array(total);
	let at = 0;
	let prevKeys: string[] | undefined;
	const decoded = parsed.map((p): DecodedColumns | null => {
		if (p === null) return null;
		numbers.set(p.numbers, at);
		const base = at;
		at += p.numbers.length;
		const other: Record<string, unknown[]> = {};
		const offsets = p.keys.map((key, c) => {
			const o = p.other[c];
			if (o === undefined) return base + c * p.n;
			other[key] = o;
			return -1;
		});
		// Consecutive payloads usually have the same columns: their names cross the thread once.
		const same =
			prevKeys !== undefined &&
			prevKeys.length === p.keys.length &&
			prevKeys.every((k, i) => k === p.keys[i]);
		prevKeys = p.keys;
		return {
			keys: same ? null : p.keys,
			n: p.n,
			bodyId: p.bodyId,
			offsets,
			other,
		};
	});
	const reply: DecodeReply = { id: task.id, numbers, decoded };
	port.postMessage(reply, [numbers.buffer]);
});
