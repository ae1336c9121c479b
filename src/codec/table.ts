// Tabular data ↔ tensors: records ([{...}]) and columns ({col: [...]}) by the manifest's features.
// Over 500 lines on purpose: planning, encoding and decoding share the plan's private per-feature types, and a
// split would export them or import in a circle.
import type { Feature, Manifest } from "../bundle/manifest.ts";
import {
	allocate,
	DATATYPE_INFO,
	type Datatype,
	floatToHalf,
	halfToFloat,
	type TensorData,
} from "../protocol/datatypes.ts";
import { invalidInput } from "../protocol/errors.ts";
import { didYouMean } from "../protocol/suggest.ts";
import type { Tensor, TensorSpec } from "../protocol/types.ts";

/** A column of values: a plain array, or a typed array for speed. */
export type Column = ArrayLike<unknown>;
export type Columns = Record<string, Column>;
export type Row = Record<string, unknown>;

interface PlannedFeature {
	name: string;
	/** Position of this column in the input's last dimension. */
	col: number;
	/** Kind the value must have (from the feature's datatype). */
	kind: (typeof DATATYPE_INFO)[Datatype]["kind"];
	datatype: Datatype;
	allowMissing: boolean;
	min: number;
	max: number;
	categories: Set<string> | undefined;
}

interface PlannedInput {
	spec: TensorSpec;
	width: number;
	features: PlannedFeature[];
}

/** How a manifest's features map onto its input tensors, computed once per model. */
export interface TablePlan {
	inputs: PlannedInput[];
	features: PlannedFeature[];
	labels: readonly string[] | undefined;
}

/** A bad value found while encoding: row (0-based within the batch), column, and what was wrong. */
export interface RowError {
	row: number;
	column: string;
	message: string;
}

/**
 * The features a manifest declares, or, when it declares none, one per input: an input of width 1 is the
 * column named after it; a wider input `x` of width k takes columns `x_0` … `x_{k-1}`.
 */
export function effectiveFeatures(
	m: Pick<Manifest, "signature" | "features">,
): Feature[] {
	if (m.features) return m.features;
	const out: Feature[] = [];
	for (const s of m.signature.inputs) {
		const width =
			s.shape.length >= 2 ? (s.shape[s.shape.length - 1] as number) : 1;
		if (width < 0)
			throw invalidInput(
				`input '${s.name}' has a variable number of columns; add 'features' to mlship.yaml to feed it from a table`,
			);
		if (width === 1) out.push({ name: s.name, input: s.name });
		else
			for (let j = 0; j < width; j++)
				out.push({ name: `${s.name}_${j}`, input: s.name });
	}
	return out;
}

/** Plans the records/columns ↔ tensor mapping of a manifest. */
export function planTable(
	m: Pick<Manifest, "signature" | "features" | "labels">,
): TablePlan {
	const inputs: PlannedInput[] = m.signature.inputs.map((spec) => ({
		spec,
		width: 0,
		features: [],
	}));
	const byName = new Map(inputs.map((i) => [i.spec.name, i]));
	const features: PlannedFeature[] = [];
	for (const f of effectiveFeatures(m)) {
		const input = byName.get(
			f.input ?? (m.signature.inputs[0] as TensorSpec).name,
		) as PlannedInput;
		const datatype = f.datatype ?? input.spec.datatype;
		const pf: PlannedFeature = {
			name: f.name,
			col: input.width++,
			kind: DATATYPE_INFO[datatype].kind,
			datatype,
			allowMissing: f.allow_missing ?? false,
			min: f.min ?? Number.NEGATIVE_INFINITY,
			max: f.max ?? Number.POSITIVE_INFINITY,
			categories: f.categories ? new Set(f.categories.map(String)) : undefined,
		};
		input.features.push(pf);
		features.push(pf);
	}
	return { inputs, features, labels: m.labels };
}

function show(v: unknown): string {
	if (typeof v === "string")
		return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
	if (v === null || v === undefined) return "null";
	if (typeof v === "object") return Array.isArray(v) ? "an array" : "an object";
	return String(v);
}

