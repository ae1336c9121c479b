// Durations as people write them on command lines and in settings: 200ms, 60s, 5m, 1h, 7d (or a number of ms).
import ms from "ms";
import { MlshipError } from "./errors.ts";

/**
 * Milliseconds of a duration: `200ms`, `60s`, `1.5m`, `1h`, `7d`, or a bare number of milliseconds. Refuses
 * anything else, and zero or negative durations, naming `what`.
 * @example parseDuration("60s", "--interval") // 60000
 */
export function parseDuration(text: string | number, what: string): number {
	const v =
		typeof text === "number"
			? text
			: /^\s*\d+(\.\d+)?\s*$/.test(text)
				? Number(text)
				: ms(text.trim() as ms.StringValue);
	if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what} must be a duration such as 200ms, 60s, 5m or 1h, got ${JSON.stringify(text)}`,
		);
	return v;
}
