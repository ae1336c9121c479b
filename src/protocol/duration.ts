// Durations as people write them on the command line: `90s`, `15m`, `1h`, `7d`, `500ms`.
import { MlshipError } from "./errors.ts";

const UNIT_MS: Record<string, number> = {
	ms: 1,
	s: 1000,
	m: 60_000,
	h: 3_600_000,
	d: 86_400_000,
	w: 604_800_000,
};

/**
 * Milliseconds of `90s`, `15m`, `1h`, `1.5h`, `7d`, `2w` or `500ms` (a bare number is seconds). `what` names the
 * flag in the error.
 * @example parseDuration("1h", "--since") // 3600000
 */
export function parseDuration(text: string, what: string): number {
	const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/i.exec(text);
	if (!m)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what}: expected a duration such as 90s, 15m, 1h or 7d, got '${text.slice(0, 40)}'`,
		);
	return Math.round(
		Number(m[1]) * (UNIT_MS[(m[2] ?? "s").toLowerCase()] as number),
	);
}
