// Shared CLI plumbing: error reporting with exit codes, --json output, progress on a terminal.
import { type Command, InvalidArgumentError } from "commander";
import { type ErrorCode, toMlshipError } from "../protocol/errors.ts";
import { redactText, redactValue } from "../protocol/redact.ts";

/** Process exit codes (stable, for cron, Kubernetes and CI). */
export const EXIT: Readonly<Record<ErrorCode | "OK", number>> = {
	OK: 0,
	MLSHIP_INTERNAL: 1,
	MLSHIP_INVALID_INPUT: 2,
	MLSHIP_PAYLOAD_TOO_LARGE: 2,
	MLSHIP_TIMEOUT: 6,
	MLSHIP_OVERLOADED: 6,
	MLSHIP_INVALID_ARGUMENT: 2,
	MLSHIP_INVALID_BUNDLE: 2,
	MLSHIP_UNSUPPORTED_MODEL: 2,
	MLSHIP_MODEL_NOT_FOUND: 3,
	MLSHIP_ALREADY_EXISTS: 4,
	MLSHIP_INTEGRITY: 5,
	MLSHIP_UNAVAILABLE: 6,
	MLSHIP_CLOSED: 6,
	MLSHIP_UNAUTHENTICATED: 7,
	MLSHIP_PERMISSION_DENIED: 7,
	MLSHIP_RATE_LIMITED: 6,
	MLSHIP_REQUEST_NOT_FOUND: 3,
};

/**
 * Wraps a command action: errors print as `error: ...` (or `{"error", "code"}` with --json) and set the exit code.
 * @example program.command("x").action(action(async (opts) => { ... }))
 */
export function action<A extends unknown[]>(
	fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
	return async (...args: A) => {
		try {
			await fn(...args);
		} catch (err) {
			const e = toMlshipError(err);
			const cmd = args[args.length - 1] as Command | undefined;
			const json = Boolean(cmd?.optsWithGlobals?.().json);
			// Messages quote URIs and client libraries' errors: a password in either is hidden here, for every command.
			const message = redactText(e.message);
			if (json)
				process.stdout.write(
					`${JSON.stringify({ error: message, code: e.code })}\n`,
				);
			else process.stderr.write(`error: ${message}\n`);
			if (e.code === "MLSHIP_INTERNAL" && process.env.MLSHIP_DEBUG && e.cause)
				console.error(redactValue(e.cause));
			process.exitCode = EXIT[e.code];
		}
	};
}

/** Prints data as JSON (when --json) or through `human`. */
export function output(
	json: boolean,
	data: unknown,
	human: () => string,
): void {
	process.stdout.write(
		json
			? `${JSON.stringify(redactValue(data), null, 2)}\n`
			: `${redactText(human())}\n`,
	);
}

/** Adds the standard example block to a command's --help. */
export function example(cmd: Command, ...lines: string[]): Command {
	return cmd.addHelpText(
		"after",
		`\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`,
	);
}

/** A one-line progress display on stderr; silent when stderr is not a terminal (or with --json). */
export class Progress {
	readonly #enabled: boolean;
	#total: number | undefined;
	readonly #label: string;
	readonly #start = performance.now();
	#last = 0;

	constructor(
		label: string,
		total: number | undefined,
		enabled = process.stderr.isTTY === true,
	) {
		this.#label = label;
		this.#total = total;
		this.#enabled = enabled;
	}

	update(done: number, total?: number, force = false): void {
		if (!this.#enabled) return;
		if (total !== undefined) this.#total = total;
		const now = performance.now();
		if (!force && now - this.#last < 100) return;
		this.#last = now;
		const secs = (now - this.#start) / 1000;
		const rate = secs > 0 ? Math.round(done / secs) : 0;
		let line = `${this.#label} ${done.toLocaleString("en-US")}`;
		if (this.#total) {
			const f = Math.min(1, done / this.#total);
			const w = 24;
			line = `${this.#label} [${"#".repeat(Math.round(f * w)).padEnd(w, ".")}] ${(f * 100).toFixed(1)}% ${done.toLocaleString("en-US")}/${this.#total.toLocaleString("en-US")}`;
		}
		process.stderr.write(
			`\r${line} rows · ${rate.toLocaleString("en-US")} rows/s `,
		);
	}

	done(n: number): void {
		if (!this.#enabled) return;
		this.update(n, undefined, true);
		process.stderr.write("\n");
	}
}

/**
 * Runs long work with an AbortSignal that SIGTERM and SIGINT abort (so a worker finishes its current chunk and
 * exits cleanly); the handlers are removed afterwards.
 * @example await untilStopped((signal) => runPending(model, { ...opts, follow: true, signal }))
 */
export async function untilStopped<T>(
	fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
	const stop = new AbortController();
	const onSignal = () => stop.abort();
	process.once("SIGTERM", onSignal);
	process.once("SIGINT", onSignal);
	try {
		return await fn(stop.signal);
	} finally {
		process.off("SIGTERM", onSignal);
		process.off("SIGINT", onSignal);
	}
}

/**
 * A commander parser for options that take a whole number ≥ `min` (default 1): anything else is refused with the
 * option's name, before the command runs.
 * @example cmd.option("--chunk-rows <n>", "rows per chunk", wholeNumber(), 32768)
 */
export function wholeNumber(min = 1): (text: string) => number {
	return (text) => {
		const n = Number(text);
		if (text.trim() === "" || !Number.isSafeInteger(n) || n < min)
			throw new InvalidArgumentError(`expected a whole number ≥ ${min}.`);
		return n;
	};
}

/** Every command and sub-command below `root`. */
function* commands(root: Command): Generator<Command> {
	yield root;
	for (const c of root.commands) yield* commands(c);
}

/**
 * Makes commander's own errors (unknown option, missing or invalid argument) exit with code 2 like every other
 * bad-argument error; help and --version still exit 0.
 */
export function badArgumentsExit2(root: Command): void {
	for (const c of commands(root))
		c.exitOverride((err) => {
			process.exit(err.exitCode === 0 ? 0 : EXIT.MLSHIP_INVALID_ARGUMENT);
		});
}

/**
 * Left-aligned text columns: the header, an optional rule of dashes, then the rows (widths found with a loop, so
 * a result of a million rows does not overflow the stack).
 */
export function textTable(
	header: string[],
	rows: string[][],
	rule = false,
): string {
	const widths = header.map((h) => h.length);
	for (const r of rows)
		for (let i = 0; i < widths.length; i++)
			widths[i] = Math.max(widths[i] as number, (r[i] ?? "").length);
	const line = (cells: string[]) =>
		cells
			.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
			.join("  ")
			.trimEnd();
	const lines = [line(header)];
	if (rule) lines.push(line(widths.map((w) => "-".repeat(w))));
	for (const r of rows) lines.push(line(r));
	return lines.join("\n");
}
