// Test harness: a real, throwaway single-node Kafka (KRaft: broker + controller) from the Maven Central jars scripts/setup fetched, on Java 17.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { Admin } from "@platformatic/kafka";
import {
	accepts,
	freePort,
	type Restartable,
	restartable,
	startProcess,
} from "./service.ts";

export interface KafkaServer extends Restartable {
	/** `kafka://127.0.0.1:PORT` (append `/topic`) */
	url: string;
	/** `127.0.0.1:PORT` */
	bootstrap: string;
	port: number;
	/** Resolves once consumer group `group` is Stable with `members` members (a rebalance has finished). */
	waitForGroup(
		group: string,
		members: number,
		timeoutMs?: number,
	): Promise<void>;
}

/** Where scripts/setup puts the jars (`MLSHIP_KAFKA_JARS` overrides). */
export function kafkaJars(): string {
	const dir =
		process.env.MLSHIP_KAFKA_JARS ??
		join(homedir(), ".cache", "mlship", "kafka-jars");
	if (!existsSync(join(dir, ".complete")))
		throw new Error(
			`Kafka jars not found in ${dir}; run scripts/setup (resolves them with Maven from test/harness/kafka/pom.xml)`,
		);
	return dir;
}

/**
 * Formats a KRaft log dir and starts `kafka.Kafka` (broker and controller in one JVM) on loopback ports;
 * ready once the broker port accepts connections and the process logs that it started. Topics are created
 * with 2 partitions by default; group sessions may be as short as 1 s (so a killed consumer's partitions move quickly).
 * Start-up takes seconds: share one server per test file and use fresh topics.
 * @example const k = await startKafka(); try { ... `${k.url}/topic` ... } finally { await k.stop(); }
 */