/**
 * Coerces one value to a number for a numeric feature (rules in README, "How table values become tensors"): numbers as they are,
 * bigint to number, booleans to 1/0, numeric strings parsed; null/undefined/NaN are missing.
 * Returns the number, or a string describing the problem.
 */
function toNumber(f: PlannedFeature, v: unknown): number | string {
	let x: number;
	if (typeof v === "number") x = v;
	else if (typeof v === "bigint") x = Number(v);
	else if (typeof v === "boolean") x = v ? 1 : 0;
	else if (typeof v === "string") {
		const s = v.trim();
		x = s === "" ? Number.NaN : Number(s);
		if (s !== "" && Number.isNaN(x) && s !== "NaN")
			return `expected a number (${f.datatype}), got ${show(v)}`;
	} else if (v === null || v === undefined) x = Number.NaN;
	else return `expected a number (${f.datatype}), got ${show(v)}`;
	if (Number.isNaN(x)) {
		if (f.allowMissing) return x;
		return v === null || v === undefined || v === ""
			? "value is missing (null) and this feature does not allow missing values"
			: "NaN is not allowed for this feature (set allow_missing: true in mlship.yaml to accept it)";
	}
	if (!Number.isFinite(x))
		return `${x} is not allowed: the value must be finite`;
	if ((f.kind === "int" || f.kind === "bigint") && !Number.isInteger(x))
		return `expected an integer (${f.datatype}), got ${show(v)}`;
	if (x < f.min || x > f.max)
		return `${x} is outside the allowed range [${f.min}, ${f.max}]`;
	if (f.categories && !f.categories.has(String(x)))
		return `${x} is not one of the allowed categories (${[...f.categories].join(", ")})`;
	return x;
}

function toText(f: PlannedFeature, v: unknown): string | { error: string } {
	let s: string;
	if (typeof v === "string") s = v;
	else if (
		typeof v === "number" ||
		typeof v === "bigint" ||
		typeof v === "boolean"
	)
		s = String(v);
	else if (v === null || v === undefined) {
		if (!f.allowMissing)
			return {
				error:
					"value is missing (null) and this feature does not allow missing values",
			};
		s = "";
	} else return { error: `expected a string (BYTES), got ${show(v)}` };
	if (f.categories && !f.categories.has(s))
		return {
			error: `${show(s)} is not one of the allowed categories (${[...f.categories].join(", ")})`,
		};
	return s;
}

function writeNumber(
	out: TensorData,
	i: number,
	dt: Datatype,
	x: number,
): void {
	const kind = DATATYPE_INFO[dt].kind;
	if (kind === "bigint") (out as BigInt64Array)[i] = BigInt(Math.trunc(x));
	else if (kind === "half") (out as Uint16Array)[i] = floatToHalf(x);
	else if (kind === "bool") (out as Uint8Array)[i] = x ? 1 : 0;
	else (out as Float64Array)[i] = x;
}

/** A column source for the encoder: values by row, plus (optionally) the same values as a typed array. */
export interface ColumnSource {
	get(row: number): unknown;
	/** Numbers of the column, read directly when `valid(row)` (the fast path: no per-value coercion). */
	numbers?: ArrayLike<number>;
	valid?: (row: number) => boolean;
}

/**
 * Builds a batch of input tensors column by column. Values are coerced by the rules above; a typed
 * `numbers` source skips coercion for plain finite values (the hot path of file and stream scoring).
 * Bad values are collected (the row keeps a placeholder) so the caller can fail or drop those rows.
 */
export class TableEncoder {
	readonly plan: TablePlan;
	readonly #capacity: number;
	#data: TensorData[];
	#errors: RowError[] = [];
	rows = 0;

	readonly #shared: boolean;

	/**
	 * `shared`: numeric tensors are backed by a SharedArrayBuffer, so posting a batch to a worker thread shares its
	 * memory instead of copying it (batch jobs: the encoder hands each batch off and never writes it again).
	 */
	constructor(
		plan: TablePlan,
		capacity: number,
		opts: { shared?: boolean } = {},
	) {
		this.plan = plan;
		this.#capacity = capacity;
		this.#shared = opts.shared === true;
		this.#data = this.#alloc();
	}

