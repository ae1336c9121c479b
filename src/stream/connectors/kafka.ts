// placeholder
import type { ConnectorOptions, Sink, Source } from "../types.ts";
export function kafkaSource(_uri: string, _o: ConnectorOptions): Source {
	throw new Error("todo");
}
export function kafkaSink(_uri: string): Sink {
	throw new Error("todo");
}
