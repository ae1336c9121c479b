// Turning OpenTelemetry tracing on for a process (serve, stream): the SDK is imported only here, only when asked for.
import { setTracer, tracer } from "../protocol/trace.ts";

/**
 * Turns tracing on, exporting over OTLP/HTTP to `endpoint` (the OpenTelemetry SDK is loaded only now); returns
 * what exports the rest and turns it off.
 */
export async function startTracing(
	endpoint: string,
): Promise<() => Promise<void>> {
	const { otlpTracer } = await import("./otel.ts");
	const t = otlpTracer(endpoint);
	setTracer(t);
	return async () => {
		if (tracer() === t) setTracer(undefined);
		await t.shutdown().catch(() => undefined);
	};
}