	#alloc(): TensorData[] {
		return this.plan.inputs.map((inp) => {
			const n = this.#capacity * inp.width;
			const info = DATATYPE_INFO[inp.spec.datatype];
			if (!this.#shared || info.array === null)
				return allocate(inp.spec.datatype, n);
			const Ctor = info.array as unknown as new (
				b: SharedArrayBuffer,
			) => TensorData;
			return new Ctor(new SharedArrayBuffer(n * info.array.BYTES_PER_ELEMENT));
		});
	}

	get capacity(): number {
		return this.#capacity;
	}

	/** Writes rows [this.rows, this.rows + n) of feature number `fi` (index in plan.features). */
	writeColumn(fi: number, n: number, src: ColumnSource): void {
		const f = this.plan.features[fi] as PlannedFeature;
		const ii = this.plan.inputs.findIndex((i) => i.features.includes(f));
		const inp = this.plan.inputs[ii] as PlannedInput;
		const data = this.#data[ii] as TensorData;
		const dt = inp.spec.datatype;
		const width = inp.width;
		const base = this.rows;
		const fast =
			src.numbers !== undefined &&
			f.kind === "float" &&
			f.categories === undefined &&
			DATATYPE_INFO[dt].kind === "float";
		if (fast) {
			const nums = src.numbers as ArrayLike<number>;
			const valid = src.valid;
			const out = data as Float32Array;
			const { min, max } = f;
			for (let r = 0; r < n; r++) {
				const x = nums[r] as number;
				// x - x === 0 is false for NaN and ±Infinity: those take the slow path for their message.
				if (
					x - x === 0 &&
					x >= min &&
					x <= max &&
					(valid === undefined || valid(r))
				)
					out[(base + r) * width + f.col] = x;
				else
					this.#writeSlow(
						f,
						dt,
						data,
						(base + r) * width + f.col,
						src.get(r),
						base + r,
					);
			}
			return;
		}
		for (let r = 0; r < n; r++)
			this.#writeSlow(
				f,
				dt,
				data,
				(base + r) * width + f.col,
				src.get(r),
				base + r,
			);
	}

	#writeSlow(
		f: PlannedFeature,
		dt: Datatype,
		data: TensorData,
		at: number,
		v: unknown,
		row: number,
	): void {
		if (DATATYPE_INFO[dt].kind === "bytes") {
			const s = toText(f, v);
			if (typeof s === "string") (data as string[])[at] = s;
			else this.#errors.push({ row, column: f.name, message: s.error });
		} else {
			const x = toNumber(f, v);
			if (typeof x === "number") writeNumber(data, at, dt, x);
			else this.#errors.push({ row, column: f.name, message: x });
		}
	}

	/** Marks `n` more rows as written (after every feature's writeColumn for them). */
	commit(n: number): void {
		this.rows += n;
	}

	/** The tensors of the rows written so far, and the errors found; the encoder starts empty again. */
	take(): { tensors: Tensor[]; errors: RowError[] } {
		const n = this.rows;
		const tensors = this.plan.inputs.map((inp, i) => {
			const full = this.#data[i] as TensorData;
			const len = n * inp.width;
			// A shared buffer is shared whole, so a view of its rows costs nothing to post; a plain one is copied
			// whole by postMessage, so it is cut to the rows written.
			const data = (
				full.length === len
					? full
					: this.#shared && !Array.isArray(full)
						? full.subarray(0, len)
						: full.slice(0, len)
			) as TensorData;
			const shape =
				inp.spec.shape.length <= 1
					? [n]
					: [n, ...inp.spec.shape.slice(1, -1).map(() => 1), inp.width];
			return {
				name: inp.spec.name,
				datatype: inp.spec.datatype,
				shape,
				data,
			} satisfies Tensor;
		});
		const errors = this.#errors;
		if (errors.length > 1) errors.sort((a, b) => a.row - b.row);
		this.#data = this.#alloc();
		this.#errors = [];
		this.rows = 0;
		return { tensors, errors };
	}
}

