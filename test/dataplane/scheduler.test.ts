// The scheduler's contract: batches form under load, queues are bounded, deadlines hold, failures stay per batch.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
	Scheduler,
	type SchedulerSettings,
} from "../../src/dataplane/scheduler.ts";
import { MlshipError } from "../../src/protocol/errors.ts";
import type { Tensor } from "../../src/protocol/types.ts";

const row = (v: number, rows = 1): Tensor[] => [
	{
		name: "x",
		datatype: "FP32",
		shape: [rows, 1],
		data: new Float32Array(rows).fill(v),
	},
];

/** A runner whose batches finish only when released, recording every batch it saw. */
function gatedRunner() {
	const batches: number[][] = [];
	const gates: (() => void)[] = [];
	const run = (inputs: Tensor[]) => {
		batches.push(Array.from(inputs[0]?.data as Float32Array));
		return new Promise<Tensor[]>((resolve) =>
			gates.push(() =>
				resolve([
					{
						...(inputs[0] as Tensor),
						name: "y",
						data: ((inputs[0] as Tensor).data as Float32Array).map(
							(x) => x * 10,
						),
					},
				]),
			),
		);
	};
	const releaseAll = () => {
		for (const g of gates.splice(0)) g();
	};
	return { batches, run, releaseAll, pending: () => gates.length };
}

const settings = (s: Partial<SchedulerSettings> = {}): SchedulerSettings => ({
	maxBatchSize: 8,
	maxQueueDelayUs: 0,
	maxQueueSize: 100,
	concurrency: 1,
	...s,
});

const tick = () => new Promise((r) => setImmediate(r));

