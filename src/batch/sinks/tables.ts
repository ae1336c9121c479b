// Shared by the table sinks: column layout (ids, model, version, predictions) and SQL types per database.
import { duckTypeFor } from "../files.ts";
import type { KeptColumn, PredictionColumn } from "../types.ts";

/** The columns a sink table holds, in order, with DuckDB-style type names. */
export function tableColumns(
	kept: readonly KeptColumn[],
	predictions: readonly PredictionColumn[],
): { name: string; type: string }[] {
	return [
		...kept.map((k) => ({ name: k.name, type: k.type })),
		...predictions.map((p) => ({
			name: p.name,
			type: duckTypeFor(p.datatype, p.text).toString(),
		})),
	];
}

/** A DuckDB-style type name → a SQLite column type. */
export function sqliteColumnType(type: string): string {
	if (/INT/.test(type) || type === "BOOLEAN") return "INTEGER";
	if (type === "DOUBLE" || type === "FLOAT") return "REAL";
	return "TEXT";
}

/** A value as node:sqlite binds it (numbers, bigints, text, NULL). */
export function sqliteValue(v: unknown): null | number | bigint | string {
	if (v === null || v === undefined) return null;
	if (typeof v === "boolean") return v ? 1 : 0;
	if (typeof v === "number" || typeof v === "bigint" || typeof v === "string")
		return v;
	return String(v);
}

/** Row-major cell values of a chunk: ids, stamp, then predictions. */
export function rowValues(
	kept: readonly KeptColumn[],
	predictions: readonly PredictionColumn[],
	r: number,
): unknown[] {
	return [
		...kept.map((k) => k.values[r]),
		...predictions.map((p) => p.values[r]),
	];
}