/**
 * For a missing feature: the nearest key the record (or columns object) has instead, as "; did you mean …?"
 * (keys that are features themselves are not offered).
 */
function didYouMeanKey(
	feature: string,
	given: object,
	plan: TablePlan,
): string {
	const features = new Set(plan.features.map((f) => f.name));
	return didYouMean(
		feature,
		Object.keys(given).filter((k) => !features.has(k)),
	);
}

/** Encodes records (`[{feature: value}]`). Missing keys are missing values; extra keys are ignored. */
export function encodeRecords(
	plan: TablePlan,
	rows: readonly Row[],
): { tensors: Tensor[]; errors: RowError[] } {
	for (let r = 0; r < rows.length; r++) {
		const row = rows[r];
		if (row === null || typeof row !== "object" || Array.isArray(row))
			return {
				tensors: [],
				errors: [
					{
						row: r,
						column: "",
						message: `expected an object, got ${show(row)}`,
					},
				],
			};
		for (const f of plan.features)
			if (!(f.name in row))
				return {
					tensors: [],
					errors: [
						{
							row: r,
							column: f.name,
							message: `missing feature '${f.name}'${didYouMeanKey(f.name, row, plan)}`,
						},
					],
				};
	}
	// Each feature's values gathered into one number column first, so the encoder takes its fast path (no coercion
	// call per value); a value that is not a plain number is NaN there and goes through the coercion rules from `get`.
	const n = rows.length;
	const enc = new TableEncoder(plan, n);
	const nums = new Float64Array(n);
	plan.features.forEach((f, fi) => {
		const name = f.name;
		for (let r = 0; r < n; r++) {
			const v = (rows[r] as Row)[name];
			nums[r] = typeof v === "number" ? v : Number.NaN;
		}
		enc.writeColumn(fi, n, {
			get: (r) => (rows[r] as Row)[name],
			numbers: nums,
		});
	});
	enc.commit(n);
	return enc.take();
}

/** Encodes columns (`{feature: [values]}`); all feature columns must be present and of one length. */
export function encodeColumns(
	plan: TablePlan,
	cols: Columns,
): { tensors: Tensor[]; errors: RowError[]; rows: number } {
	let n = -1;
	for (const f of plan.features) {
		const c = cols[f.name];
		if (c === undefined || c === null || typeof c.length !== "number")
			throw invalidInput(
				`missing feature column '${f.name}'${didYouMeanKey(f.name, cols, plan)} (the model needs: ${plan.features.map((x) => x.name).join(", ")})`,
			);
		if (n >= 0 && c.length !== n)
			throw invalidInput(
				`column '${f.name}' has ${c.length} values but the others have ${n}`,
			);
		n = c.length;
	}
	const rows = Math.max(n, 0);
	const enc = new TableEncoder(plan, rows);
	plan.features.forEach((f, fi) => {
		const c = cols[f.name] as Column;
		// A Float64Array column takes the encoder's fast path (no coercion call per plain number).
		enc.writeColumn(fi, rows, {
			get: (r) => c[r],
			...(c instanceof Float64Array ? { numbers: c } : {}),
		});
	});
	enc.commit(rows);
	return { ...enc.take(), rows };
}

/** Formats a row error for people: 1-based row number plus column. */
export function formatRowError(e: RowError, rowBase = 0): string {
	return `row ${rowBase + e.row + 1}${e.column ? `, column '${e.column}'` : ""}: ${e.message}`;
}

/** Keeps only the rows `keep` (ascending, 0-based) of batch tensors. */
export function selectRows(
	tensors: readonly Tensor[],
	keep: readonly number[],
): Tensor[] {
	return tensors.map((t) => {
		const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
		const data = allocate(t.datatype, keep.length * width);
		const src = t.data as Float32Array;
		const dst = data as Float32Array;
		keep.forEach((r, i) => {
			for (let j = 0; j < width; j++)
				dst[i * width + j] = src[r * width + j] as number;
		});
		return { ...t, shape: [keep.length, ...t.shape.slice(1)], data };
	});
}

