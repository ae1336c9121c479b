// Durations as people write them on a command line: 500ms, 30s, 5m, 2h, 7d (or a bare number of seconds).
import { MlshipError } from "./errors.ts";

const UNIT_MS: Readonly<Record<string, number>> = {
	ms: 1,
	s: 1000,
	m: 60_000,
	h: 3_600_000,
	d: 86_400_000,
};

/**
 * Milliseconds of a duration: `500ms`, `30s`, `5m`, `2h`, `7d`, `1.5h`, or a bare number of seconds. `what` names
 * the flag or field in the error.
 * @example parseDuration("5m", "--monitor-window") // 300000
 */
export function parseDuration(text: string, what: string): number {
	const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
	const ms = m
		? Number(m[1]) * (UNIT_MS[(m[2] ?? "s").toLowerCase()] as number)
		: Number.NaN;
	if (!(ms > 0) || !Number.isFinite(ms))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what}: not a duration: ${JSON.stringify(text)} (write e.g. 30s, 5m, 2h or 7d)`,
		);
	return ms;
}
