// The stream connector interface: a Source the processor pulls messages from and acks, a Sink it produces to.

/** A message read from a source. `id` is the source's position (opaque to the processor; ack() takes it back). */
export interface InMessage {
	readonly id: string;
	/** The message key (Kafka key, Redis `key` field, NATS `key` header); carried to the result. */
	readonly key: string | undefined;
	/** The payload, as produced. */
	readonly value: Buffer;
	/** Headers / metadata; they pass through to the result. */
	readonly headers: Readonly<Record<string, string>>;
}

/** A message to produce. */
export interface OutMessage {
	key: string | undefined;
	value: string;
	headers: Record<string, string>;
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

/** Where results (or dead letters) go. */
export interface Sink {
	/** Resolves once every message is durably stored by the broker (acknowledged by it); rejects otherwise. */
	write(messages: readonly OutMessage[]): Promise<void>;
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
 * Exactly-once delivery (Kafka→Kafka): a batch's results, its dead letters and its input positions commit in one
 * broker transaction, so a crash either keeps all three or none.
 */
export interface Transactor {
	commit(
		results: readonly OutMessage[],
		dead: readonly OutMessage[],
		consumed: readonly InMessage[],
	): Promise<void>;
	close(): Promise<void>;
}
