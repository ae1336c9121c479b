// The bundle manifest (mlship.yaml): one zod schema, every field documented, errors that name the field.
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { z } from "zod";
import { DATATYPE_INFO, DATATYPES } from "../protocol/datatypes.ts";
import { MlshipError } from "../protocol/errors.ts";
import { describeIssues } from "../protocol/issues.ts";

const sha256 = z
	.string()
	.regex(
		/^[0-9a-f]{64}$/,
		"expected 64 lowercase hex characters (a sha256 digest)",
	);

const TensorSpecSchema = z
	.object({
		name: z.string().min(1).describe("tensor name in the model graph"),
		datatype: z.enum(DATATYPES).describe("Open Inference Protocol datatype"),
		shape: z
			.array(z.number().int().min(-1))
			.describe("dimensions; -1 = variable (the first is the batch)"),
	})
	.strict();

/**
 * Why a manifest file path is not a plain relative path inside the bundle (undefined when it is): absolute paths,
 * `..` segments, backslashes, empty or `.` segments and control characters are refused, wherever the manifest comes from
 * (a directory, a registry row, an upload).
 */
export function unsafeBundlePath(path: string): string | undefined {
	// biome-ignore lint/suspicious/noControlCharactersInRegex: the class exists to refuse control characters.
	if (/[\x00-\x1f\x7f]/.test(path)) return "has a control character";
	if (path.includes("\\")) return "has a backslash (use '/')";
	if (path.startsWith("/") || /^[A-Za-z]:/.test(path))
		return "is absolute (paths are relative to the bundle directory)";
	const parts = path.split("/");
	if (parts.includes("..")) return "leaves the bundle ('..')";
	if (parts.some((p) => p === "" || p === "."))
		return "has an empty or '.' segment";
	return undefined;
}

const FileRefSchema = z
	.object({
		path: z
			.string()
			.min(1)
			.max(1024)
			.superRefine((p, ctx) => {
				const why = unsafeBundlePath(p);
				if (why)
					ctx.addIssue({ code: "custom", message: `path '${p}' ${why}` });
			})
			.describe(
				"path relative to the bundle directory (no '..', not absolute)",
			),
		sha256: sha256.describe(
			"sha256 of the file; checked every time the bundle is opened",
		),
	})
	.strict();

const FeatureSchema = z
	.object({
		name: z
			.string()
			.min(1)
			.describe("column name in the user's table / record key"),
		input: z
			.string()
			.min(1)
			.optional()
			.describe(
				"input tensor this column feeds (default: the model's only input)",
			),
		datatype: z
			.enum(DATATYPES)
			.optional()
			.describe("column datatype (default: the input tensor's datatype)"),
		description: z.string().optional(),
		min: z.number().optional().describe("smallest allowed value (inclusive)"),
		max: z.number().optional().describe("largest allowed value (inclusive)"),
		categories: z
			.array(z.union([z.string(), z.number()]))
			.optional()
			.describe("allowed values of a categorical column; others are rejected"),
		allow_missing: z
			.boolean()
			.optional()
			.describe(
				"accept null/NaN (passed to the model as NaN); default false: rejected",
			),
	})
	.strict();

/** Per-model batching settings (the scheduler in front of the runtime). */
export const BatchingSchema = z
	.object({
		max_batch_size: z
			.number()
			.int()
			.min(1)
			.optional()
			.describe("requests per batch; 1 = no batching"),
		max_queue_delay_us: z
			.number()
			.int()
			.min(0)
			.optional()
			.describe("longest wait to fill a batch"),
		max_queue_size: z
			.number()
			.int()
			.min(0)
			.optional()
			.describe("queued requests before rejecting (0 = unbounded)"),
		timeout_ms: z
			.number()
			.int()
			.min(0)
			.optional()
			.describe("default per-request timeout"),
	})
	.strict();

/** Per-model executor settings. */
export const ExecutorSchema = z
	.object({
		mode: z
			.enum(["auto", "inline", "pool"])
			.optional()
			.describe(
				"inline runs on the calling thread; pool on worker threads; auto picks by batch size",
			),
		workers: z
			.number()
			.int()
			.min(1)
			.optional()
			.describe("worker threads in the pool"),
		intra_op_threads: z
			.number()
			.int()
			.min(1)
			.optional()
			.describe("onnxruntime threads per session"),
		inline_max_rows: z
			.number()
			.int()
			.min(0)
			.optional()
			.describe(
				"auto mode: batches up to this many rows may run inline (larger ones go to the worker threads)",
			),
		inline: z
			.union([z.literal("auto"), z.boolean()])
			.optional()
			.describe(
				"auto mode: 'auto' (default) runs a batch of up to inline_max_rows on the calling thread when its cost measured at load is at most inline_max_us, even while other work waits; true runs every such batch inline; false only while nothing else waits",
			),
		inline_max_us: z
			.number()
			.min(0)
			.optional()
			.describe(
				"inline auto: the dearest batch, by its measured cost in microseconds, that runs on the calling thread (default 40: about what a hand-off to a worker thread costs)",
			),
	})
	.strict();

