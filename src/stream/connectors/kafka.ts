// Kafka connector: a consumer-group member reading from committed offsets (commit after produce), an acks=all producer.

import type { ConnectionOptions } from "node:tls";
import {
	Admin,
	Consumer,
	compatibilityPartitioner,
	defaultPartitioner,
	type Partitioner as KafkaPartitioner,
	type Message,
	type MessageToProduce,
	Producer,
} from "@platformatic/kafka";
import { MlshipError } from "../../protocol/errors.ts";
import { redactUrl } from "../../protocol/redact.ts";
import { tlsFromParams, uriPassword } from "../../protocol/secrets.ts";
import type {
	ConnectorOptions,
	Header,
	InMessage,
	OutMessage,
	PartitionerName,
	Refused,
	Sink,
	SinkOptions,
	Source,
	Transactor,
} from "../types.ts";
import { IteratorPuller } from "./pull.ts";

/**
 * `kafka://[user[:password]@]host:port[,host:port...]/topic[?partitions=N&session_timeout_ms=10000&sasl=scram-sha-256&tls=true&ca=PATH]`
 */
export interface KafkaAddress {
	brokers: string[];
	topic: string;
	/** Partitions of the topic when mlship creates it (default: the broker's num.partitions). */
	partitions: number;
	/** A consumer that stops heartbeating this long leaves the group; its partitions go to the others. */
	sessionTimeoutMs: number;
	/** SASL credentials from the URI's user info (or `password_file=`, or MLSHIP_KAFKA_PASSWORD). */
	sasl?: {
		mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512";
		username: string;
		password: string;
	};
	/** TLS to the brokers (`tls=true`, `ca=`, `cert=`, `key=`). */
	tls?: ConnectionOptions;
}

const SASL_MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] as const;

/**
 * Parses a Kafka URI. User info is SASL credentials, never part of a broker address; the password may instead come
 * from `password_file=PATH` or the environment variable MLSHIP_KAFKA_PASSWORD.
 * @example parseKafkaUri("kafka://app:pw@b1:9093,b2:9093/orders?sasl=scram-sha-512&tls=true")
 */
export function parseKafkaUri(uri: string): KafkaAddress {
	const m = /^kafka:\/\/([^/?#]+)\/([^/?#]+)(\?.*)?$/i.exec(uri);
	if (!m)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': expected kafka://[user:password@]host:port/topic (several brokers: host1:9092,host2:9092)`,
		);
	const q = new URLSearchParams(m[3] ?? "");
	const num = (name: string, dflt: number) => {
		const v = Number(q.get(name) ?? dflt);
		if (!Number.isInteger(v))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`'${redactUrl(uri)}': ${name} must be a whole number`,
			);
		return v;
	};
	const authority = m[1] as string;
	const at = authority.lastIndexOf("@");
	const userinfo = at < 0 ? undefined : authority.slice(0, at);
	const hosts = at < 0 ? authority : authority.slice(at + 1);
	const colon = userinfo?.indexOf(":") ?? -1;
	const decode = (s: string, what: string) => {
		try {
			return decodeURIComponent(s);
		} catch {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`'${redactUrl(uri)}': the ${what} is not valid percent-encoding (encode @ : / % in it as %40 %3A %2F %25)`,
			);
		}
	};
	const username =
		userinfo === undefined
			? undefined
			: decode(colon < 0 ? userinfo : userinfo.slice(0, colon), "user name");
	const inline =
		userinfo === undefined || colon < 0
			? undefined
			: decode(userinfo.slice(colon + 1), "password");
	const mechanism = (q.get("sasl") ?? "plain").toUpperCase();
	if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': sasl=${q.get("sasl")} is not supported; use plain, scram-sha-256 or scram-sha-512`,
		);
	let sasl: KafkaAddress["sasl"];
	if (username !== undefined) {
		const password = uriPassword(inline, q, "MLSHIP_KAFKA_PASSWORD", uri);
		if (password === undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`'${redactUrl(uri)}': user '${username}' has no password; put it in password_file=PATH or MLSHIP_KAFKA_PASSWORD (or in the URI)`,
			);
		sasl = {
			mechanism: mechanism as NonNullable<KafkaAddress["sasl"]>["mechanism"],
			username,
			password,
		};
	} else if (q.has("sasl"))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': sasl= needs a user: kafka://USER@host:port/topic (password in the URI, password_file= or MLSHIP_KAFKA_PASSWORD)`,
		);
	const brokers = hosts.split(",");
	for (const b of brokers)
		if (!/^[^:\s]+:\d+$|^\[[0-9a-f:.]+\]:\d+$/i.test(b))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`'${redactUrl(uri)}': broker '${b}' is not host:port`,
			);
	const tls = tlsFromParams(q, uri);
	return {
		brokers,
		topic: decodeURIComponent(m[2] as string),
		partitions: num("partitions", -1),
		sessionTimeoutMs: num("session_timeout_ms", 10_000),
		...(sasl ? { sasl } : {}),
		...(tls ? { tls } : {}),
	};
}

