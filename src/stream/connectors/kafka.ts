// Kafka connector: a consumer-group member reading from committed offsets (commit after produce), an acks=all producer.
import {
	Admin,
	Consumer,
	type Message,
	Producer,
	stringDeserializer,
	stringSerializers,
} from "@platformatic/kafka";
import { MlshipError } from "../../protocol/errors.ts";
import type {
	ConnectorOptions,
	InMessage,
	OutMessage,
	Sink,
	Source,
} from "../types.ts";
import { IteratorPuller } from "./pull.ts";

/** `kafka://host:port[,host:port...]/topic[?partitions=N&session_timeout_ms=10000]` */
export interface KafkaAddress {
	brokers: string[];
	topic: string;
	/** Partitions of the topic when mlship creates it (default: the broker's num.partitions). */
	partitions: number;
	/** A consumer that stops heartbeating this long leaves the group; its partitions go to the others. */
	sessionTimeoutMs: number;
}

export function parseKafkaUri(uri: string): KafkaAddress {
	const m = /^kafka:\/\/([^/?#]+)\/([^/?#]+)(\?.*)?$/i.exec(uri);
	if (!m)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${uri}': expected kafka://host:port/topic (several brokers: host1:9092,host2:9092)`,
		);
	const q = new URLSearchParams(m[3] ?? "");
	const num = (name: string, dflt: number) => {
		const v = Number(q.get(name) ?? dflt);
		if (!Number.isInteger(v))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`'${uri}': ${name} must be a whole number`,
			);
		return v;
	};
	return {
		brokers: (m[1] as string).split(","),
		topic: decodeURIComponent(m[2] as string),
		partitions: num("partitions", -1),
		sessionTimeoutMs: num("session_timeout_ms", 10_000),
	};
}

/** Creates the topic if it does not exist (replication 1 … the broker's default via -1). */
async function ensureTopic(a: KafkaAddress): Promise<void> {
	const admin = new Admin({
		clientId: "mlship-admin",
		bootstrapBrokers: a.brokers,
	});
	try {
		await admin.createTopics({
			topics: [a.topic],
			partitions: a.partitions,
			replicas: -1,
		});
	} catch (err) {
		if (!/already exists|TOPIC_ALREADY_EXISTS/i.test(describe(err))) throw err;
	} finally {
		await admin.close();
	}
}

/** Kafka client errors nest causes (AggregateError, protocol errors): flatten them for matching and logs. */
function describe(err: unknown): string {
	const parts: string[] = [];
	const walk = (e: unknown, depth: number) => {
		if (!e || depth > 4) return;
		const x = e as {
			message?: string;
			code?: string;
			apiCode?: number;
			errors?: unknown[];
			cause?: unknown;
		};
		parts.push([x.code, x.message].filter(Boolean).join(": "));
		for (const inner of x.errors ?? []) walk(inner, depth + 1);
		walk(x.cause, depth + 1);
	};
	walk(err, 0);
	return parts.join("; ");
}

/** Commit failures that mean "the group moved on": the message will be delivered again to the partition's new owner. */
const STALE_MEMBER =
	/ILLEGAL_GENERATION|UNKNOWN_MEMBER_ID|REBALANCE_IN_PROGRESS|FENCED|not assigned|no longer/i;

type KafkaMessage = Message<string, Buffer, string, string>;

/**
 * Reads a topic as a member of the consumer group: from the group's committed offsets (a new group starts at the
 * earliest message). ack() commits, per partition, the offset after the last acked message; acks come in read
 * order, so everything before it is done. A member that dies uncommitted leaves its messages to be read again.
 */
export function kafkaSource(uri: string, opts: ConnectorOptions): Source {
	const a = parseKafkaUri(uri);
	let start:
		| Promise<{
				consumer: Consumer<string, Buffer, string, string>;
				puller: IteratorPuller<KafkaMessage>;
				close: () => Promise<void>;
		  }>
		| undefined;
	const held = new Map<string, KafkaMessage>();

	async function begin() {
		await ensureTopic(a);
		const consumer = new Consumer<string, Buffer, string, string>({
			groupId: opts.group,
			clientId: opts.consumer,
			bootstrapBrokers: a.brokers,
			sessionTimeout: a.sessionTimeoutMs,
			heartbeatInterval: Math.max(100, Math.floor(a.sessionTimeoutMs / 4)),
			rebalanceTimeout: Math.max(a.sessionTimeoutMs, 5_000),
			retries: 1_000_000,
			retryDelay: 250,
			deserializers: {
				key: stringDeserializer,
				headerKey: stringDeserializer,
				headerValue: stringDeserializer,
			},
		});
		try {
			const stream = await consumer.consume({
				topics: [a.topic],
				mode: "committed",
				fallbackMode: "earliest",
				autocommit: false,
				maxWaitTime: 200,
			});
			return {
				consumer,
				puller: new IteratorPuller<KafkaMessage>(
					stream[Symbol.asyncIterator](),
				),
				close: async () => {
					await stream.close();
					await consumer.close(true);
				},
			};
		} catch (err) {
			await consumer.close(true).catch(() => {});
			throw err;
		}
	}

	return {
		async read(max, waitMs) {
			start ??= begin().catch((err) => {
				start = undefined;
				throw new Error(describe(err), { cause: err });
			});
			const { puller } = await start;
			const out: InMessage[] = [];
			for (const m of await puller.take(max, waitMs)) {
				const id = `${m.partition}:${m.offset}`;
				held.set(id, m);
				const headers: Record<string, string> = {};
				for (const [k, v] of m.headers)
					if (k !== undefined && v !== undefined) headers[k] = v;
				out.push({
					id,
					key: m.key ?? undefined,
					value: m.value ?? Buffer.alloc(0),
					headers,
				});
			}
			return out;
		},
		async ack(messages) {
			const last = new Map<number, KafkaMessage>();
			for (const msg of messages) {
				const m = held.get(msg.id);
				held.delete(msg.id);
				if (!m) continue;
				const prev = last.get(m.partition);
				if (!prev || prev.offset < m.offset) last.set(m.partition, m);
			}
			await Promise.all(
				[...last.values()].map(async (m) => {
					try {
						await m.commit();
					} catch (err) {
						if (!STALE_MEMBER.test(describe(err)))
							throw new Error(describe(err), { cause: err });
					}
				}),
			);
		},
		async close() {
			const s = await start?.catch(() => undefined);
			await s?.close();
		},
	};
}

/** Produces with acks=all (idempotent): write() resolves once the broker has every message. */
export function kafkaSink(uri: string): Sink {
	const a = parseKafkaUri(uri);
	let ready: Promise<void> | undefined;
	const producer = new Producer<string, string, string, string>({
		clientId: "mlship-producer",
		bootstrapBrokers: a.brokers,
		serializers: stringSerializers,
		idempotent: true,
		acks: -1,
		retries: 5,
		retryDelay: 250,
	});
	return {
		async write(messages: readonly OutMessage[]) {
			if (messages.length === 0) return;
			ready ??= ensureTopic(a).catch((err) => {
				ready = undefined;
				throw err;
			});
			await ready;
			try {
				await producer.send({
					messages: messages.map((m) => ({
						topic: a.topic,
						...(m.key !== undefined ? { key: m.key } : {}),
						value: m.value,
						headers: m.headers,
					})),
				});
			} catch (err) {
				throw new Error(describe(err), { cause: err });
			}
		},
		async close() {
			await producer.close();
		},
	};
}
