// Test helper: an OTLP/HTTP trace receiver on loopback that decodes what OpenTelemetry's JSON exporter sends.
import assert from "node:assert/strict";
import { createServer } from "node:http";

export interface OtlpSpan {
	traceId: string;
	spanId: string;
	parentSpanId?: string;
	name: string;
	kind: number;
	startTimeUnixNano: string;
	endTimeUnixNano: string;
	attributes?: { key: string; value: Record<string, unknown> }[];
	status?: { code?: number; message?: string };
}

export interface OtlpReceiver {
	/** `http://127.0.0.1:PORT/v1/traces` */
	endpoint: string;
	/** Every span received so far. */
	spans: OtlpSpan[];
	/** The `service.name` of every resource received. */
	services: Set<string>;
	close(): Promise<void>;
}

/** Starts the receiver: it answers 200 to each export and keeps its spans. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
	const spans: OtlpSpan[] = [];
	const services = new Set<string>();
	const server = createServer((req, res) => {
		let body = "";
		req.on("data", (d) => {
			body += d;
		});
		req.on("end", () => {
			assert.equal(req.url, "/v1/traces");
			assert.match(String(req.headers["content-type"]), /application\/json/);
			const msg = JSON.parse(body) as {
				resourceSpans: {
					resource: {
						attributes: { key: string; value: { stringValue?: string } }[];
					};
					scopeSpans: { spans: OtlpSpan[] }[];
				}[];
			};
			for (const rs of msg.resourceSpans) {
				for (const a of rs.resource.attributes)
					if (a.key === "service.name")
						services.add(String(a.value.stringValue));
				for (const ss of rs.scopeSpans) spans.push(...ss.spans);
			}
			res.writeHead(200, { "content-type": "application/json" });
			res.end("{}");
		});
	});
	await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
	const addr = server.address();
	assert.ok(addr && typeof addr === "object");
	return {
		endpoint: `http://127.0.0.1:${addr.port}/v1/traces`,
		spans,
		services,
		close: () =>
			new Promise<void>((r) => {
				server.close(() => r());
				server.closeAllConnections();
			}),
	};
}

/** A span attribute's value (whatever its type). */
export function spanAttr(s: OtlpSpan, key: string): unknown {
	const v = s.attributes?.find((a) => a.key === key)?.value;
	return v === undefined ? undefined : Object.values(v)[0];
}

/** The spans whose parent is `parent`, by name. */
export function childrenOf(
	spans: readonly OtlpSpan[],
	parent: OtlpSpan,
): Map<string, OtlpSpan> {
	return new Map(
		spans
			.filter(
				(s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId,
			)
			.map((s) => [s.name, s]),
	);
}
