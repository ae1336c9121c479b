// CPU per request of the feedback hook (keeping an answer by request id), the cost `serve` pays with feedback on.
// Run: node bench/feedback/hook.ts  (prints ns per call for a one-row 3-class answer, UUID ids, at the 100,000-id cap)
import { randomUUID } from "node:crypto";
import { FeedbackJoin } from "../../src/feedback/join.ts";

const join = new FeedbackJoin({ maxIds: 100_000 });
const labels = ["setosa", "versicolor", "virginica"];
const N = 300_000;
const ids = Array.from({ length: N }, () => randomUUID());
const call = (requestId: string) => ({
	model: "iris",
	version: 1,
	requestId,
	inputs: [],
	seconds: 0,
	plan: { inputs: [], features: [], labels },
	reference: undefined,
	outputs: [
		{
			name: "label",
			datatype: "INT64" as const,
			shape: [1],
			data: new BigInt64Array([1n]),
		},
		{
			name: "probabilities",
			datatype: "FP32" as const,
			shape: [1, 3],
			data: new Float32Array([0.1, 0.7, 0.2]),
		},
	],
});
const calls = ids.map(call);
for (let i = 0; i < 100_000; i++)
	join.hook(calls[i] as ReturnType<typeof call>);
const t0 = process.cpuUsage();
for (let i = 100_000; i < N; i++)
	join.hook(calls[i] as ReturnType<typeof call>);
const t = process.cpuUsage(t0);
console.log(
	JSON.stringify({
		calls: N - 100_000,
		ns_per_call: Math.round(((t.user + t.system) * 1000) / (N - 100_000)),
		ids_kept: join.size,
	}),
);
