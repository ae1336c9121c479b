// The gRPC load generator for bench/serve (wrk's role for REST): `clients` closed-loop callers of OIP ModelInfer
// (one row, FP32 as raw_input_contents, like Triton's clients) on one grpc-js channel for a warm-up and then a
// measured window; prints one `GRPC_JSON {...}` line with the same fields run.ts reads from wrk. With --expect-label
// the first answer's label (raw_output_contents[0] or int64_contents) must equal it, or it exits 1.
//
//   node bench/serve/grpc-load.ts --port P --model gbdt --row 1.5,2,... --clients 8 --seconds 8 [--warmup 2] [--expect-label 1]
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { inferenceService } from "../../src/server/grpc/proto.ts";

const { values: a } = parseArgs({
	options: {
		host: { type: "string", default: "127.0.0.1" },
		port: { type: "string" },
		model: { type: "string" },
		row: { type: "string" },
		clients: { type: "string", default: "1" },
		seconds: { type: "string", default: "8" },
		warmup: { type: "string", default: "0" },
		"expect-label": { type: "string" },
	},
});
const row = (a.row ?? "").split(",").map(Number);
const clients = Number(a.clients);
const seconds = Number(a.seconds);
const warmup = Number(a.warmup);
if (
	!a.port ||
	!a.model ||
	row.some((x) => !Number.isFinite(x)) ||
	!(clients >= 1) ||
	!(seconds > 0)
)
	throw new Error(
		"usage: grpc-load.ts --port P --model M --row x,y,... --clients N --seconds S",
	);

const Client = grpc.makeGenericClientConstructor(
	inferenceService(),
	"GRPCInferenceService",
);
const client = new Client(
	`${a.host}:${a.port}`,
	grpc.credentials.createInsecure(),
) as unknown as Record<
	string,
	(
		req: unknown,
		cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
	) => void
>;
const request = {
	model_name: a.model,
	inputs: [{ name: "float_input", datatype: "FP32", shape: [1, row.length] }],
	raw_input_contents: [Buffer.from(new Float32Array(row).buffer)],
};
const infer = () =>
	new Promise<Record<string, unknown>>((resolve, reject) =>
		(client.ModelInfer as (typeof client)[string]).call(
			client,
			request,
			(err, res) => (err ? reject(err) : resolve(res)),
		),
	);

function labelOf(res: Record<string, unknown>): number {
	const raw = res.raw_output_contents as Buffer[] | undefined;
	if (raw && raw.length > 0 && raw[0]) return Number(raw[0].readBigInt64LE(0));
	const outs = res.outputs as { contents?: { int64_contents?: string[] } }[];
	return Number(outs[0]?.contents?.int64_contents?.[0]);
}

const first = await infer();
if (
	a["expect-label"] !== undefined &&
	labelOf(first) !== Number(a["expect-label"])
) {
	console.error(
		`grpc-load: label ${labelOf(first)}, expected ${a["expect-label"]}`,
	);
	process.exit(1);
}

async function window(
	s: number,
): Promise<{ lat: number[]; errors: number; us: number }> {
	const lat: number[] = [];
	let errors = 0;
	const t0 = performance.now();
	const until = t0 + s * 1000;
	await Promise.all(
		Array.from({ length: clients }, async () => {
			while (performance.now() < until) {
				const t = performance.now();
				try {
					await infer();
					lat.push((performance.now() - t) * 1000);
				} catch {
					errors++;
				}
			}
		}),
	);
	return { lat, errors, us: (performance.now() - t0) * 1000 };
}

if (warmup > 0) await window(warmup);
const w = await window(seconds);
w.lat.sort((x, y) => x - y);
const pct = (p: number) =>
	w.lat[Math.min(w.lat.length - 1, Math.floor((p / 100) * w.lat.length))] ?? 0;
const mean = w.lat.reduce((n, x) => n + x, 0) / Math.max(1, w.lat.length);
process.stdout.write(
	`GRPC_JSON ${JSON.stringify({ requests: w.lat.length, duration_us: Math.round(w.us), connect: 0, read: 0, write: 0, status: w.errors, timeout: 0, p50_us: Math.round(pct(50)), p99_us: Math.round(pct(99)), mean_us: Math.round(mean) })}\n`,
);
(client as unknown as grpc.Client).close();
process.exit(0);
