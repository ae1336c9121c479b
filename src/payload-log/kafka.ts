// The payload log's Kafka destination: one JSON message per record, keyed by the request id, through the stream
// connector's idempotent acks=all producer (the topic is created when missing).
import {
	ensureTopic,
	kafkaSink,
	parseKafkaUri,
} from "../stream/connectors/kafka.ts";
import type { PayloadSink } from "./log.ts";
import { type PayloadRecord, recordJson } from "./record.ts";

/**
 * Produces each record to `kafka://host:port/topic` as JSON (docs/payload-log.md), key = request id.
 * @example const sink = kafkaPayloadSink("kafka://127.0.0.1:9092/mlship.payloads");
 */
export function kafkaPayloadSink(uri: string): PayloadSink {
	const address = parseKafkaUri(uri);
	const sink = kafkaSink(uri);
	return {
		kind: "kafka",
		where: `${address.brokers.join(",")}/${address.topic}`,
		async open() {
			await ensureTopic(address);
		},
		async write(records: readonly PayloadRecord[]) {
			const refused = await sink.write(
				records.map((r) => ({
					key: r.id === "" ? null : Buffer.from(r.id),
					value: Buffer.from(recordJson(r)),
					headers: [],
					timestamp: r.time,
				})),
			);
			// Records larger than the topic accepts would fail every retry: the log drops and counts them (too_large).
			return refused?.length ?? 0;
		},
		close: () => sink.close(),
	};
}
