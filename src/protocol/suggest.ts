// "Did you mean …?": the nearest known name to a mistyped one, for every error that names something unknown.
import { distance } from "fastest-levenshtein";

/**
 * The candidate nearest to `name` by edit distance (case-insensitive; ties go to the first), when it is near
 * enough to be a typo: at most 1 edit for names up to 3 characters, 2 up to 11 (swapping two letters is 2
 * edits: "irsi" → "iris"), else a quarter of the length.
 * @example nearest("iris-logref", ["iris-logreg", "wine-xgb"]) // "iris-logreg"
 */
export function nearest(
	name: string,
	candidates: Iterable<string>,
): string | undefined {
	const want = name.toLowerCase();
	const limit = want.length <= 3 ? 1 : want.length <= 11 ? 2 : want.length >> 2;
	let best: string | undefined;
	let bestD = Number.POSITIVE_INFINITY;
	for (const c of candidates) {
		if (c === name) continue;
		const d = distance(want, c.toLowerCase());
		if (d < bestD) {
			best = c;
			bestD = d;
		}
	}
	return bestD <= limit ? best : undefined;
}

/**
 * `; did you mean 'x'?` for the nearest candidate, or "" when none is near: append it to an error message.
 * @example `unknown model '${name}'${didYouMean(name, served)}`
 */
export function didYouMean(name: string, candidates: Iterable<string>): string {
	const n = nearest(name, candidates);
	return n === undefined ? "" : `; did you mean '${n}'?`;
}

/**
 * Names for an error message, quoted, at most `max` of them (a registry may hold thousands): "'a', 'b'", "none".
 * @example `unknown model 'x' (serving: ${listNames(served)})`
 */
export function listNames(names: Iterable<string>, max = 20): string {
	const all = [...names];
	if (all.length === 0) return "none";
	const shown = all.slice(0, max).map((n) => `'${n}'`);
	return all.length > max
		? `${shown.join(", ")} and ${all.length - max} more`
		: shown.join(", ");
}