function scalar(t: Tensor, i: number): number | string | boolean {
	const kind = DATATYPE_INFO[t.datatype].kind;
	const v = (t.data as ArrayLike<unknown>)[i];
	if (kind === "bigint") return Number(v as bigint);
	if (kind === "half") return halfToFloat(v as number);
	if (kind === "bool") return v !== 0;
	return v as number | string;
}

/** True when output `t` holds class indices to be shown as class names. */
function isClassIndex(plan: TablePlan, t: Tensor, width: number): boolean {
	const kind = DATATYPE_INFO[t.datatype].kind;
	return (
		plan.labels !== undefined &&
		width === 1 &&
		(kind === "int" || kind === "bigint")
	);
}

/**
 * Model outputs → records. One-value-per-row outputs become scalars (class indices become class names when
 * the manifest has `labels`); wider outputs become arrays.
 */
export function outputsToRecords(
	plan: TablePlan,
	outputs: readonly Tensor[],
): Row[] {
	const n = outputs[0]?.shape[0] ?? 0;
	const rows: Row[] = Array.from({ length: n }, () => ({}));
	for (const t of outputs) {
		const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
		const labels = isClassIndex(plan, t, width) ? plan.labels : undefined;
		for (let r = 0; r < n; r++) {
			const row = rows[r] as Row;
			if (width === 1) {
				const v = scalar(t, r);
				row[t.name] = labels ? (labels[v as number] ?? v) : v;
			} else {
				const arr = new Array(width);
				for (let j = 0; j < width; j++) arr[j] = scalar(t, r * width + j);
				row[t.name] = arr;
			}
		}
	}
	return rows;
}

/** One output column of outputsToColumns. */
export interface OutputColumn {
	name: string;
	/** The values, one per row (built on first read when the column also has `numbers` or `codes`). */
	readonly values: unknown[];
	/** A float output's values as a typed array of its own precision (FP32, FP64): for writers that copy arrays. */
	numbers?: Float32Array | Float64Array;
	/** A class-index output shown as class names: `values[r]` is `names[indices[r]]`, the index itself beyond them. */
	codes?: {
		indices: BigInt64Array | Int32Array | Int16Array | Int8Array;
		names: readonly string[];
	};
}

/**
 * Model outputs → flat columns for tables. A wide output `p` of width k becomes columns `p_<label>` when
 * k equals the number of labels, else `p_0` … `p_{k-1}`. Float and class-index columns keep their typed
 * form too (`numbers`, `codes`) and build `values` only when read, so a writer that copies arrays pays for
 * no per-row JavaScript values.
 */
export function outputsToColumns(
	plan: TablePlan,
	outputs: readonly Tensor[],
): OutputColumn[] {
	const cols: OutputColumn[] = [];
	const n = outputs[0]?.shape[0] ?? 0;
	for (const t of outputs) {
		const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
		const kind = DATATYPE_INFO[t.datatype].kind;
		const labels =
			width === 1 && isClassIndex(plan, t, width) ? plan.labels : undefined;
		const names =
			plan.labels && plan.labels.length === width ? plan.labels : undefined;
		for (let j = 0; j < width; j++) {
			const name = width === 1 ? t.name : `${t.name}_${names ? names[j] : j}`;
			const data = t.data;
			if (
				labels &&
				(data instanceof BigInt64Array ||
					data instanceof Int32Array ||
					data instanceof Int16Array ||
					data instanceof Int8Array)
			) {
				const indices = data.length === n ? data : data.subarray(0, n);
				cols.push(
					lazyColumn(name, { codes: { indices, names: labels } }, () => {
						const values = new Array(n);
						for (let r = 0; r < n; r++)
							values[r] = labels[Number(indices[r])] ?? scalar(t, r);
						return values;
					}),
				);
			} else if (
				!labels &&
				(data instanceof Float32Array || data instanceof Float64Array)
			) {
				let numbers: Float32Array | Float64Array;
				if (width === 1)
					numbers = data.length === n ? data : data.subarray(0, n);
				else {
					numbers =
						data instanceof Float32Array
							? new Float32Array(n)
							: new Float64Array(n);
					for (let r = 0; r < n; r++)
						numbers[r] = data[r * width + j] as number;
				}
				const typed = numbers;
				cols.push(lazyColumn(name, { numbers }, () => Array.from(typed)));
			} else {
				const values = new Array(n);
				if (labels)
					for (let r = 0; r < n; r++)
						values[r] = labels[Number(t.data[r])] ?? scalar(t, r);
				else if (kind === "int") {
					const src = t.data as Int32Array;
					for (let r = 0; r < n; r++) values[r] = src[r * width + j];
				} else for (let r = 0; r < n; r++) values[r] = scalar(t, r * width + j);
				cols.push({ name, values });
			}
		}
	}
	return cols;
}

