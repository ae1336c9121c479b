// Cron expressions through croner: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, names
// (MON-FRI, JAN), L and #; local time or an IANA time zone. Errors name the field and give examples.
import { Cron as Croner } from "croner";
import { MlshipError } from "../protocol/errors.ts";

/** Fields of the expression with seconds first (a 5-field expression gets second 0), as croner names them. */
const FIELDS: { key: string; name: string; range: string }[] = [
	{ key: "second", name: "second", range: "0-59" },
	{ key: "minute", name: "minute", range: "0-59" },
	{ key: "hour", name: "hour", range: "0-23" },
	{ key: "day", name: "day of month", range: "1-31 or L" },
	{ key: "month", name: "month", range: "1-12 or JAN-DEC" },
	{
		key: "dayOfWeek",
		name: "day of week",
		range: "0-7 or SUN-SAT, with 5#2 or 5L",
	},
];

// croner knows most of these; @midnight it does not, and one table keeps them all the same.
const MACROS: Record<string, string> = {
	"@yearly": "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0",
	"@daily": "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly": "0 * * * *",
};

export interface CronOptions {
	/** IANA time zone (`Europe/Berlin`); default: the machine's local time. */
	timezone?: string;
}

/** A parsed cron expression; `next(after)` is the first matching time strictly after `after`. */
export class Cron {
	readonly source: string;
	readonly #cron: Croner;

	/**
	 * @example new Cron("0 2 * * *")                 // 02:00 every day, local time
	 * @example new Cron("0 9 * * MON-FRI", { timezone: "Europe/Berlin" })
	 * @example new Cron("0 0 L * *")                 // midnight on the last day of each month
	 * @example new Cron("*\/10 * * * * *")            // every 10 seconds
	 */
	constructor(expr: string, opts: CronOptions = {}) {
		this.source = expr;
		const text = MACROS[expr.trim().toLowerCase()] ?? expr.trim();
		const parts = text.split(/\s+/);
		if (parts.length !== 5 && parts.length !== 6)
			throw bad(
				expr,
				`expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${parts.length}`,
			);
		if (parts.length === 5) parts.unshift("0");
		if (opts.timezone !== undefined) checkTimezone(expr, opts.timezone);
		try {
			this.#cron = new Croner(parts.join(" "), {
				mode: "6-part",
				// Classic cron: when both day fields are restricted, either may match.
				domAndDow: false,
				...(opts.timezone !== undefined ? { timezone: opts.timezone } : {}),
			});
		} catch (err) {
			throw bad(expr, explain((err as Error).message, parts));
		}
	}

	/** The first time (ms since epoch) matching the expression strictly after `after`. */
	next(after: number): number {
		const d = this.#cron.nextRun(new Date(after));
		if (!d) throw bad(this.source, "it never matches a date");
		return d.getTime();
	}
}

/** croner's message about a pattern, in terms of the user's fields. */
function explain(message: string, parts: readonly string[]): string {
	const why = message.replace(/^CronPattern:\s*/, "");
	const value = /Invalid value for (\w+)/.exec(why);
	const field = FIELDS.findIndex((f) => f.key === value?.[1]);
	if (field >= 0) {
		const f = FIELDS[field] as (typeof FIELDS)[number];
		return `${f.name} field '${parts[field]}' is outside ${f.range}`;
	}
	const entry = /configuration entry (\d+) \((.*)\)/.exec(why);
	const at = FIELDS[Number(entry?.[1])];
	if (entry && at)
		return `${at.name} field '${entry[2]}' is not a number, name, range, list or step`;
	return why;
}

function checkTimezone(expr: string, tz: string): void {
	try {
		new Intl.DateTimeFormat("en-US", { timeZone: tz });
	} catch {
		throw bad(
			expr,
			`unknown time zone '${tz}' (use an IANA name such as Europe/Berlin or UTC)`,
		);
	}
}

function bad(expr: string, why: string): MlshipError {
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`cron '${expr}': ${why} (e.g. "0 2 * * *" = 02:00 daily, "0 9 * * MON-FRI" = 09:00 on weekdays, "*/15 * * * *" = every 15 minutes, "0 0 L * *" = the last day of each month, "@hourly")`,
	);
}
