// Cron expressions: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; local time.
import { MlshipError } from "../protocol/errors.ts";

interface Field {
	name: string;
	min: number;
	max: number;
}

const FIELDS: Field[] = [
	{ name: "second", min: 0, max: 59 },
	{ name: "minute", min: 0, max: 59 },
	{ name: "hour", min: 0, max: 23 },
	{ name: "day of month", min: 1, max: 31 },
	{ name: "month", min: 1, max: 12 },
	{ name: "day of week", min: 0, max: 7 },
];

const MACROS: Record<string, string> = {
	"@yearly": "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0",
	"@daily": "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly": "0 * * * *",
};

/** A parsed cron expression; `next(after)` is the first matching time strictly after `after`. */
export class Cron {
	readonly source: string;
	readonly #sets: Set<number>[];
	readonly #domAny: boolean;
	readonly #dowAny: boolean;

	/**
	 * @example new Cron("0 2 * * *")          // 02:00 every day
	 * @example new Cron("*\/10 * * * * *")     // every 10 seconds
	 */
	constructor(expr: string) {
		this.source = expr;
		const text = MACROS[expr.trim().toLowerCase()] ?? expr.trim();
		const parts = text.split(/\s+/);
		if (parts.length !== 5 && parts.length !== 6)
			throw bad(
				expr,
				`expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${parts.length}`,
			);
		if (parts.length === 5) parts.unshift("0");
		this.#sets = parts.map((p, i) => parseField(expr, p, FIELDS[i] as Field));
		const dow = this.#sets[5] as Set<number>;
		if (dow.has(7)) dow.add(0);
		this.#domAny = parts[3] === "*" || parts[3] === "?";
		this.#dowAny = parts[5] === "*" || parts[5] === "?";
	}

	#dayMatches(d: Date): boolean {
		const dom = (this.#sets[3] as Set<number>).has(d.getDate());
		const dow = (this.#sets[5] as Set<number>).has(d.getDay());
		// Classic cron: when both day fields are restricted, either may match.
		if (this.#domAny) return dow;
		if (this.#dowAny) return dom;
		return dom || dow;
	}

	/** The first time (ms since epoch) matching the expression strictly after `after`, within 5 years. */
	next(after: number): number {
		const [sec, min, hour, , month] = this.#sets as [
			Set<number>,
			Set<number>,
			Set<number>,
			Set<number>,
			Set<number>,
		];
		const d = new Date(Math.floor(after / 1000) * 1000 + 1000);
		const limit = after + 5 * 366 * 86_400_000;
		while (d.getTime() <= limit) {
			if (!month.has(d.getMonth() + 1)) {
				d.setMonth(d.getMonth() + 1, 1);
				d.setHours(0, 0, 0);
				continue;
			}
			if (!this.#dayMatches(d)) {
				d.setDate(d.getDate() + 1);
				d.setHours(0, 0, 0);
				continue;
			}
			if (!hour.has(d.getHours())) {
				d.setHours(d.getHours() + 1, 0, 0);
				continue;
			}
			if (!min.has(d.getMinutes())) {
				d.setMinutes(d.getMinutes() + 1, 0);
				continue;
			}
			if (!sec.has(d.getSeconds())) {
				d.setSeconds(d.getSeconds() + 1);
				continue;
			}
			return d.getTime();
		}
		throw bad(this.source, "it never matches a date");
	}
}

function parseField(expr: string, text: string, f: Field): Set<number> {
	const out = new Set<number>();
	for (const part of text.split(",")) {
		const m = /^(\*|\?|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
		if (!m)
			throw bad(
				expr,
				`${f.name} field '${text}' is not a number, range, list or step`,
			);
		const [, start = "*", end, step] = m;
		const all = start === "*" || start === "?";
		const lo = all ? f.min : Number(start);
		const hi = end !== undefined ? Number(end) : all || step ? f.max : lo;
		const by = step !== undefined ? Number(step) : 1;
		if (lo < f.min || hi > f.max || lo > hi || by < 1)
			throw bad(expr, `${f.name} field '${text}' is outside ${f.min}-${f.max}`);
		for (let v = lo; v <= hi; v += by) out.add(v);
	}
	return out;
}

function bad(expr: string, why: string): MlshipError {
	return new MlshipError(
		"MLSHIP_INVALID_ARGUMENT",
		`cron '${expr}': ${why} (e.g. "0 2 * * *" = 02:00 daily, "*/15 * * * *" = every 15 minutes, "@hourly")`,
	);
}
