// JSON-lines connector: stdin/stdout or files, one message per line (the embedded default; no broker).
import { createReadStream } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { InMessage, OutMessage, Sink, Source } from "../types.ts";
import { IteratorPuller } from "./pull.ts";

const NEWLINE = Buffer.from("\n");

/**
 * Reads JSON lines from a file path or stdin (`path === undefined`). Finite: read() returns null after the
 * last line. Blank lines are skipped; message ids are `line:N` (1-based). Acks are no-ops: a file is re-read
 * from the start on the next run.
 */
export function jsonlSource(path: string | undefined): Source {
	const input = path === undefined ? process.stdin : createReadStream(path);
	const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
	const puller = new IteratorPuller(lines[Symbol.asyncIterator]());
	let lineNo = 0;
	const name = path ?? "stdin";
	return {
		async read(max, waitMs) {
			if (puller.done) return null;
			const out: InMessage[] = [];
			for (const line of await puller.take(max, waitMs)) {
				lineNo++;
				if (line.trim() === "") continue;
				out.push({
					id: `line:${lineNo}`,
					key: null,
					value: Buffer.from(line, "utf8"),
					headers: [],
					origin: { topic: name, partition: -1, offset: String(lineNo) },
				});
			}
			return out.length === 0 && puller.done ? null : out;
		},
		async ack() {},
		async close() {
			lines.close();
			if (input !== process.stdin) input.destroy();
		},
	};
}

/**
 * Writes each message's value as one line to a file (appended, fsynced per write) or stdout (`path === undefined`).
 * A line holds only the payload: a tombstone (null value) has none and writes no line.
 */
export function jsonlSink(path: string | undefined): Sink {
	let file: Promise<FileHandle> | undefined;
	return {
		async write(messages: readonly OutMessage[]) {
			const lines: Buffer[] = [];
			for (const m of messages)
				if (m.value !== null) lines.push(m.value, NEWLINE);
			if (lines.length === 0) return;
			const text = Buffer.concat(lines);
			if (path === undefined) {
				await new Promise<void>((res, rej) =>
					process.stdout.write(text, (err) => (err ? rej(err) : res())),
				);
				return;
			}
			file ??= open(path, "a");
			const fh = await file;
			await fh.appendFile(text);
			await fh.sync();
		},
		async close() {
			if (file) await (await file).close();
		},
	};
}
