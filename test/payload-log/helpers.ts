// What the payload log stores for FP32 features: the float32 the model received (5.1 → 5.099999904632568).
import type { Row } from "../../src/codec/table.ts";

/** Records with every number rounded to float32, as the log shows the inputs of an FP32 model. */
export function asFloat32(rows: readonly Row[]): Row[] {
	return rows.map((r) =>
		Object.fromEntries(
			Object.entries(r).map(([k, v]) => [
				k,
				typeof v === "number" ? Math.fround(v) : v,
			]),
		),
	);
}
