// The stream connector interface: a Source the processor pulls messages from and acks, a Sink it produces to.

/** One header: a name and its bytes (`null`: a header with no value). Headers are an ordered list: names may repeat. */
export type Header = readonly [name: string, value: Buffer | null];

/** Where a message was read: what a dead letter names (Kafka Connect's `__connect.errors.topic/partition/offset`). */
export interface Origin {
	/** Topic, stream or file name. */
	readonly topic: string;
	/** Kafka partition; -1 where the broker has none. */
	readonly partition: number;
	/** Kafka offset, Redis entry id, JetStream sequence, line number. */
	readonly offset: string;
}

/**
 * A message read from a source, byte for byte: nothing is decoded here (only the payload is, later, and only
 * when the message format needs it). `id` is the source's position (opaque to the processor; ack() takes it back).
 */
export interface InMessage {
	readonly id: string;
	/** The message key (Kafka key, Redis `key` field, NATS `key` header); carried to the result. `null`: no key. */
	readonly key: Buffer | null;
	/** The payload, as produced; `null` is a tombstone (a Kafka record with a null value), not an empty payload. */
	readonly value: Buffer | null;
	/** Headers / metadata in their order, repeats and null values included; they pass through to the result. */
	readonly headers: readonly Header[];
	/** Event time (ms since the epoch): the Kafka record timestamp, or the time the broker stored it. */
	readonly timestamp?: number | undefined;
	readonly origin?: Origin | undefined;
}

/** A message to produce. */
export interface OutMessage {
	key: Buffer | null;
	/** `null`: a tombstone. */
	value: Buffer | null;
	headers: Header[];
	/** Event time (ms since the epoch); undefined: the time of producing. */
	timestamp?: number | undefined;
	/** The input's partition: where `--partitioner same-as-input` puts it. */
	partition?: number | undefined;
}

/**
 * Where requests come from. Pull-based so the processor controls back-pressure: it reads only while it has
 * room for more work. Messages are delivered at least once: a message not acked (the processor died, or the
 * connection broke) is delivered again, to this or another consumer of the group.
 */
export interface Source {
	/**
	 * Up to `max` messages, waiting up to `waitMs` for the first; `[]` when none arrived in time; `null` when a
	 * finite source (a file, stdin) has no more.
	 */
	read(max: number, waitMs: number): Promise<InMessage[] | null>;
	/** Marks messages done (XACK, JetStream ack, Kafka offset commit). Called in read order. */
	ack(messages: readonly InMessage[]): Promise<void>;
	close(): Promise<void>;
}

/** A message the broker refuses for good (larger than the topic accepts): its place in the write, and why. */
export interface Refused {
	readonly index: number;
	readonly reason: string;
}

/** Where results (or dead letters) go. */
export interface Sink {
	/**
	 * Resolves once every message is durably stored by the broker (acknowledged by it); rejects otherwise (the
	 * processor retries). A sink that knows the broker will never take a message (Kafka: larger than the topic's
	 * max.message.bytes) stores the others and resolves with those it refused, in order.
	 */
	// biome-ignore lint/suspicious/noConfusingVoidType: a sink that refuses nothing resolves with nothing
	write(messages: readonly OutMessage[]): Promise<void | readonly Refused[]>;
	close(): Promise<void>;
}

/** What every connector is opened with. */
export interface ConnectorOptions {
	/** Consumer group (Redis group, JetStream durable consumer, Kafka group id). */
	group: string;
	/** This consumer's name within the group (Redis consumer); stable across restarts lets it reclaim its own pending work first. */
	consumer: string;
}

/**
 * How result keys are spread over Kafka partitions. `java` (default): as Kafka's Java client
 * (`toPositive(murmur2(key)) % partitions`), so a key lands where the Java producer puts it and co-partitioned joins
 * (Kafka Streams, ksqlDB, Flink) line up; `murmur2-positive`: `(murmur2 >>> 0) % partitions` (mlship's placement
 * before; it agrees with Java only for a power of two); `random`; `same-as-input`: the input record's partition
 * number. Records without a key go round robin (except with `same-as-input`).
 */
export type PartitionerName =
	| "java"
	| "murmur2-positive"
	| "random"
	| "same-as-input";
export const PARTITIONERS: readonly PartitionerName[] = [
	"java",
	"murmur2-positive",
	"random",
	"same-as-input",
];

/** What a sink is opened with. */
export interface SinkOptions {
	/** Kafka: how result keys map to partitions (default `java`). */
	partitioner?: PartitionerName;
}

/**
 * Exactly-once delivery (Kafka→Kafka): a batch's results, its dead letters and its input positions commit in one
 * broker transaction, so a crash either keeps all three or none.
 */
export interface Transactor {
	/**
	 * Commits the batch. Results the topic would refuse for their size are not sent: it resolves with them (in order)
	 * and commits nothing, and the processor commits the batch again with those inputs as dead letters.
	 */
	commit(
		results: readonly OutMessage[],
		dead: readonly OutMessage[],
		consumed: readonly InMessage[],
		// biome-ignore lint/suspicious/noConfusingVoidType: a transaction that refuses nothing resolves with nothing
	): Promise<void | readonly Refused[]>;
	close(): Promise<void>;
}
