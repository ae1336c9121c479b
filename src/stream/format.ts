// Message payload formats: JSON (default), Avro (schema file; Confluent wire format or bare datums) and CSV.
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Schema, Type } from "avsc";
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { invalidInput, MlshipError } from "../protocol/errors.ts";

/**
 * How payloads are read and results written. `decode` turns a payload into the JSON-shaped body a request is read
 * from (a record, a list of records, `{"records": …}` or an OIP request); `encode` turns a result body into bytes.
 */
export interface PayloadFormat {
	readonly name: FormatName;
	decode(value: Buffer): unknown;
	encode(body: ResultBody): Buffer;
}

/** A records result, before it is encoded. */
export interface ResultBody {
	id: string;
	key?: string | undefined;
	model_name: string;
	model_version: string | undefined;
	predictions: unknown[];
}

export const FORMATS = ["json", "avro", "csv"] as const;
export type FormatName = (typeof FORMATS)[number];

/** JSON: payloads parsed with JSON.parse, results written with JSON.stringify. */
export const jsonFormat: PayloadFormat = {
	name: "json",
	decode(value) {
		try {
			return JSON.parse(value.toString("utf8"));
		} catch (err) {
			throw invalidInput(`the message is not JSON: ${(err as Error).message}`);
		}
	},
	encode(body) {
		return Buffer.from(JSON.stringify(body), "utf8");
	},
};

/** Avro framing: Confluent's wire format (magic byte 0, 4-byte schema id, datum) or the bare datum. */
export type AvroFraming = "confluent" | "none";
export const AVRO_FRAMINGS: readonly AvroFraming[] = ["confluent", "none"];

export interface AvroOptions {
	/** The input records' schema (.avsc, JSON). */
	schema: string;
	framing?: AvroFraming | undefined;
	/** Where to write the results' schema (derived from the model's first result) for readers. */
	resultSchema?: string | undefined;
	/** Schema id written in the results' Confluent frame (default 0: no registry assigned one). */
	resultSchemaId?: number | undefined;
}

const MAGIC = 0;
const HEADER = 5;

/**
 * Avro payloads with a schema file: each input is one datum of that schema (a record: one row), framed in
 * Confluent's wire format by default (its schema id is not looked up: the file is the schema). Results are Avro
 * too, framed the same way, with a schema derived from the model's outputs on the first result
 * (`MlshipResult {id, key, model_name, model_version, predictions: [Prediction]}`) and written to `resultSchema`.
 */
export async function avroFormat(o: AvroOptions): Promise<PayloadFormat> {
	// Loaded only for Avro streams.
	const avro = (await import("avsc")).default;
	let schema: unknown;
	try {
		schema = JSON.parse(await readFile(o.schema, "utf8"));
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--schema ${o.schema}: cannot read an Avro schema (JSON) from it: ${(err as Error).message}`,
		);
	}
	let input: Type;
	try {
		input = avro.Type.forSchema(schema as Schema);
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`--schema ${o.schema}: not a valid Avro schema: ${(err as Error).message}`,
		);
	}
	const framed = (o.framing ?? "confluent") === "confluent";
	let output: Type | undefined;
	const frame = Buffer.alloc(HEADER);
	frame.writeUInt8(MAGIC, 0);
	frame.writeUInt32BE(o.resultSchemaId ?? 0, 1);
	return {
		name: "avro",
		decode(value) {
			let datum = value;
			if (framed) {
				if (value.length < HEADER || value[0] !== MAGIC)
					throw invalidInput(
						"not in Confluent's Avro wire format (magic byte 0 and a 4-byte schema id); use --avro-framing none for bare Avro datums",
					);
				datum = value.subarray(HEADER);
			}
			try {
				return input.fromBuffer(datum);
			} catch (err) {
				throw invalidInput(
					`the message is not an Avro datum of ${o.schema}: ${(err as Error).message}`,
				);
			}
		},
		encode(body) {
			if (output === undefined) {
				const t = resultType(avro.Type, body);
				// Once, before the first result: readers need it to read any result.
				if (o.resultSchema !== undefined)
					writeFileSync(o.resultSchema, JSON.stringify(t.schema(), null, 2));
				output = t;
			}
			const datum = output.toBuffer({ ...body, key: body.key ?? null });
			return framed ? Buffer.concat([frame, datum]) : datum;
		},
	};
}

/** The results' Avro type: fixed fields plus a Prediction record inferred from the model's first prediction. */
function resultType(types: typeof Type, body: ResultBody): Type {
	const prediction = widen(
		types.forValue(body.predictions[0] ?? {}).schema(),
	) as object;
	return types.forSchema({
		type: "record",
		name: "MlshipResult",
		namespace: "dev.mlship",
		fields: [
			{ name: "id", type: "string" },
			{ name: "key", type: ["null", "string"], default: null },
			{ name: "model_name", type: "string" },
			{ name: "model_version", type: ["null", "string"], default: null },
			{
				name: "predictions",
				type: {
					type: "array",
					items: { ...prediction, name: "Prediction" },
				},
			},
		],
	} as Schema);
}

/** Every number type as double: the first prediction's 1 or 0 must not make later 0.97s unwritable. */
function widen(schema: unknown): unknown {
	if (schema === "int" || schema === "long" || schema === "float")
		return "double";
	if (Array.isArray(schema)) return schema.map(widen);
	if (schema !== null && typeof schema === "object") {
		const out: Record<string, unknown> = {};
		for (const [k, v] of Object.entries(schema))
			out[k] = k === "name" || k === "namespace" ? v : widen(v);
		return out;
	}
	return schema;
}

/**
 * CSV: a message is a small CSV document — a header row, then one row per record (numbers read as numbers). A
 * result is CSV too: a header row, then one row per prediction with `id, key, model_name, model_version` and the
 * prediction's fields (a list becomes `name_0, name_1, …`).
 */
export const csvFormat: PayloadFormat = {
	name: "csv",
	decode(value) {
		try {
			return parse(value, {
				columns: true,
				cast: true,
				skip_empty_lines: true,
			}) as unknown[];
		} catch (err) {
			throw invalidInput(
				`the message is not CSV with a header row: ${(err as Error).message}`,
			);
		}
	},
	encode(body) {
		const rows = body.predictions.map((p) => {
			const row: Record<string, unknown> = {
				id: body.id,
				key: body.key ?? "",
				model_name: body.model_name,
				model_version: body.model_version ?? "",
			};
			flatten(p, "", row);
			return row;
		});
		return Buffer.from(stringify(rows, { header: true }), "utf8");
	},
};

/** Nested lists and objects as `name_0`, `name_key` columns. */
function flatten(v: unknown, name: string, out: Record<string, unknown>): void {
	const prefix = name === "" ? "" : `${name}_`;
	if (Array.isArray(v))
		for (const [i, x] of v.entries()) flatten(x, `${prefix}${i}`, out);
	else if (v !== null && typeof v === "object")
		for (const [k, x] of Object.entries(v)) flatten(x, `${prefix}${k}`, out);
	else out[name === "" ? "value" : name] = v;
}
