// Durations and points in time as the CLI takes them: `90d`, `12h`, `30m`, or an ISO 8601 date.
import { MlshipError } from "../protocol/errors.ts";

const UNIT_MS: Record<string, number> = {
	s: 1000,
	m: 60_000,
	h: 3_600_000,
	d: 86_400_000,
	w: 7 * 86_400_000,
	y: 365 * 86_400_000,
};

/**
 * Milliseconds of a duration: a whole number with a unit s, m, h, d, w or y.
 * @example parseDuration("90d", "--expires") // 7776000000
 */
export function parseDuration(text: string, flag: string): number {
	const m = /^\s*(\d{1,9})\s*([smhdwy])\s*$/.exec(text);
	if (!m || Number(m[1]) === 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${flag} expects a duration such as 90d, 12h, 30m or 2w, got '${text.slice(0, 40)}'`,
		);
	return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/**
 * A time given as a duration from `now` (in `direction`) or as an ISO 8601 date/time.
 * @example timeArg("7d", "--since", -1) // seven days ago
 */
export function timeArg(
	text: string,
	flag: string,
	direction: 1 | -1,
	now = Date.now(),
): Date {
	if (/^\s*\d+\s*[smhdwy]\s*$/.test(text))
		return new Date(now + direction * parseDuration(text, flag));
	const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
	if (!Number.isFinite(t))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${flag} expects a duration (90d, 12h, 30m) or an ISO date (2026-12-31, 2026-12-31T18:00:00Z), got '${text.slice(0, 40)}'`,
		);
	return new Date(t);
}
