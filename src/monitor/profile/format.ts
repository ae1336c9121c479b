// The profile format (reference and live profiles): one zod schema, versioned; the Python SDK writes the same JSON.
import { z } from "zod";
import { MlshipError } from "../../protocol/errors.ts";
import { describeIssues } from "../../protocol/issues.ts";

/** `format` of every profile document. */
export const PROFILE_FORMAT = "mlship.profile";
/** The format version this code writes and reads. */
export const PROFILE_VERSION = 1;

const count = z.number().int().min(0);

/**
 * A histogram on fixed edges. `edges` e_0 < … < e_{E-1}; `counts` has E+1 entries:
 * counts[i] = #{x : e_{i-1} ≤ x < e_i} with e_{-1} = −∞ and e_E = +∞ (so counts[0] holds values below the first
 * edge and counts[E] values at or above the last). Live profiles reuse the reference's edges, so histograms of
 * the same feature are comparable and merge by adding counts.
 */
const HistogramSchema = z
	.object({
		edges: z
			.array(z.number())
			.min(1)
			.describe("bin edges, strictly increasing"),
		counts: z.array(count).describe("edges.length + 1 counts (see above)"),
	})
	.strict();

const NumericSchema = z
	.object({
		kind: z.literal("numeric"),
		count: count.describe("values that are not null/NaN"),
		nulls: count.describe("null or NaN values"),
		min: z.number().nullable().describe("smallest value (null when count = 0)"),
		max: z.number().nullable().describe("largest value (null when count = 0)"),
		sum: z.number().describe("sum of the values"),
		sum_squares: z.number().describe("sum of the squared values"),
		histogram: HistogramSchema,
		distinct: z
			.array(z.tuple([z.number(), count]))
			.nullable()
			.describe(
				"every distinct value with its count, sorted by value, while there are at most 32 distinct values; null beyond",
			),
		sketch: z
			.string()
			.describe(
				"DDSketch (relative accuracy 0.01) as base64 of its protobuf (DDSketch.toProto; Python ddsketch's ProtoDDSketch)",
			),
	})
	.strict();

const CategoricalSchema = z
	.object({
		kind: z.literal("categorical"),
		count: count.describe("values that are not null"),
		nulls: count.describe("null values"),
		top: z
			.array(z.tuple([z.string(), count]))
			.describe(
				"the most frequent values (at most 100) with their counts, most frequent first; values as strings",
			),
		other: count.describe("values not listed in top"),
	})
	.strict();

/** One column's profile: numeric (histogram, sketch) or categorical (top values). */
export const ColumnProfileSchema = z.discriminatedUnion("kind", [
	NumericSchema,
	CategoricalSchema,
]);

export const ProfileSchema = z
	.object({
		format: z.literal(PROFILE_FORMAT),
		version: z.literal(PROFILE_VERSION).describe("profile format version"),
		rows: count.describe("rows profiled"),
		features: z
			.record(z.string(), ColumnProfileSchema)
			.describe("per feature column of the model, by name"),
		outputs: z
			.record(z.string(), ColumnProfileSchema)
			.describe(
				"per output column (as `mlship predict` writes them: label as class names, probabilities_<class>, a regression's value)",
			),
	})
	.strict();

export type Profile = z.infer<typeof ProfileSchema>;
export type ColumnProfile = z.infer<typeof ColumnProfileSchema>;
export type NumericProfile = z.infer<typeof NumericSchema>;
export type CategoricalProfile = z.infer<typeof CategoricalSchema>;

/** The published JSON Schema of the profile format (docs/profile.schema.json is this, checked by a test). */
export function profileJsonSchema(): unknown {
	return {
		$id: "https://mlship.dev/schemas/profile-v1.json",
		title: "mlship profile, format version 1",
		...(z.toJSONSchema(ProfileSchema) as Record<string, unknown>),
	};
}

/**
 * Parses and validates a profile document (JSON text or bytes); `where` names it in errors. A document that is not
 * a valid profile is MLSHIP_INVALID_BUNDLE naming each bad field; cross-checks: histogram counts fit the edges,
 * edges increase, and counts add up.
 */
export function parseProfile(
	text: string | Uint8Array,
	where = "profile",
): Profile {
	let raw: unknown;
	try {
		raw = JSON.parse(
			typeof text === "string" ? text : new TextDecoder().decode(text),
		);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is not valid JSON: ${(err as Error).message}`,
		);
	}
	const r = ProfileSchema.safeParse(raw);
	if (!r.success)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is not a profile (format ${PROFILE_FORMAT} version ${PROFILE_VERSION}):\n  ${describeIssues(r.error, raw).join("\n  ")}`,
		);
	const problems: string[] = [];
	for (const [group, cols] of [
		["features", r.data.features],
		["outputs", r.data.outputs],
	] as const)
		for (const [name, c] of Object.entries(cols)) {
			const at = `${group}.${name}`;
			if (c.kind === "numeric") {
				const { edges, counts } = c.histogram;
				if (counts.length !== edges.length + 1)
					problems.push(
						`${at}.histogram: ${counts.length} counts for ${edges.length} edges (want ${edges.length + 1})`,
					);
				for (let i = 1; i < edges.length; i++)
					if (!((edges[i] as number) > (edges[i - 1] as number))) {
						problems.push(`${at}.histogram.edges: not strictly increasing`);
						break;
					}
				const total = counts.reduce((a, b) => a + b, 0);
				if (total !== c.count)
					problems.push(
						`${at}.histogram: counts add up to ${total}, count is ${c.count}`,
					);
			} else {
				const total = c.top.reduce((a, [, n]) => a + n, c.other);
				if (total !== c.count)
					problems.push(
						`${at}: top + other add up to ${total}, count is ${c.count}`,
					);
			}
		}
	if (problems.length > 0)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is inconsistent:\n  ${problems.join("\n  ")}`,
		);
	return r.data;
}

/** A profile as JSON text (what a bundle stores). */
export function stringifyProfile(p: Profile): string {
	return `${JSON.stringify(p)}\n`;
}
