// The contract every batch source and sink keeps (one suite, run by every implementation).
import assert from "node:assert/strict";
import { it } from "node:test";
import type {
	BatchSink,
	BatchSource,
	KeptColumn,
	PredictionColumn,
} from "../../src/batch/types.ts";

/** The rows every source under test holds: id, a number, a text. */
export const ROWS = Array.from({ length: 5000 }, (_, i) => ({
	id: i + 1,
	x: (i % 97) / 4,
	s: `r${i % 13}`,
}));

/**
 * Sources: every row exactly once with its values; the encoder view (`source(i)`) agrees with `values(i)`;
 * `total()` is either unknown or right; a missing column is absent from `columns()`.
 */
export function runSourceContract(
	name: string,
	open: () => BatchSource | Promise<BatchSource>,
): void {
	it(`${name}: delivers every row once, with its values`, async () => {
		const src = await open();
		try {
			const cols = await src.columns();
			for (const c of ["id", "x", "s"]) assert.ok(cols.has(c), `column ${c}`);
			assert.equal(cols.has("nope"), false);
			const total = await src.total();
			assert.ok(total === undefined || total === ROWS.length, `total ${total}`);
			const got: { id: number; x: number; s: string }[] = [];
			for await (const ch of src.chunks(["id", "x", "s"])) {
				const ids = ch.values(0);
				const xs = ch.values(1);
				const ss = ch.values(2);
				assert.equal(ids.length, ch.rows);
				const enc = ch.source(1);
				for (let r = 0; r < ch.rows; r++) {
					assert.equal(
						Number(enc.get(r)),
						Number(xs[r]),
						"source() agrees with values()",
					);
					got.push({ id: Number(ids[r]), x: Number(xs[r]), s: String(ss[r]) });
				}
			}
			got.sort((a, b) => a.id - b.id);
			assert.deepEqual(got, ROWS);
			assert.deepEqual(await src.rejected(), []);
		} finally {
			await src.close();
		}
	});
}

const kept = (ids: number[]): KeptColumn[] => [
	{ name: "id", type: "BIGINT", values: ids },
	{
		name: "model",
		type: "VARCHAR",
		values: ids.map(() => "m"),
		constant: { value: "m" },
	},
];
const preds = (ids: number[]): PredictionColumn[] => [
	{
		name: "label",
		datatype: "BYTES",
		text: true,
		values: ids.map((i) => (i % 2 ? "odd" : "even")),
	},
	{ name: "p", datatype: "FP32", text: false, values: ids.map((i) => i / 8) },
];

/**
 * Sinks: two chunks written then finished read back as written (ids, the constant column, predictions);
 * aborted, nothing is visible.
 */
export function runSinkContract(
	name: string,
	open: () => Promise<{
		sink: BatchSink;
		read: () => Promise<Record<string, unknown>[] | undefined>;
	}>,
): void {
	it(`${name}: finish makes the written rows visible, in full`, async () => {
		const { sink, read } = await open();
		const a = [1, 2, 3];
		const b = [4, 5];
		await sink.write(kept(a), preds(a), a.length);
		await sink.write(kept(b), preds(b), b.length);
		assert.equal(await read(), undefined, "nothing visible before finish");
		await sink.finish();
		const rows = ((await read()) ?? []).map((r) => ({
			id: Number(r.id),
			model: r.model,
			label: r.label,
			p: Number(r.p),
		}));
		rows.sort((x, y) => x.id - y.id);
		assert.deepEqual(
			rows,
			[...a, ...b].map((i) => ({
				id: i,
				model: "m",
				label: i % 2 ? "odd" : "even",
				p: i / 8,
			})),
		);
	});

	it(`${name}: abort leaves nothing behind`, async () => {
		const { sink, read } = await open();
		await sink.write(kept([1]), preds([1]), 1);
		await sink.abort();
		assert.equal(await read(), undefined);
	});
}
