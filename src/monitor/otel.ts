// The OpenTelemetry tracer behind protocol/trace.ts: spans batched and exported over OTLP/HTTP (JSON), the caller's
// W3C trace context continued. Imported only when --otlp-endpoint is set.
import {
	type Context,
	context,
	type Span,
	SpanKind,
	SpanStatusCode,
	trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
	BatchSpanProcessor,
	type SpanExporter,
	TracerProvider,
} from "@opentelemetry/sdk-trace";
import type {
	SpanKindName,
	TraceAttributes,
	Tracer,
	TraceSpan,
} from "../protocol/trace.ts";

const KINDS: Record<SpanKindName, SpanKind> = {
	server: SpanKind.SERVER,
	consumer: SpanKind.CONSUMER,
	internal: SpanKind.INTERNAL,
};

/** performance.now() milliseconds as epoch milliseconds (what OpenTelemetry takes as a time). */
const epoch = (ms: number) => performance.timeOrigin + ms;

class OtelSpan implements TraceSpan {
	readonly #tracer: ReturnType<TracerProvider["getTracer"]>;
	readonly #span: Span;
	readonly #ctx: Context;

	constructor(
		tracer: ReturnType<TracerProvider["getTracer"]>,
		span: Span,
		parent: Context,
	) {
		this.#tracer = tracer;
		this.#span = span;
		this.#ctx = trace.setSpan(parent, span);
	}

	child(name: string, attributes?: TraceAttributes, startMs?: number) {
		const span = this.#tracer.startSpan(
			name,
			{
				...(attributes ? { attributes } : {}),
				startTime: epoch(startMs ?? performance.now()),
			},
			this.#ctx,
		);
		return new OtelSpan(this.#tracer, span, this.#ctx);
	}

	record(
		name: string,
		startMs: number,
		endMs: number,
		attributes?: TraceAttributes,
	) {
		this.#tracer
			.startSpan(
				name,
				{ ...(attributes ? { attributes } : {}), startTime: epoch(startMs) },
				this.#ctx,
			)
			.end(epoch(endMs));
	}

	set(key: string, value: string | number | boolean) {
		this.#span.setAttribute(key, value);
	}

	fail(err: unknown) {
		const e = err as { code?: unknown; message?: unknown };
		if (typeof e?.code === "string")
			this.#span.setAttribute("mlship.error_code", e.code);
		this.#span.setStatus({
			code: SpanStatusCode.ERROR,
			message: typeof e?.message === "string" ? e.message : String(err),
		});
	}

	end(endMs?: number) {
		this.#span.end(epoch(endMs ?? performance.now()));
	}
}

/**
 * A tracer exporting to `endpoint` (an OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces) as service
 * `serviceName`. `exporter` replaces the OTLP exporter (tests).
 * @example setTracer(otlpTracer("http://127.0.0.1:4318/v1/traces"));
 */
export function otlpTracer(
	endpoint: string,
	serviceName = "mlship",
	exporter?: SpanExporter,
): Tracer {
	const provider = new TracerProvider({
		resource: resourceFromAttributes({ "service.name": serviceName }),
		spanProcessors: [
			new BatchSpanProcessor({
				exporter: exporter ?? new OTLPTraceExporter({ url: endpoint }),
				scheduledDelayMillis: 500,
			}),
		],
	});
	const tracer = provider.getTracer("mlship");
	const propagator = new W3CTraceContextPropagator();
	const getter = {
		keys: (c: Record<string, string>) => Object.keys(c),
		get: (c: Record<string, string>, k: string) => c[k],
	};
	return {
		start(name, opts = {}) {
			let parent = context.active();
			if (opts.traceparent !== undefined) {
				const carrier: Record<string, string> = {
					traceparent: opts.traceparent,
				};
				if (opts.tracestate !== undefined) carrier.tracestate = opts.tracestate;
				parent = propagator.extract(parent, carrier, getter);
			}
			const span = tracer.startSpan(
				name,
				{
					kind: KINDS[opts.kind ?? "internal"],
					...(opts.attributes ? { attributes: opts.attributes } : {}),
					startTime: epoch(performance.now()),
				},
				parent,
			);
			return new OtelSpan(tracer, span, parent);
		},
		shutdown: () => provider.shutdown(),
	};
}