export async function startKafka(
	opts: {
		/**
		 * Clients connect over SASL_SSL only (`url` and `port` are that listener): TLS with this certificate and key,
		 * SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for these users (SCRAM credentials written at format time).
		 * The broker's own traffic and waitForGroup use a second, plaintext listener.
		 */
		saslSsl?: {
			cert: string;
			key: string;
			users: { name: string; password: string }[];
		};
	} = {},
): Promise<KafkaServer> {
	const jars = kafkaJars();
	const dir = await mkdtemp(join(tmpdir(), "mlship-kafka-"));
	const [port, controller] = [await freePort(), await freePort()];
	const internal = opts.saslSsl ? await freePort() : port;
	const props = join(dir, "server.properties");
	const sasl = opts.saslSsl;
	if (sasl)
		await writeFile(
			join(dir, "keystore.pem"),
			`${await readFile(sasl.key, "utf8")}\n${await readFile(sasl.cert, "utf8")}`,
		);
	// JAAS values are double-quoted strings: the test users' names and passwords have no quotes.
	const saslProps = sasl
		? [
				`listeners=SASL_SSL://127.0.0.1:${port},PLAINTEXT://127.0.0.1:${internal},CONTROLLER://127.0.0.1:${controller}`,
				`advertised.listeners=SASL_SSL://127.0.0.1:${port},PLAINTEXT://127.0.0.1:${internal}`,
				"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
				"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
				`listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${sasl.users.map((u) => `user_${u.name}="${u.password}"`).join(" ")};`,
				"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
				"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
				"ssl.keystore.type=PEM",
				`ssl.keystore.location=${join(dir, "keystore.pem")}`,
			]
		: [
				`listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
				`advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
				"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
			];
	await writeFile(
		props,
		[
			"process.roles=broker,controller",
			"node.id=1",
			`controller.quorum.voters=1@127.0.0.1:${controller}`,
			...saslProps,
			"controller.listener.names=CONTROLLER",
			"inter.broker.listener.name=PLAINTEXT",
			`log.dirs=${join(dir, "data")}`,
			"num.partitions=2",
			"offsets.topic.replication.factor=1",
			"offsets.topic.num.partitions=4",
			"transaction.state.log.replication.factor=1",
			"transaction.state.log.min.isr=1",
			"transaction.state.log.num.partitions=4",
			"group.initial.rebalance.delay.ms=0",
			"group.min.session.timeout.ms=1000",
			"auto.create.topics.enable=true",
			"",
		].join("\n"),
	);
	await writeFile(
		join(dir, "log4j.properties"),
		"log4j.rootLogger=WARN, stdout\nlog4j.logger.kafka.server.KafkaRaftServer=INFO\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n",
	);
	const java = [
		"-Xms128m",
		"-Xmx512m",
		"-XX:+UseSerialGC",
		`-Dlog4j.configuration=file:${join(dir, "log4j.properties")}`,
		"-cp",
		`${jars}/*`,
	];
	const clusterId = kafkaClusterId();
	const { execFile } = await import("node:child_process");
	await new Promise<void>((resolve, reject) =>
		execFile(
			"java",
			[
				...java,
				"kafka.tools.StorageTool",
				"format",
				"-t",
				clusterId,
				"-c",
				props,
				...(sasl?.users.flatMap((u) =>
					["SCRAM-SHA-256", "SCRAM-SHA-512"].flatMap((m) => [
						"--add-scram",
						`${m}=[name=${u.name},password=${u.password}]`,
					]),
				) ?? []),
			],
			(err, _out, stderr) =>
				err
					? reject(
							new Error(
								`Kafka storage format failed: ${stderr || err.message}`,
							),
						)
					: resolve(),
		),
	);
	const launch = async () => {
		const p = await startProcess(
			"kafka",
			"java",
			[...java, "kafka.Kafka", props],
			async () => accepts(port),
			{ cwd: dir, timeoutMs: 90_000 },
		);
		// The port opens a moment before the broker serves: wait for its "started" log line.
		const deadline = Date.now() + 60_000;
		while (
			!/started \(kafka\.server\.KafkaRaftServer\)|Kafka Server started/.test(
				p.log(),
			)
		) {
			if (Date.now() > deadline)
				throw new Error(`kafka did not report started:\n${p.log()}`);
			await new Promise((r) => setTimeout(r, 100));
		}
		return p;
	};
	return {
		...(await restartable(dir, launch)),
		url: `kafka://127.0.0.1:${port}`,
		bootstrap: `127.0.0.1:${port}`,
		port,
		async waitForGroup(group, members, timeoutMs = 60_000) {
			const admin = new Admin({
				clientId: "mlship-test-admin",
				bootstrapBrokers: [`127.0.0.1:${internal}`],
			});
			const deadline = Date.now() + timeoutMs;
			let seen = "no description";
			try {
				for (;;) {
					const g = (await admin.describeGroups({ groups: [group] })).get(
						group,
					);
					seen = `${g?.state} with ${g?.members.size ?? 0} members`;
					if (g && /^stable$/i.test(g.state) && g.members.size === members)
						return;
					if (Date.now() > deadline)
						throw new Error(
							`group '${group}' not Stable with ${members} members after ${timeoutMs} ms (${seen})`,
						);
					await new Promise((r) => setTimeout(r, 100));
				}
			} finally {
				await admin.close();
			}
		},
	};
}

/** A record as Kafka's Java client sees it (Interop.java): hex bytes, `null` for null, headers in order. */
export interface JavaRecord {
	topic: string;
	partition: number;
	offset: number;
	timestamp: number;
	key: string | null;
	value: string | null;
	/** LongDeserializer's reading of an 8-byte key. */
	long: string | null;
	headers: [name: string, hex: string | null][];
}

const INTEROP = join(import.meta.dirname, "kafka", "Interop.java");

