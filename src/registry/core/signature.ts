// What a model's callers depend on (inputs, features, labels), and a readable diff between two versions of it.
import type { Feature, Manifest } from "../../bundle/manifest.ts";
import type { TensorSpec } from "../../protocol/types.ts";

/** At most this many names in one line of a diff; the rest are counted. */
const MAX_NAMES = 8;

function names(list: readonly string[]): string {
	const shown = list.slice(0, MAX_NAMES).join(", ");
	return list.length > MAX_NAMES
		? `${shown} … and ${list.length - MAX_NAMES} more`
		: shown;
}

const tensor = (t: TensorSpec) => `${t.datatype} [${t.shape.join(", ")}]`;
const feature = (f: Feature) =>
	`${f.datatype ?? "default type"}${f.input !== undefined ? ` → ${f.input}` : ""}`;

/** Removed, added and changed members of two lists keyed by name. */
function byName<T extends { name: string }>(
	what: string,
	before: readonly T[],
	after: readonly T[],
	show: (x: T) => string,
): string[] {
	const old = new Map(before.map((x) => [x.name, x]));
	const now = new Map(after.map((x) => [x.name, x]));
	const lines: string[] = [];
	const removed = before.filter((x) => !now.has(x.name)).map((x) => x.name);
	const added = after.filter((x) => !old.has(x.name)).map((x) => x.name);
	if (removed.length > 0)
		lines.push(`${what} removed (${removed.length}): ${names(removed)}`);
	if (added.length > 0)
		lines.push(`${what} added (${added.length}): ${names(added)}`);
	const changed = after.filter((x) => {
		const o = old.get(x.name);
		return o !== undefined && show(o) !== show(x);
	});
	for (const x of changed.slice(0, MAX_NAMES))
		lines.push(
			`${what} changed: ${x.name}: ${show(old.get(x.name) as T)} → ${show(x)}`,
		);
	if (changed.length > MAX_NAMES)
		lines.push(`… and ${changed.length - MAX_NAMES} more ${what} changed`);
	if (lines.length === 0) {
		const a = before.map((x) => x.name).join("\0");
		const b = after.map((x) => x.name).join("\0");
		if (a !== b)
			lines.push(
				`${what} reordered: ${names(before.map((x) => x.name))} → ${names(after.map((x) => x.name))}`,
			);
	}
	return lines;
}

/**
 * How the signature callers rely on differs from `before` to `after`: inputs (name, datatype, shape), features
 * (names in order, datatype, input) and labels (in order). Empty when they agree. Outputs, ranges and categories
 * are not part of it.
 * @example signatureDiff(v1.manifest, bundle.manifest) // ["features added (1): age", "labels: a, b → a, b, c"]
 */
export function signatureDiff(before: Manifest, after: Manifest): string[] {
	const lines = byName(
		"inputs",
		before.signature.inputs,
		after.signature.inputs,
		tensor,
	);
	if (before.features || after.features) {
		if (!before.features || !after.features) {
			const had = before.features ?? [];
			const has = after.features ?? [];
			lines.push(
				`features: ${had.length > 0 ? names(had.map((f) => f.name)) : "none"} → ${has.length > 0 ? names(has.map((f) => f.name)) : "none"}`,
			);
		} else
			lines.push(
				...byName("features", before.features, after.features, feature),
			);
	}
	const a = before.labels ?? [];
	const b = after.labels ?? [];
	if (a.join("\0") !== b.join("\0") || a.length !== b.length)
		lines.push(
			`labels: ${a.length > 0 ? names(a) : "none"} → ${b.length > 0 ? names(b) : "none"}`,
		);
	return lines;
}
