// OpenTelemetry traces, against an OTLP/HTTP receiver this test starts (it decodes the exporter's JSON): `serve
// --otlp-endpoint` exports a server span per REST and gRPC request, continuing the caller's W3C traceparent, with
// decode, queue, compute and encode children, and a span for each model load.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { bundleDir } from "../helpers/fixtures.ts";
import {
	spanAttr as attr,
	childrenOf as kidsOf,
	type OtlpReceiver,
	type OtlpSpan,
	startOtlpReceiver,
} from "../helpers/otlp.ts";
import { type Served, serve } from "../helpers/serve-process.ts";
import { post } from "../helpers/server.ts";
import { InferenceClient, toContents } from "../server/grpc/client.ts";

let receiver: OtlpReceiver;
let spans: OtlpSpan[];
let served: Served;

before(async () => {
	receiver = await startOtlpReceiver();
	spans = receiver.spans;
	served = await serve([
		"-m",
		`${bundleDir("iris-logreg")}:iris`,
		"--otlp-endpoint",
		receiver.endpoint,
	]);
});

after(async () => {
	if (served && served.proc.exitCode === null) served.proc.kill("SIGKILL");
	await receiver?.close();
});

async function waitFor(cond: () => boolean, what: string) {
	for (let i = 0; i < 3000 && !cond(); i++)
		await new Promise((r) => setTimeout(r, 20));
	assert.ok(
		cond(),
		`timed out waiting for ${what}; spans: ${spans.map((s) => s.name)}`,
	);
}

const childrenOf = (parent: OtlpSpan) => kidsOf(spans, parent);

function assertNested(parent: OtlpSpan, child: OtlpSpan) {
	assert.ok(
		BigInt(child.startTimeUnixNano) >= BigInt(parent.startTimeUnixNano),
		`${child.name} starts inside ${parent.name}`,
	);
	assert.ok(
		BigInt(child.endTimeUnixNano) <= BigInt(parent.endTimeUnixNano),
		`${child.name} ends inside ${parent.name}`,
	);
}

describe("serve --otlp-endpoint", () => {
	it("exports a span for the model's load, as service mlship", async () => {
		await waitFor(
			() => spans.some((s) => s.name === "model load"),
			"the load span",
		);
		const load = spans.find((s) => s.name === "model load") as OtlpSpan;
		assert.equal(attr(load, "mlship.model"), "iris");
		assert.equal(attr(load, "mlship.version"), "1");
		assert.equal(load.parentSpanId ?? "", "");
		assert.ok(receiver.services.has("mlship"));
	});

	it("REST infer continues the caller's traceparent, with decode, queue, compute and encode children", async () => {
		const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
		const parent = "00f067aa0ba902b7";
		const res = await post(
			`${served.http}/v2/models/iris/infer`,
			{
				id: "traced-1",
				inputs: [
					{
						name: "float_input",
						datatype: "FP32",
						shape: [1, 4],
						data: [5.1, 3.5, 1.4, 0.2],
					},
				],
			},
			{ traceparent: `00-${traceId}-${parent}-01` },
		);
		assert.equal(res.status, 200);
		await waitFor(
			() => spans.some((s) => s.traceId === traceId && s.name === "encode"),
			"the REST spans",
		);
		const server = spans.find(
			(s) => s.traceId === traceId && s.parentSpanId === parent,
		);
		assert.ok(server, "a span whose parent is the caller's");
		assert.equal(server.name, "POST /v2/models/{model}/infer");
		assert.equal(server.kind, 2, "SERVER");
		assert.equal(attr(server, "mlship.request_id"), "traced-1");
		assert.equal(attr(server, "mlship.model"), "iris");
		assert.equal(attr(server, "mlship.model_version"), "1");
		const kids = childrenOf(server);
		assert.deepEqual([...kids.keys()].sort(), [
			"compute",
			"decode",
			"encode",
			"queue",
		]);
		for (const k of kids.values()) assertNested(server, k);
		const queue = kids.get("queue") as OtlpSpan;
		const compute = kids.get("compute") as OtlpSpan;
		assert.ok(
			BigInt(queue.endTimeUnixNano) <=
				BigInt(compute.startTimeUnixNano) + 1000n,
		);
		assert.equal(attr(compute, "mlship.batch_rows"), 1);
	});

	it("REST predict without a traceparent starts a trace of its own", async () => {
		const before = new Set(spans.map((s) => s.traceId));
		const res = await post(
			`${served.http}/v2/models/iris/predict`,
			{
				instances: [
					{
						sepal_length: 5.1,
						sepal_width: 3.5,
						petal_length: 1.4,
						petal_width: 0.2,
					},
				],
			},
			{ "x-request-id": "untraced-parent", traceparent: "not-a-traceparent" },
		);
		assert.equal(res.status, 200);
		await waitFor(
			() => spans.some((s) => s.name === "POST /v2/models/{model}/predict"),
			"the predict span",
		);
		const server = spans.find(
			(s) => s.name === "POST /v2/models/{model}/predict",
		) as OtlpSpan;
		assert.ok(!before.has(server.traceId));
		assert.equal(server.parentSpanId ?? "", "");
		assert.equal(attr(server, "mlship.request_id"), "untraced-parent");
		await waitFor(() => childrenOf(server).size === 3, "its children");
		assert.deepEqual([...childrenOf(server).keys()].sort(), [
			"compute",
			"decode",
			"queue",
		]);
	});

	it("gRPC ModelInfer continues traceparent metadata", async () => {
		const traceId = "0af7651916cd43dd8448eb211c80319c";
		const parent = "b7ad6b7169203331";
		const client = new InferenceClient(served.grpcPort);
		try {
			await client.infer(
				{
					model_name: "iris",
					id: "g-traced",
					inputs: [
						{
							name: "float_input",
							datatype: "FP32",
							shape: [1, 4],
							contents: toContents("FP32", [5.1, 3.5, 1.4, 0.2]),
						},
					],
				},
				{},
				{ traceparent: `00-${traceId}-${parent}-01` },
			);
		} finally {
			client.close();
		}
		await waitFor(
			() => spans.some((s) => s.traceId === traceId && s.name === "encode"),
			"the gRPC spans",
		);
		const server = spans.find(
			(s) => s.traceId === traceId && s.parentSpanId === parent,
		);
		assert.ok(server);
		assert.equal(server.name, "inference.GRPCInferenceService/ModelInfer");
		assert.equal(attr(server, "mlship.request_id"), "g-traced");
		assert.deepEqual([...childrenOf(server).keys()].sort(), [
			"compute",
			"decode",
			"encode",
			"queue",
		]);
	});

	it("a failed request's span says so", async () => {
		const traceId = "11111111111111111111111111111111";
		const res = await post(
			`${served.http}/v2/models/iris/infer`,
			{
				inputs: [
					{ name: "nope", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] },
				],
			},
			{ traceparent: `00-${traceId}-2222222222222222-01` },
		);
		assert.equal(res.status, 400);
		await waitFor(
			() =>
				spans.some(
					(s) => s.traceId === traceId && s.parentSpanId === "2222222222222222",
				),
			"the failed span",
		);
		const server = spans.find(
			(s) => s.traceId === traceId && s.parentSpanId === "2222222222222222",
		) as OtlpSpan;
		assert.equal(server.status?.code, 2, "ERROR");
		assert.equal(attr(server, "mlship.error_code"), "MLSHIP_INVALID_INPUT");
	});
});