async function interop(args: string[], input = ""): Promise<string> {
	const { spawn } = await import("node:child_process");
	const p = spawn("java", ["-cp", `${kafkaJars()}/*`, INTEROP, ...args], {
		stdio: ["pipe", "pipe", "pipe"],
	});
	let out = "";
	let err = "";
	p.stdout.on("data", (d) => {
		out += d;
	});
	p.stderr.on("data", (d) => {
		err += d;
	});
	p.stdin.end(input);
	const code = await new Promise<number | null>((r) => p.on("exit", r));
	if (code !== 0)
		throw new Error(`Interop.java ${args[0]} exited ${code}:\n${err}`);
	return out;
}

const nul = (s: string | undefined) =>
	s === undefined || s === "~" ? null : s;

/**
 * Produces with Kafka's Java producer (ByteArraySerializer; a key `long:N` goes through LongSerializer). Each record:
 * key and value as hex (null: none/tombstone), timestamp, headers in order. Returns where Java placed each record.
 */
export async function javaProduce(
	bootstrap: string,
	topic: string,
	records: {
		/** An explicit partition; default: the Java client's partitioner. */
		partition?: number;
		key: string | null;
		value: string | null;
		timestamp?: number;
		headers?: [string, string | null][];
	}[],
): Promise<{ partition: number; offset: number }[]> {
	const lines = records.map((r) =>
		[
			r.partition ?? "~",
			r.key ?? "~",
			r.value ?? "~",
			r.timestamp ?? "~",
			...(r.headers ?? []).map(([n, v]) => `${n}=${v ?? "~"}`),
		].join("\t"),
	);
	const out = await interop(
		["produce", bootstrap, topic],
		`${lines.join("\n")}\n`,
	);
	return out
		.trim()
		.split("\n")
		.map((l) => {
			const [p, o] = l.split("\t");
			return { partition: Number(p), offset: Number(o) };
		});
}

/** Consumes `count` records (or until `timeoutMs`) from topics with Kafka's Java consumer, read_committed, from the start. */
export async function javaConsume(
	bootstrap: string,
	topics: string[],
	count: number,
	timeoutMs = 180_000,
): Promise<JavaRecord[]> {
	const out = await interop([
		"consume",
		bootstrap,
		topics.join(","),
		String(count),
		String(timeoutMs),
	]);
	return out
		.split("\n")
		.filter((l) => l.length > 0)
		.map((l) => {
			const [topic, partition, offset, timestamp, key, value, long, ...hs] =
				l.split("\t");
			return {
				topic: topic as string,
				partition: Number(partition),
				offset: Number(offset),
				timestamp: Number(timestamp),
				key: nul(key),
				value: nul(value),
				long: nul(long),
				headers: hs.map((h): [string, string | null] => {
					const eq = h.indexOf("=");
					return [h.slice(0, eq), nul(h.slice(eq + 1))];
				}),
			};
		});
}

/**
 * A random KRaft cluster id (16 bytes, base64url) that does not start with "-", as Kafka's own `Uuid.randomUuid`
 * ensures: `kafka-storage format -t -xyz…` reads such an id as an option and fails ("expected one argument"), which
 * made 1 broker start in 64 fail.
 */
export function kafkaClusterId(
	random: (n: number) => Buffer = randomBytes,
): string {
	for (;;) {
		const id = random(16).toString("base64url");
		if (!id.startsWith("-")) return id;
	}
}

/**
 * Creates `topic` (1 partition) on the broker at `bootstrap` that accepts record batches of at most `maxMessageBytes`
 * (the topic's max.message.bytes): for tests of results or records larger than a topic accepts.
 */
export async function createSmallTopic(
	bootstrap: string,
	topic: string,
	maxMessageBytes: number,
): Promise<void> {
	const admin = new Admin({
		clientId: "test-admin",
		bootstrapBrokers: [bootstrap],
	});
	try {
		await admin.createTopics({
			topics: [topic],
			partitions: 1,
			replicas: 1,
			configs: [{ name: "max.message.bytes", value: String(maxMessageBytes) }],
		});
	} finally {
		await admin.close();
	}
}
