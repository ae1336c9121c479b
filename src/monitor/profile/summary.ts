// A profile in a few numbers per column, for `models show` and the report.
import { meanStd, quantileOf } from "./build.ts";
import type { ColumnProfile, Profile } from "./format.ts";

/** One column in brief: numeric min/median/max/mean, or the most frequent categories. */
export interface ColumnSummary {
	name: string;
	kind: ColumnProfile["kind"];
	count: number;
	nulls: number;
	min?: number | null;
	p50?: number | null;
	max?: number | null;
	mean?: number | null;
	top?: [string, number][];
}

function round(x: number | null): number | null {
	return x === null || !Number.isFinite(x) ? null : Number(x.toPrecision(6));
}

export function summarizeColumn(name: string, c: ColumnProfile): ColumnSummary {
	if (c.kind === "categorical")
		return {
			name,
			kind: c.kind,
			count: c.count,
			nulls: c.nulls,
			top: c.top.slice(0, 3),
		};
	return {
		name,
		kind: c.kind,
		count: c.count,
		nulls: c.nulls,
		min: round(c.min),
		p50: round(quantileOf(c, 0.5)),
		max: round(c.max),
		mean: c.count > 0 ? round(meanStd(c).mean) : null,
	};
}

/** Every feature and output of a profile in brief. */
export function summarizeProfile(p: Profile): {
	rows: number;
	features: ColumnSummary[];
	outputs: ColumnSummary[];
} {
	return {
		rows: p.rows,
		features: Object.entries(p.features).map(([n, c]) => summarizeColumn(n, c)),
		outputs: Object.entries(p.outputs).map(([n, c]) => summarizeColumn(n, c)),
	};
}

/** One line of text per column: `bmi  numeric  111 (0 null)  min 18 · p50 25.7 · max 42.2`. */
export function summaryLines(s: ReturnType<typeof summarizeProfile>): string[] {
	const line = (c: ColumnSummary) =>
		`    ${c.name}  ${c.kind}  ${c.count}${c.nulls > 0 ? ` (${c.nulls} null)` : ""}  ${
			c.kind === "numeric"
				? `min ${c.min} · p50 ${c.p50} · max ${c.max} · mean ${c.mean}`
				: (c.top ?? []).map(([v, n]) => `${v} ${n}`).join(" · ")
		}`;
	return [
		`  reference profile: ${s.rows} rows`,
		"   features:",
		...s.features.map(line),
		...(s.outputs.length > 0 ? ["   outputs:", ...s.outputs.map(line)] : []),
	];
}
