// The Runtime conformance suite: every runtime runs runRuntimeContract once per execution mode it supports.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Bundle, readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import type {
	LoadedModel,
	LoadOptions,
	Runtime,
} from "../../src/runtime/types.ts";
import { assertTensorsMatch, bundleDir, golden } from "../helpers/fixtures.ts";

/** One execution mode of a runtime: load options (and shared threads to start and stop around the suite). */
export interface RuntimeMode {
	name: string;
	runtime: () => Promise<Runtime>;
	/** Options per load; `setup` may start shared threads that the options then name. */
	options: () => LoadOptions;
	setup?: () => Promise<void>;
	teardown?: () => Promise<void>;
	/** Whether loaded models offer predictSync (blocking mode). */
	sync?: boolean;
}

/** Inputs of a fixture's golden records, encoded by its manifest. */
function goldenInputs(b: Bundle, fixture: string): Tensor[] {
	const { tensors, errors } = encodeRecords(
		planTable(b.manifest),
		golden(fixture).records,
	);
	assert.deepEqual(errors, []);
	return tensors;
}

function assertGolden(fixture: string, outs: Tensor[], names: string[]): void {
	assert.deepEqual(
		outs.map((o) => o.name),
		names,
		`${fixture}: outputs in the order asked`,
	);
	assertTensorsMatch(fixture, outs);
}

/**
 * Runs the contract against `mode` for each fixture in `fixtures` (bundles the runtime can load): signature,
 * golden outputs, output selection, concurrency, sizes, and unloading.
 */
export function runRuntimeContract(
	mode: RuntimeMode,
	fixtures: readonly string[],
): void {
	describe(`runtime contract: ${mode.name}`, () => {
		let rt: Runtime;
		const bundles = new Map<string, Bundle>();
		const models = new Map<string, LoadedModel>();

		before(async () => {
			rt = await mode.runtime();
			await mode.setup?.();
			for (const f of fixtures) {
				const b = await readBundle(bundleDir(f));
				bundles.set(f, b);
				models.set(f, await rt.load(b, mode.options()));
			}
		});
		after(async () => {
			for (const m of models.values()) await m.unload();
			await mode.teardown?.();
		});

		it("names itself and its OIP platform", () => {
			assert.match(rt.name, /^[a-z][a-z0-9_-]*$/);
			assert.ok(rt.platform.length > 0, "platform is not empty");
		});

		it("a loaded model has the manifest's signature, runs at least one batch at a time and has a size", () => {
			for (const f of fixtures) {
				const m = models.get(f) as LoadedModel;
				assert.deepEqual(
					m.signature,
					(bundles.get(f) as Bundle).manifest.signature,
				);
				assert.ok(Number.isInteger(m.concurrency) && m.concurrency >= 1);
				assert.ok(m.bytes > 0, `${f}: estimated bytes`);
			}
		});

		it("every fixture gives its golden outputs, all of them when none are named", async () => {
			for (const f of fixtures) {
				const m = models.get(f) as LoadedModel;
				const outs = await m.predict(goldenInputs(bundles.get(f) as Bundle, f));
				assertGolden(
					f,
					outs,
					m.signature.outputs.map((o) => o.name),
				);
			}
		});

		it("named outputs: only those come back, in the order asked", async () => {
			for (const f of fixtures) {
				const m = models.get(f) as LoadedModel;
				const names = m.signature.outputs.map((o) => o.name).reverse();
				const last = [names[0] as string];
				assertGolden(
					f,
					await m.predict(goldenInputs(bundles.get(f) as Bundle, f), last),
					last,
				);
				assertGolden(
					f,
					await m.predict(goldenInputs(bundles.get(f) as Bundle, f), names),
					names,
				);
			}
		});

		it("concurrent calls (busy or not) each get their own answers", async () => {
			const calls = fixtures.flatMap((f) =>
				[false, true, false, true].map(async (busy) => {
					const m = models.get(f) as LoadedModel;
					const names = m.signature.outputs.map((o) => o.name);
					assertGolden(
						f,
						await m.predict(
							goldenInputs(bundles.get(f) as Bundle, f),
							names,
							busy,
						),
						names,
					);
				}),
			);
			await Promise.all(calls);
		});

		if (mode.sync)
			it("predictSync answers as predict does, on the calling thread's turn", () => {
				for (const f of fixtures) {
					const m = models.get(f) as LoadedModel;
					assert.ok(m.predictSync, `${f}: predictSync in this mode`);
					const names = m.signature.outputs.map((o) => o.name);
					assertGolden(
						f,
						m.predictSync(goldenInputs(bundles.get(f) as Bundle, f), names),
						names,
					);
				}
			});

		it("an unloaded model refuses calls with MLSHIP_CLOSED; unloading twice is harmless", async () => {
			const f = fixtures[0] as string;
			const m = await rt.load(bundles.get(f) as Bundle, mode.options());
			await m.unload();
			await m.unload();
			await assert.rejects(
				m.predict(goldenInputs(bundles.get(f) as Bundle, f)),
				(e: unknown) => (e as { code?: string }).code === "MLSHIP_CLOSED",
			);
		});
	});
}