export const ManifestSchema = z
	.object({
		mlship: z.literal(1).describe("manifest format version"),
		name: z
			.string()
			.regex(
				/^[A-Za-z0-9][A-Za-z0-9._-]*$/,
				"letters, digits, '.', '_' or '-', starting with a letter or digit",
			)
			.describe("model name"),
		description: z.string().optional(),
		runtime: z
			.string()
			.regex(
				/^[a-z][a-z0-9_-]*$/,
				"a runtime name: lowercase letters, digits, '_' or '-'",
			)
			.describe(
				"registered runtime that executes the artifact (built in: onnx)",
			),
		task: z.enum(["classification", "regression", "other"]).optional(),
		artifact: FileRefSchema.describe("the model file"),
		reference: FileRefSchema.optional().describe(
			"reference data (e.g. training sample) for drift",
		),
		profile: FileRefSchema.optional().describe(
			"reference profile for drift (JSON, format mlship.profile; written by 'mlship bundle init --reference')",
		),
		covers: FileRefSchema.optional().describe(
			"reference rows reaching each node of a tree model whose file carries no training counts (JSON, format mlship.covers; written by 'mlship bundle init --reference'), for TreeSHAP",
		),
		signature: z
			.object({
				inputs: z.array(TensorSpecSchema).min(1),
				outputs: z.array(TensorSpecSchema).min(1),
			})
			.strict(),
		features: z
			.array(FeatureSchema)
			.optional()
			.describe("table columns → input tensors, in order"),
		labels: z
			.array(z.string())
			.optional()
			.describe("class names in probability-column order"),
		batching: BatchingSchema.optional(),
		executor: ExecutorSchema.optional(),
		examples: z
			.array(z.record(z.string(), z.unknown()))
			.min(1)
			.max(64)
			.optional()
			.describe(
				"example rows (records of feature values): a server scores them to warm up each new version before it serves it (else one row is synthesized from the features)",
			),
		metadata: z
			.record(z.string(), z.unknown())
			.optional()
			.describe("free-form: metrics, library versions, lineage"),
	})
	.strict();

export type Manifest = z.infer<typeof ManifestSchema>;
export type Feature = z.infer<typeof FeatureSchema>;

/**
 * Validates a parsed manifest; throws MLSHIP_INVALID_BUNDLE naming every bad field.
 * Checks cross-references too: features name existing inputs, labels fit the outputs.
 */
export function validateManifest(
	raw: unknown,
	where = "mlship.yaml",
): Manifest {
	const r = ManifestSchema.safeParse(raw);
	if (!r.success) {
		const lines = describeIssues(r.error, raw);
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is invalid:\n  ${lines.join("\n  ")}`,
		);
	}
	const m = r.data;
	const problems: string[] = [];
	const inputs = new Map(m.signature.inputs.map((t) => [t.name, t]));
	if (m.features) {
		const seen = new Set<string>();
		const perInput = new Map<string, number>();
		m.features.forEach((f, i) => {
			if (seen.has(f.name))
				problems.push(`features[${i}].name: duplicate feature '${f.name}'`);
			seen.add(f.name);
			const input =
				f.input ??
				(m.signature.inputs.length === 1
					? m.signature.inputs[0]?.name
					: undefined);
			if (input === undefined) {
				problems.push(
					`features[${i}].input: required when the model has several inputs`,
				);
				return;
			}
			const spec = inputs.get(input);
			if (!spec) {
				problems.push(
					`features[${i}].input: no input named '${input}' (inputs: ${[...inputs.keys()].join(", ")})`,
				);
				return;
			}
			perInput.set(input, (perInput.get(input) ?? 0) + 1);
			const dt = f.datatype ?? spec.datatype;
			if (
				(DATATYPE_INFO[dt].kind === "bytes") !==
				(DATATYPE_INFO[spec.datatype].kind === "bytes")
			)
				problems.push(
					`features[${i}].datatype: ${dt} cannot feed input '${input}' of ${spec.datatype}`,
				);
		});
		for (const [name, spec] of inputs) {
			const n = perInput.get(name) ?? 0;
			if (n === 0) problems.push(`features: no feature feeds input '${name}'`);
			const last =
				spec.shape.length >= 2 ? spec.shape[spec.shape.length - 1] : 1;
			if (n > 0 && last !== undefined && last >= 0 && last !== n)
				problems.push(
					`features: input '${name}' takes ${last} columns but ${n} features feed it`,
				);
		}
	}
	if (m.labels) {
		const wide = m.signature.outputs.find(
			(o) => o.shape.length === 2 && (o.shape[1] ?? -1) > 1,
		);
		if (wide && wide.shape[1] !== m.labels.length)
			problems.push(
				`labels: ${m.labels.length} names but output '${wide.name}' has ${wide.shape[1]} columns`,
			);
	}
	if (problems.length > 0)
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is invalid:\n  ${problems.join("\n  ")}`,
		);
	return m;
}

/**
 * Parses mlship.yaml text (YAML or JSON) and validates it. `json`: the text is known to be JSON (a registry's stored
 * manifest, written by JSON.stringify) and is read with JSON.parse — ~25× cheaper than the YAML parser, which every
 * cold load of a registry model paid.
 */
export function parseManifest(
	text: string,
	where = "mlship.yaml",
	json = false,
): Manifest {
	let raw: unknown;
	try {
		raw = json ? JSON.parse(text) : parseYaml(text);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_BUNDLE",
			`${where} is not valid YAML: ${(err as Error).message}`,
		);
	}
	return validateManifest(raw, where);
}

/** Serializes a manifest as YAML, with a header comment for people editing it. */
export function stringifyManifest(m: Manifest): string {
	return `# mlship bundle manifest — edit features, labels and metadata; run 'mlship bundle init' again to refresh sha256\n${stringifyYaml(m, { lineWidth: 0 })}`;
}
