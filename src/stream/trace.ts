// The consumer span of a stream message (tracing on), continuing the W3C `traceparent` of the message's headers.
import {
	TRACEPARENT,
	TRACESTATE,
	type TraceSpan,
	tracer,
} from "../protocol/trace.ts";
import type { InMessage } from "./types.ts";

function header(m: InMessage, name: string): string | undefined {
	for (const [k, v] of m.headers)
		if (k.toLowerCase() === name && v !== null) return v.toString("latin1");
	return undefined;
}

/** A span for scoring message `m` with `model`; undefined when tracing is off. The caller ends it. */
export function messageSpan(
	m: InMessage,
	model: string,
	startMs: number,
): TraceSpan | undefined {
	const span = tracer()?.start("stream score", {
		kind: "consumer",
		traceparent: header(m, TRACEPARENT),
		tracestate: header(m, TRACESTATE),
		attributes: { "mlship.model": model },
	});
	span?.record("decode", startMs, performance.now());
	return span;
}
