// Where rejected rows go: a JSON-lines file, or a table beside the predictions (SQLite, PostgreSQL).
import { createWriteStream } from "node:fs";
import type { RejectedRow } from "../types.ts";

/** An error sink: takes every rejected row of a run at once. */
export interface ErrorSink {
	readonly label: string;
	write(rows: readonly RejectedRow[]): Promise<void>;
}

/** Rejected rows as JSON lines: `{row, line?, column, error, values}` or, for a refused CSV line, `{line, error, text}`. */
export class JsonlErrorSink implements ErrorSink {
	readonly label: string;
	constructor(path: string) {
		this.label = path;
	}

	async write(rows: readonly RejectedRow[]): Promise<void> {
		const out = createWriteStream(this.label);
		for (const r of rows) out.write(`${JSON.stringify(r)}\n`);
		await new Promise<void>((res, rej) =>
			out.end((err?: Error | null) => (err ? rej(err) : res())),
		);
	}
}
