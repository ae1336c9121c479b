// The stream's decode thread: parses a batch of JSON payloads of records into columns, off the processor's main thread.
//
// Receives `{id, bytes, ends}` (the batch's payloads back to back, `ends[i]` the end of payload i) and answers
// `{id, numbers, decoded}` with `decoded[i]` the columns of payload i (see DecodedColumns) or null when the payload
// is not a plain list of uniform records; the main thread then decodes that one itself, so every error text, id
// rule and edge case stays the main path's (`decodeRequest`). Numbers of all payloads travel in one transferred
// Float64Array.
import { parentPort } from "node:worker_threads";
import type { DecodedColumns, DecodeReply, DecodeTask } from "./decode.ts";
import { type Parsed, parseRecords, scanRecords } from "./scan.ts";

const port = parentPort;
if (port === null) throw new Error("decode-worker.ts runs as a worker thread");
const decoder = new TextDecoder("utf-8", { fatal: true });
port.on("message", (task: DecodeTask) => {
	const parsed: (Parsed | null)[] = [];
	let start = 0;
	let total = 0;
	for (const end of task.ends) {
		const bytes = task.bytes.subarray(start, end);
		// The common case (numbers only) without building the records; the rest through JSON.parse.
		let p: Parsed | null = scanRecords(bytes);
		if (p === null)
			try {
				p = parseRecords(decoder.decode(bytes));
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
	const reply: DecodeReply = {
		id: task.id,
		bytes: task.bytes,
		numbers,
		decoded,
	};
	port.postMessage(reply, [numbers.buffer, task.bytes.buffer as ArrayBuffer]);
});
