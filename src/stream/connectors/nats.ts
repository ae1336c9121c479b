// placeholder
import type { ConnectorOptions, Sink, Source } from "../types.ts";
export function natsSource(_uri: string, _o: ConnectorOptions): Source {
	throw new Error("todo");
}
export function natsSink(_uri: string): Sink {
	throw new Error("todo");
}