describe("Scheduler", () => {
	it("requests that arrive while the runner is busy are batched, and each gets its own rows back", async () => {
		const g = gatedRunner();
		const s = new Scheduler(settings(), g.run);
		const first = s.submit(row(1), ["y"]);
		const rest = [2, 3, 4, 5].map((v) => s.submit(row(v), ["y"]));
		await tick();
		assert.deepEqual(g.batches, [[1]]);
		g.releaseAll();
		await first;
		await tick();
		assert.deepEqual(g.batches, [[1], [2, 3, 4, 5]]);
		g.releaseAll();
		const outs = await Promise.all(rest);
		assert.deepEqual(
			outs.map((o) => Array.from(o[0]?.data as Float32Array)),
			[[20], [30], [40], [50]],
		);
	});

	it("a batch never exceeds max_batch_size rows; max_batch_size 1 means no batching", async () => {
		for (const max of [3, 1]) {
			const g = gatedRunner();
			const s = new Scheduler(settings({ maxBatchSize: max }), g.run);
			const all = [0, 1, 2, 3, 4, 5, 6].map((v) => s.submit(row(v), ["y"]));
			for (let i = 0; i < 10; i++) {
				await tick();
				g.releaseAll();
			}
			await Promise.all(all);
			assert.ok(
				g.batches.every((b) => b.length <= max),
				JSON.stringify(g.batches),
			);
			assert.deepEqual(g.batches.flat(), [0, 1, 2, 3, 4, 5, 6]);
		}
	});

	it("requests with different inner shapes or outputs are not mixed", async () => {
		const g = gatedRunner();
		const s = new Scheduler(settings(), g.run);
		const a = s.submit(row(1), ["y"]);
		const b = s.submit(row(2), ["y"]);
		const c = s.submit(
			[
				{
					name: "x",
					datatype: "FP32",
					shape: [1, 2],
					data: new Float32Array([3, 3]),
				},
			],
			["y"],
		);
		const d = s.submit(row(4), ["z"]);
		for (let i = 0; i < 6; i++) {
			await tick();
			g.releaseAll();
		}
		await Promise.all([a, b, c, d]);
		assert.deepEqual(g.batches, [[1], [2], [3, 3], [4]]);
	});

	it("a full queue refuses at once with MLSHIP_OVERLOADED", async () => {
		const g = gatedRunner();
		const s = new Scheduler(settings({ maxQueueSize: 2 }), g.run);
		const running = s.submit(row(0), ["y"]);
		await tick();
		const q = [s.submit(row(1), ["y"]), s.submit(row(2), ["y"])];
		await assert.rejects(
			s.submit(row(3), ["y"]),
			(e: unknown) =>
				e instanceof MlshipError &&
				e.code === "MLSHIP_OVERLOADED" &&
				e.status === 503,
		);
		g.releaseAll();
		await running;
		await tick();
		g.releaseAll();
		await Promise.all(q);
	});

	it("a request that cannot start before its timeout is refused with MLSHIP_TIMEOUT; the others still run", async () => {
		const g = gatedRunner();
		const s = new Scheduler(settings(), g.run);
		const running = s.submit(row(0), ["y"]);
		await tick();
		const late = s.submit(row(1), ["y"], 5);
		await assert.rejects(
			late,
			(e: unknown) => e instanceof MlshipError && e.code === "MLSHIP_TIMEOUT",
		);
		const ok = s.submit(row(2), ["y"]);
		g.releaseAll();
		await running;
		await tick();
		g.releaseAll();
		assert.deepEqual(Array.from((await ok)[0]?.data as Float32Array), [20]);
		assert.deepEqual(g.batches.flat(), [0, 2]);
	});

	it("a request that names no timeout waits the default timeout (defaultTimeoutMs), not 0 ms", async (t) => {
		t.mock.timers.enable({ apis: ["setTimeout"] });
		const g = gatedRunner();
		const s = new Scheduler(settings({ defaultTimeoutMs: 500 }), g.run);
		const running = s.submit(row(0), ["y"]);
		await tick();
		const settled: string[] = [];
		const queued = [1, 2, 3].map((v) =>
			s.submit(row(v), ["y"]).then(
				(r) => {
					settled.push(`ok ${r[0]?.data[0]}`);
				},
				(e: MlshipError) => {
					settled.push(e.code);
				},
			),
		);
		// 100 of the 500 ms pass: nothing queued may have timed out yet.
		t.mock.timers.tick(100);
		await tick();
		assert.deepEqual(settled, []);
		assert.equal(s.waiting, 3);
		g.releaseAll();
		await running;
		await tick();
		g.releaseAll();
		await Promise.all(queued);
		assert.deepEqual(settled, ["ok 10", "ok 20", "ok 30"]);
	});

	it("the default timeout still refuses a request that cannot start within it", async (t) => {
		t.mock.timers.enable({ apis: ["setTimeout"] });
		const g = gatedRunner();
		const s = new Scheduler(settings({ defaultTimeoutMs: 500 }), g.run);
		const running = s.submit(row(0), ["y"]);
		await tick();
		const late = s.submit(row(1), ["y"]);
		t.mock.timers.tick(500);
		await assert.rejects(late, /did not start within its 500 ms timeout/);
		g.releaseAll();
		await running;
	});

	it("a failed batch fails each of its requests with the error, and the next batch runs", async () => {
		let calls = 0;
		const s = new Scheduler(settings({ concurrency: 1 }), async (inputs) => {
			calls++;
			if (calls === 2) throw new MlshipError("MLSHIP_INTERNAL", "boom");
			return inputs;
		});
		const first = s.submit(row(1), ["x"]);
		const failed = [s.submit(row(2), ["x"]), s.submit(row(3), ["x"])];
		await first;
		for (const f of failed) await assert.rejects(f, /boom/);
		assert.equal((await s.submit(row(4), ["x"]))[0]?.data[0], 4);
	});

	it("max_queue_delay_us waits to fill a batch when the runner is idle", async () => {
		const g = gatedRunner();
		const s = new Scheduler(
			settings({ maxQueueDelayUs: 20_000, maxBatchSize: 4 }),
			g.run,
		);
		const all = [1, 2, 3].map((v) => s.submit(row(v), ["y"]));
		await tick();
		assert.deepEqual(
			g.batches,
			[],
			"nothing dispatched before the delay or a full batch",
		);
		const fourth = s.submit(row(4), ["y"]);
		await tick();
		assert.deepEqual(g.batches, [[1, 2, 3, 4]], "a full batch goes at once");
		g.releaseAll();
		await Promise.all([...all, fourth]);
	});

	it("drain finishes queued work and then refuses new requests", async () => {
		const g = gatedRunner();
		const s = new Scheduler(settings(), g.run);
		const a = s.submit(row(1), ["y"]);
		const b = s.submit(row(2), ["y"]);
		await tick();
		const drained = s.drain();
		await assert.rejects(
			s.submit(row(3), ["y"]),
			(e: unknown) => e instanceof MlshipError && e.code === "MLSHIP_CLOSED",
		);
		g.releaseAll();
		await a;
		await tick();
		g.releaseAll();
		await b;
		await drained;
	});
});
