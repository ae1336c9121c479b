// Schema errors in the user's words: zod's issues (job files, server settings, bundle manifests) become one line per
// field that names it as the user wrote it (a YAML key, a flag, an env variable) and shows the value given.
import type { z } from "zod";

export interface IssueWording {
	/** How a field is named to the user (e.g. `--http-port` for a flag); default: its path, `features[0].name`. */
	name?: (path: readonly PropertyKey[]) => string;
	/** What a field holds, by path (`sink`, `pending.table`): "required — a file path or a table URI", "not a port number: abc". */
	expects?: Readonly<Record<string, string>>;
}

/** A field path as written in YAML/JSON: `features[0].name`. */
export function fieldPath(path: readonly PropertyKey[]): string {
	let s = "";
	for (const p of path)
		s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
	return s;
}

const EXPECTED: Record<string, string> = {
	string: "text",
	number: "a number",
	int: "a whole number",
	boolean: "true or false",
	array: "a list",
	object: "a mapping (key: value)",
	record: "a mapping (key: value)",
};

/**
 * One line per problem: `sink: required — a file path or a table URI`, `--http-port: not a port number: abc`,
 * `on_error: must be one of fail, skip, got sometimes`, `bogus: unknown field`.
 * `input` is what was validated (the value shown is the user's, before any coercion).
 * @example describeIssues(r.error, raw, { expects: { sink: "a file path or a table URI" } }).join("\n  ")
 */
export function describeIssues(
	error: z.ZodError,
	input: unknown,
	wording: IssueWording = {},
): string[] {
	const name = (path: readonly PropertyKey[]) =>
		wording.name?.(path) ?? fieldPath(path);
	const lines: string[] = [];
	for (const issue of error.issues) {
		const path = issue.path;
		if (issue.code === "unrecognized_keys") {
			for (const k of issue.keys)
				lines.push(`${name([...path, k])}: unknown field`);
			continue;
		}
		const why = wordingOf(
			issue,
			valueAt(input, path),
			wording.expects?.[fieldPath(path)],
		);
		lines.push(path.length > 0 ? `${name(path)}: ${why}` : why);
	}
	return lines;
}

function wordingOf(
	issue: z.core.$ZodIssue,
	value: unknown,
	expects: string | undefined,
): string {
	switch (issue.code) {
		case "invalid_type": {
			const what = expects ?? EXPECTED[issue.expected] ?? issue.expected;
			return value === undefined
				? `required — ${what}`
				: `not ${what}: ${show(value)}`;
		}
		case "invalid_value":
			return `must be one of ${issue.values.map((v) => String(v)).join(", ")}, got ${show(value)}`;
		case "too_small":
		case "too_big": {
			const small = issue.code === "too_small";
			const bound = small ? issue.minimum : issue.maximum;
			if (issue.origin === "string" && small && Number(bound) === 1)
				return "must not be empty";
			if (issue.origin === "array" || issue.origin === "string")
				return `${small ? "needs at least" : "takes at most"} ${bound} ${issue.origin === "array" ? "item(s)" : "character(s)"}, got ${issue.origin === "array" && Array.isArray(value) ? value.length : show(value)}`;
			const op = small
				? issue.inclusive
					? "≥"
					: ">"
				: issue.inclusive
					? "≤"
					: "<";
			return `must be ${op} ${bound}${expects ? ` (${expects})` : ""}, got ${show(value)}`;
		}
		default:
			return issue.message;
	}
}

/** The value at a path of the raw input (undefined when absent). */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
	let v = input;
	for (const p of path) {
		if (v === null || typeof v !== "object") return undefined;
		v = (v as Record<PropertyKey, unknown>)[p];
	}
	return v;
}

/** A value as the user typed it, shortened. */
function show(v: unknown): string {
	const s = typeof v === "string" ? v : JSON.stringify(v);
	return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
