// Tracing as mlship's code sees it: a process-wide tracer that is undefined unless --otlp-endpoint turned it on, so
// each instrumented place pays one check when tracing is off. The OpenTelemetry SDK behind it (monitor/otel.ts) is
// imported only when it is turned on, so importing mlship loads none of it.

/** Span attribute values. */
export type TraceAttributes = Record<string, string | number | boolean>;

/** The W3C trace context headers (REST headers, gRPC metadata, stream message headers). */
export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

/** A span being recorded. Times are `performance.now()` milliseconds (the default: now). */
export interface TraceSpan {
	/** Starts a child span. */
	child(
		name: string,
		attributes?: TraceAttributes,
		startMs?: number,
	): TraceSpan;
	/** Records a finished child span from `startMs` to `endMs`. */
	record(
		name: string,
		startMs: number,
		endMs: number,
		attributes?: TraceAttributes,
	): void;
	set(key: string, value: string | number | boolean): void;
	/** Marks the span failed with the error's code and message. */
	fail(err: unknown): void;
	end(endMs?: number): void;
}

/** Where a root span comes from: a server request, a consumed message, or work of mlship's own (load, swap). */
export type SpanKindName = "server" | "consumer" | "internal";

/** Starts root spans (continuing a caller's trace when its `traceparent` is given) and exports them. */
export interface Tracer {
	start(
		name: string,
		opts?: {
			kind?: SpanKindName;
			attributes?: TraceAttributes;
			/** The caller's W3C `traceparent` (invalid ones are ignored: a new trace starts). */
			traceparent?: string | undefined;
			tracestate?: string | undefined;
		},
	): TraceSpan;
	/** Exports what is buffered and stops. */
	shutdown(): Promise<void>;
}

let current: Tracer | undefined;

/** The tracer, or undefined when tracing is off (the one check every instrumented place makes). */
export function tracer(): Tracer | undefined {
	return current;
}

/** Turns tracing on (a tracer) or off (undefined). */
export function setTracer(t: Tracer | undefined): void {
	current = t;
}

/** The first value of a header that may repeat (node:http, gRPC metadata). */
export function headerValue(
	v: string | string[] | Buffer | undefined | null,
): string | undefined {
	if (v === undefined || v === null) return undefined;
	if (Array.isArray(v)) return v[0];
	return typeof v === "string" ? v : v.toString("latin1");
}
