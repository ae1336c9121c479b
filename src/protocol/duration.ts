// Durations as people write them on command lines and in settings: 500ms, 30s, 5m, 1.5h, 7d, 2w, 1y. The one parser
// of the project (serve/stream flags and settings, monitor, rollout, logs, tokens --expires, audit --since).
import { MlshipError } from "./errors.ts";

const UNIT_MS: Readonly<Record<string, number>> = {
	ms: 1,
	s: 1000,
	m: 60_000,
	h: 3_600_000,
	d: 86_400_000,
	w: 604_800_000,
	y: 365 * 86_400_000,
};

/**
 * Milliseconds of a duration: a positive number with a unit (`500ms`, `30s`, `5m`, `1.5h`, `7d`, `2w`, `1y`), or a
 * bare number in `bare` units (seconds unless told; a flag named in ms passes "ms"). Zero, negative and anything
 * else are refused, naming `what`.
 * @example parseDuration("5m", "--monitor-window") // 300000
 * @example parseDuration("50", "--max-p99-ms", "ms") // 50
 */
export function parseDuration(
	text: string | number,
	what: string,
	bare: "s" | "ms" = "s",
): number {
	const m =
		typeof text === "number"
			? [String(text), String(text), bare]
			: /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$/i.exec(text);
	const v = m
		? Number(m[1]) * (UNIT_MS[(m[2] ?? bare).toLowerCase()] as number)
		: Number.NaN;
	if (!(v > 0) || !Number.isFinite(v))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what} must be a duration such as 500ms, 30s, 5m, 2h or 7d, got ${JSON.stringify(String(text).slice(0, 40))}`,
		);
	return Math.round(v);
}