/** A column whose `values` are built by `build` on first read (an own getter: spreading the column keeps them). */
function lazyColumn(
	name: string,
	typed: Pick<OutputColumn, "numbers" | "codes">,
	build: () => unknown[],
): OutputColumn {
	let values: unknown[] | undefined;
	return {
		name,
		...typed,
		get values() {
			values ??= build();
			return values;
		},
	};
}

/**
 * Checks the BYTES inputs of raw tensors against the categories the manifest allows, so an unknown
 * category is a 400 that names it (not a failure inside the model). No-op for plans without categories.
 */
export function checkCategories(
	plan: TablePlan,
	inputs: readonly Tensor[],
): void {
	for (const inp of plan.inputs) {
		if (DATATYPE_INFO[inp.spec.datatype].kind !== "bytes") continue;
		const t = inputs.find((x) => x.name === inp.spec.name);
		if (!t) continue;
		const data = t.data as string[];
		const w = inp.width;
		for (const f of inp.features) {
			if (!f.categories) continue;
			for (let r = 0; r * w + f.col < data.length; r++) {
				const v = data[r * w + f.col] as string;
				if (!f.categories.has(v))
					throw invalidInput(
						`input '${t.name}', row ${r + 1} (feature '${f.name}'): ${show(v)} is not one of the allowed categories (${[...f.categories].join(", ")})`,
					);
			}
		}
	}
}

/** Per plan, once: each feature's input, column, and name as a JSON object key (`"name":`). */
const JSON_COLUMNS = new WeakMap<
	TablePlan,
	{ input: string; width: number; col: number; key: string }[]
>();

/**
 * Input tensors as JSON text: an array with one object of feature → value per row (the inverse of encodeRecords,
 * for payload logs). Written straight to a string (no objects per row: it runs once per logged request). Numbers
 * are the values the model received (an FP32 5.1 is 5.099999904632568); NaN and ±Infinity are null; 64-bit
 * integers become numbers.
 */
export function inputsToJson(
	plan: TablePlan,
	inputs: readonly Tensor[],
): { json: string; rows: number } {
	let cols = JSON_COLUMNS.get(plan);
	if (!cols) {
		cols = plan.inputs.flatMap((inp) =>
			inp.features.map((f) => ({
				input: inp.spec.name,
				width: inp.width,
				col: f.col,
				key: `${JSON.stringify(f.name)}:`,
			})),
		);
		JSON_COLUMNS.set(plan, cols);
	}
	const tensors: (Tensor | undefined)[] = [];
	let n = 0;
	for (const c of cols) {
		const t =
			tensors.length > 0 && tensors.at(-1)?.name === c.input
				? tensors.at(-1)
				: inputs.find((x) => x.name === c.input);
		tensors.push(t);
		if (t) n = Math.max(n, t.shape[0] ?? 0);
	}
	let s = "[";
	for (let r = 0; r < n; r++) {
		s += r === 0 ? "{" : ",{";
		let first = true;
		for (let j = 0; j < cols.length; j++) {
			const t = tensors[j];
			if (!t) continue;
			const c = cols[j] as (typeof cols)[number];
			s +=
				(first ? "" : ",") + c.key + jsonScalar(scalar(t, r * c.width + c.col));
			first = false;
		}
		s += "}";
	}
	return { json: `${s}]`, rows: n };
}

function jsonScalar(v: number | string | boolean): string {
	if (typeof v === "number") return Number.isFinite(v) ? `${v}` : "null";
	if (typeof v === "string") return JSON.stringify(v);
	return v ? "true" : "false";
}