/** What every Kafka client of one address shares: brokers, SASL and TLS. */
function clientOptions(a: KafkaAddress): {
	bootstrapBrokers: string[];
	sasl?: NonNullable<KafkaAddress["sasl"]>;
	tls?: ConnectionOptions;
} {
	return {
		bootstrapBrokers: a.brokers,
		...(a.sasl ? { sasl: a.sasl } : {}),
		...(a.tls ? { tls: a.tls } : {}),
	};
}

/** Creates the topic if it does not exist (replication 1 … the broker's default via -1). */
export async function ensureTopic(a: KafkaAddress): Promise<void> {
	const admin = new Admin({
		clientId: "mlship-admin",
		...clientOptions(a),
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

// Bytes in, bytes out: no (de)serializers, so keys, values and header values are the record's own bytes.
type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;
type KafkaConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
type KafkaProducer = Producer<
	Buffer | undefined,
	Buffer | null,
	Buffer,
	Buffer | null
>;
type ToProduce = MessageToProduce<
	Buffer | undefined,
	Buffer | null,
	Buffer,
	Buffer | null
>;

/** What a transaction needs from a Kafka source: its group member and the messages it handed out. */
interface SourceInternals {
	consumer(): Promise<KafkaConsumer>;
	held: Map<string, KafkaMessage>;
	brokers: string[];
}
const internals = new WeakMap<Source, SourceInternals>();

/**
 * Per partition, the message with the highest offset: committing it commits everything before it. Reads `held`
 * only; callers forget the messages once their commit succeeded, so a failed commit can be retried.
 */
function lastPerPartition(
	held: ReadonlyMap<string, KafkaMessage>,
	messages: readonly InMessage[],
): KafkaMessage[] {
	const last = new Map<number, KafkaMessage>();
	for (const msg of messages) {
		const m = held.get(msg.id);
		if (!m) continue;
		const prev = last.get(m.partition);
		if (!prev || prev.offset < m.offset) last.set(m.partition, m);
	}
	return [...last.values()];
}

/**
 * The client partitioner for a name (see PartitionerName); the client takes its result modulo the topic's
 * partition count. Records without a key go round robin (the client's partitioner would put them all in 0).
 */
function partitioner(
	name: PartitionerName,
): KafkaPartitioner<Buffer | undefined, Buffer | null, Buffer, Buffer | null> {
	let next = 0;
	const roundRobin = () => {
		next = (next + 1) & 0x7fffffff;
		return next;
	};
	switch (name) {
		case "random":
			return () => Math.floor(Math.random() * 0x7fffffff);
		case "murmur2-positive":
			return (m, key) =>
				key === undefined ? roundRobin() : defaultPartitioner(m, key);
		default:
			// Java: Utils.toPositive(Utils.murmur2(key)) % partitions.
			return (m, key) =>
				key === undefined ? roundRobin() : compatibilityPartitioner(m, key);
	}
}

function record(
	topic: string,
	m: OutMessage,
	samePartition: boolean,
): ToProduce {
	// A header name is a fresh Buffer per entry: the client keys headers by object, so repeats stay distinct.
	const headers = new Map<Buffer, Buffer | null>();
	for (const [name, value] of m.headers)
		headers.set(Buffer.from(name, "utf8"), value);
	const r: ToProduce = {
		topic,
		key: m.key ?? undefined,
		value: m.value,
		headers,
	};
	if (m.timestamp !== undefined) r.timestamp = BigInt(m.timestamp);
	if (samePartition && m.partition !== undefined) r.partition = m.partition;
	return r;
}

/**
 * Most bytes of records in one produce request. The broker refuses a record batch above its `message.max.bytes`
 * (1 MB by default; a topic's own `max.message.bytes` overrides it) and the client sends each call's records for a
 * partition as one batch, so a write of many large results (e.g. 256 results of 100 predictions) is split into
 * produce requests under this (or under the topic's limit, when smaller), as the Java producer's
 * `max.request.size` (1 MiB) does. A single record larger than the topic accepts is refused (see `Refused`).
 */
export const MAX_PRODUCE_BYTES = 900_000;
/** Kafka's default `message.max.bytes`: the limit assumed when the topic's own cannot be read. */
export const DEFAULT_MESSAGE_MAX_BYTES = 1_048_588;
/** What a record adds besides its key, value and headers (the v2 record framing, generously). */
const RECORD_OVERHEAD = 64;
/** What a record batch adds around its records (the v2 batch header). */
const BATCH_OVERHEAD = 61;

/** A record's size in a batch, over-estimated (its framing taken at the most it can be). */
function recordBytes(r: ToProduce): number {
	let size = RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
	// record() gives headers as a Map.
	if (r.headers instanceof Map)
		for (const [k, v] of r.headers) size += k.length + (v?.length ?? 0) + 8;
	return size;
}

/** Splits records into runs of at most `limit` bytes each (a record over the limit is a run of its own), in order. */
export function bySize(
	records: ToProduce[],
	limit = MAX_PRODUCE_BYTES,
): ToProduce[][] {
	const runs: ToProduce[][] = [];
	let run: ToProduce[] = [];
	let bytes = 0;
	for (const r of records) {
		const size = recordBytes(r);
		if (run.length > 0 && bytes + size > limit) {
			runs.push(run);
			run = [];
			bytes = 0;
		}
		run.push(r);
		bytes += size;
	}
	if (run.length > 0) runs.push(run);
	return runs;
}

/** The broker's words for a batch larger than the topic takes. */
const TOO_LARGE =
	/MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|larger than the max/i;

/**
 * The largest record batch `topic` accepts: its `max.message.bytes` (the broker's `message.max.bytes` unless the topic
 * sets its own), or Kafka's default when the broker will not say (e.g. an ACL without DescribeConfigs).
 */
async function topicLimit(a: KafkaAddress, topic: string): Promise<number> {
	const admin = new Admin({
		clientId: "mlship-admin",
		...clientOptions(a),
	});
	try {
		const got = await admin.describeConfigs({
			// 2: a topic (ConfigResourceTypes.TOPIC).
			resources: [
				{
					resourceType: 2,
					resourceName: topic,
					configurationKeys: ["max.message.bytes"],
				},
			],
		});
		const v = Number(
			got[0]?.configs.find((c) => c.name === "max.message.bytes")?.value,
		);
		return Number.isInteger(v) && v > 0 ? v : DEFAULT_MESSAGE_MAX_BYTES;
	} catch {
		return DEFAULT_MESSAGE_MAX_BYTES;
	} finally {
		await admin.close().catch(() => {});
	}
}

/** Why a record is refused: its size, the topic and its limit, and what to change. */
function tooLargeReason(bytes: number, topic: string, limit: number): string {
	return `the result of about ${bytes} bytes is more than topic '${topic}' accepts (max.message.bytes ${limit}): raise the topic's max.message.bytes or send fewer records per message`;
}

/** Records of a write that fit `topic` as a batch of one; the others go to `refused` with their reason. */
function fitting(
	records: readonly ToProduce[],
	topic: string,
	limit: number,
	refused: Refused[],
	indexOf?: Map<ToProduce, number>,
): ToProduce[] {
	const out: ToProduce[] = [];
	records.forEach((r, index) => {
		const bytes = recordBytes(r) + BATCH_OVERHEAD;
		if (bytes > limit)
			refused.push({ index, reason: tooLargeReason(bytes, topic, limit) });
		else {
			indexOf?.set(r, index);
			out.push(r);
		}
	});
	return out;
}

/** An idempotent acks=all producer of bytes, placing keys by the partitioner the options name (default java). */
function newProducer(
	a: KafkaAddress,
	o: SinkOptions,
	extra: {
		clientId?: string;
		transactionalId?: string;
		producerId?: bigint;
		producerEpoch?: number;
	} = {},
): KafkaProducer {
	return new Producer<Buffer | undefined, Buffer | null, Buffer, Buffer | null>(
		{
			clientId: "mlship-producer",
			...clientOptions(a),
			partitioner: partitioner(o.partitioner ?? "java"),
			idempotent: true,
			acks: -1,
			retries: 5,
			retryDelay: 250,
			...extra,
		},
	);
}

/**
 * Reads a topic as a member of the consumer group: from the group's committed offsets (a new group starts at the
 * earliest message). ack() commits, per partition, the offset after the last acked message; acks come in read
 * order, so everything before it is done. A member that dies uncommitted leaves its messages to be read again.
 */
export function kafkaSource(uri: string, opts: ConnectorOptions): Source {
	const a = parseKafkaUri(uri);
	let start:
		| Promise<{
				consumer: KafkaConsumer;
				puller: IteratorPuller<KafkaMessage>;
				close: () => Promise<void>;
		  }>
		| undefined;
	const held = new Map<string, KafkaMessage>();

	async function begin() {
		await ensureTopic(a);
		const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
			groupId: opts.group,
			clientId: opts.consumer,
			...clientOptions(a),
			sessionTimeout: a.sessionTimeoutMs,
			heartbeatInterval: Math.max(100, Math.floor(a.sessionTimeoutMs / 4)),
			rebalanceTimeout: Math.max(a.sessionTimeoutMs, 5_000),
			retries: 1_000_000,
			retryDelay: 250,
		});
		try {
			const stream = await consumer.consume({
				topics: [a.topic],
				mode: "committed",
				fallbackMode: "earliest",
				autocommit: false,
				maxWaitTime: 200,
				// Results of exactly-once processors are visible only once their transaction commits.
				isolationLevel: 1,
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

	const started = () => {
		start ??= begin().catch((err) => {
			start = undefined;
			throw new Error(describe(err), { cause: err });
		});
		return start;
	};
	const source: Source = {
		async read(max, waitMs) {
			const { puller } = await started();
			const out: InMessage[] = [];
			for (const m of await puller.take(max, waitMs)) {
				const id = `${m.partition}:${m.offset}`;
				held.set(id, m);
				const headers: Header[] = [];
				// Header names are strings in Kafka (UTF-8); values stay bytes, a null value stays null.
				for (const [k, v] of m.headerEntries)
					headers.push([k?.toString("utf8") ?? "", v ?? null]);
				out.push({
					id,
					key: m.key ?? null,
					value: m.value ?? null,
					headers,
					timestamp: Number(m.timestamp),
					origin: {
						topic: m.topic,
						partition: m.partition,
						offset: String(m.offset),
					},
				});
			}
			return out;
		},
		async ack(messages) {
			await Promise.all(
				lastPerPartition(held, messages).map(async (m) => {
					try {
						await m.commit();
					} catch (err) {
						if (!STALE_MEMBER.test(describe(err)))
							throw new Error(describe(err), { cause: err });
					}
				}),
			);
			for (const m of messages) held.delete(m.id);
		},
		async close() {
			const s = await start?.catch(() => undefined);
			await s?.close();
		},
	};
	internals.set(source, {
		consumer: async () => (await started()).consumer,
		held,
		brokers: a.brokers,
	});
	return source;
}

/**
 * Exactly-once Kafka→Kafka: per batch, one transaction (transactional id `transactionalId`; keep it stable across
 * restarts so a new process fences the old one's open transaction) holds the results, the dead letters and the
 * consumer group's offsets. Consumers reading the output with read_committed see each result once.
 */
export function kafkaTransactor(
	source: Source,
	to: string,
	dlq: string | undefined,
	transactionalId: string,
	sinkOptions: SinkOptions = {},
): Transactor {
	const src = internals.get(source);
	if (!src)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			"exactly-once needs a kafka:// source (--from), sink (--to) and, if given, dead-letter topic (--dlq)",
		);
	const out = parseKafkaUri(to);
	const dead = dlq !== undefined ? parseKafkaUri(dlq) : undefined;
	const same = sinkOptions.partitioner === "same-as-input";
	const newTxProducer = () =>
		newProducer(out, sinkOptions, {
			clientId: "mlship-transactions",
			transactionalId,
			// A new producer: -1/-1 (the client's default 0/0 is refused as fenced while a dead process's
			// transaction with this id is still open, instead of aborting it).
			producerId: -1n,
			producerEpoch: -1,
		});
	let producer = newTxProducer();
	let ready: Promise<void> | undefined;
	let limit = DEFAULT_MESSAGE_MAX_BYTES;
	return {
		async commit(results, deadLetters, consumed) {
			ready ??= Promise.all([ensureTopic(out), dead && ensureTopic(dead)])
				.then(() => topicLimit(out, out.topic))
				.then((l) => {
					limit = l;
				})
				.catch((err) => {
					ready = undefined;
					throw err;
				});
			await ready;
			// A result the topic would refuse would fail the whole transaction, every time: nothing is sent, and the
			// processor commits the batch again with its input as a dead letter.
			const refused: Refused[] = [];
			fitting(
				results.map((m) => record(out.topic, m, same)),
				out.topic,
				limit,
				refused,
			);
			if (refused.length > 0) return refused;
			const consumer = await src.consumer();
			let tx: Awaited<ReturnType<typeof producer.beginTransaction>>;
			try {
				tx = await producer.beginTransaction();
			} catch (err) {
				// A failed begin (e.g. the broker still aborting a dead process's transaction) leaves the producer
				// holding a half-made transaction: start over with a new one.
				await producer.close(true).catch(() => {});
				producer = newTxProducer();
				throw new Error(describe(err), { cause: err });
			}
			try {
				const messages = results.map((m) => record(out.topic, m, same));
				if (dead)
					for (const m of deadLetters)
						messages.push(record(dead.topic, m, false));
				for (const run of bySize(messages, Math.min(MAX_PRODUCE_BYTES, limit)))
					await tx.send({ messages: run });
				await tx.addConsumer(consumer);
				for (const m of lastPerPartition(src.held, consumed))
					await tx.addOffset(m);
				await tx.commit();
			} catch (err) {
				await tx.abort().catch(() => {});
				if (!tx.completed) {
					await producer.close(true).catch(() => {});
					producer = newTxProducer();
				}
				throw new Error(describe(err), { cause: err });
			}
			for (const m of consumed) src.held.delete(m.id);
		},
		async close() {
			await producer.close();
		},
	};
}

/**
 * Produces with acks=all (idempotent): write() resolves once the broker has every message. Keys, values (null: a
 * tombstone), headers (in order, repeats and nulls kept) and timestamps are written as given.
 */
export function kafkaSink(uri: string, opts: SinkOptions = {}): Sink {
	const a = parseKafkaUri(uri);
	let ready: Promise<number> | undefined;
	const producer = newProducer(a, opts);
	const same = opts.partitioner === "same-as-input";
	return {
		async write(messages: readonly OutMessage[]) {
			if (messages.length === 0) return;
			ready ??= ensureTopic(a)
				.then(() => topicLimit(a, a.topic))
				.catch((err) => {
					ready = undefined;
					// Flattened like the source's errors: the reason (SASL, TLS) is nested several causes deep.
					throw new Error(describe(err), { cause: err });
				});
			const limit = await ready;
			const refused: Refused[] = [];
			const indexOf = new Map<ToProduce, number>();
			const records = fitting(
				messages.map((m) => record(a.topic, m, same)),
				a.topic,
				limit,
				refused,
				indexOf,
			);
			try {
				// One request at a time, in order: each resolves once the broker has all of its records.
				for (const run of bySize(records, Math.min(MAX_PRODUCE_BYTES, limit)))
					try {
						await producer.send({ messages: run });
					} catch (err) {
						if (!TOO_LARGE.test(describe(err))) throw err;
						// The topic's limit changed under us, or the estimate missed: each record alone, and those the
						// broker still refuses are refused for good.
						for (const r of run)
							try {
								await producer.send({ messages: [r] });
							} catch (one) {
								if (!TOO_LARGE.test(describe(one))) throw one;
								refused.push({
									index: indexOf.get(r) as number,
									reason: `${tooLargeReason(recordBytes(r) + BATCH_OVERHEAD, a.topic, limit)}; the broker said: ${describe(one)}`,
								});
							}
					}
			} catch (err) {
				throw new Error(describe(err), { cause: err });
			}
			return refused.sort((x, y) => x.index - y.index);
		},
		async close() {
			await producer.close();
		},
	};
}
