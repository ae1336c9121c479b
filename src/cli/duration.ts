// Points in time as the CLI takes them: a duration from now (`90d`, `12h`, `30m`; src/protocol/duration.ts) or an ISO 8601 date.
import { parseDuration } from "../protocol/duration.ts";
import { MlshipError } from "../protocol/errors.ts";

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
	if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w|y)\s*$/i.test(text))
		return new Date(now + direction * parseDuration(text, flag));
	const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
	if (!Number.isFinite(t))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${flag} expects a duration (90d, 12h, 30m) or an ISO date (2026-12-31, 2026-12-31T18:00:00Z), got '${text.slice(0, 40)}'`,
		);
	return new Date(t);
}
