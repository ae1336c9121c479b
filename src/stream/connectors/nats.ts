// NATS JetStream connector: a durable pull consumer per group (explicit acks, confirmed), publishes confirmed by PubAck.

import { isUtf8 } from "node:buffer";
import type { ConnectionOptions } from "node:tls";
import {
	AckPolicy,
	DeliverPolicy,
	type JetStreamManager,
	type JsMsg,
	jetstream,
	jetstreamManager,
} from "@nats-io/jetstream";
import {
	connect,
	type NatsConnection,
	headers as natsHeaders,
	nkeyAuthenticator,
	type TlsOptions,
} from "@nats-io/transport-node";
import { MlshipError } from "../../protocol/errors.ts";
import { redactUrl } from "../../protocol/redact.ts";
import {
	parseConnectionUrl,
	readSecretFile,
	tlsFromParams,
	uriPassword,
} from "../../protocol/secrets.ts";
import { headerTimestamp, TIMESTAMP_HEADER } from "../headers.ts";
import type {
	ConnectorOptions,
	Header,
	InMessage,
	OutMessage,
	Sink,
	Source,
} from "../types.ts";
import { IteratorPuller } from "./pull.ts";

/**
 * `nats|tls://[user:password@ | token@]host:port/STREAM/subject[?ack_wait_ms=30000&…]`. Credentials: user and
 * password (password also from `password_file=` or MLSHIP_NATS_PASSWORD), a token (user info without a password,
 * `token_file=` or MLSHIP_NATS_TOKEN), or an NKey seed file (`nkey_file=`). TLS: `tls://`, `tls=true`, `ca=`,
 * `cert=`/`key=` (client certificate).
 */
export interface NatsAddress {
	server: string;
	/** From the URI's user info: nats.js ignores credentials inside a server URL, so they travel as options. */
	user: string | undefined;
	pass: string | undefined;
	token: string | undefined;
	/** An NKey seed (`SU…`), read from `nkey_file=`. */
	nkeySeed: string | undefined;
	tls: ConnectionOptions | undefined;
	stream: string;
	subject: string;
	/** An unacked message is delivered again after this long (its processor died or stalled). */
	ackWaitMs: number;
}

export function parseNatsUri(uri: string): NatsAddress {
	const u = parseConnectionUrl(
		uri,
		"nats://[user:password@]host:port/STREAM/subject",
	);
	const [stream, ...rest] = u.pathname.replace(/^\//, "").split("/");
	const subject = rest.join("/");
	if (!stream || !subject)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': expected nats://host:port/STREAM/subject (a JetStream stream name, then the subject)`,
		);
	const q = u.searchParams;
	const ackWaitMs = Number(q.get("ack_wait_ms") ?? 30_000);
	if (!Number.isFinite(ackWaitMs) || ackWaitMs < 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': ack_wait_ms must be a number of milliseconds`,
		);
	const name = u.username ? decodeURIComponent(u.username) : undefined;
	const inlinePass = u.password ? decodeURIComponent(u.password) : undefined;
	// A user with a password (inline, file or env) logs in as a user; a user info alone is a token (NATS's own URL form).
	const pass =
		name !== undefined
			? uriPassword(inlinePass, q, "MLSHIP_NATS_PASSWORD", uri)
			: undefined;
	const tokenFile = q.get("token_file");
	const token =
		name !== undefined && pass === undefined
			? name
			: tokenFile !== null
				? readSecretFile(tokenFile, `'${redactUrl(uri)}' token_file`, {
						trim: true,
					})
				: name === undefined
					? process.env.MLSHIP_NATS_TOKEN || undefined
					: undefined;
	const nkeyFile = q.get("nkey_file");
	const nkeySeed =
		nkeyFile !== null
			? readSecretFile(nkeyFile, `'${redactUrl(uri)}' nkey_file`, {
					trim: true,
				}).trim()
			: undefined;
	const tls = tlsFromParams(q, uri, u.protocol.toLowerCase() === "tls:");
	return {
		server: `nats://${u.hostname || "127.0.0.1"}:${u.port || 4222}`,
		user: pass !== undefined ? name : undefined,
		pass,
		token,
		nkeySeed,
		tls,
		stream,
		subject,
		ackWaitMs,
	};
}

/** The header that carries the message key (NATS messages have none of their own). */
export const KEY_HEADER = "key";
/** NATS has no null payload: a tombstone is an empty message marked as a delete, as NATS KV marks one. */
const OPERATION_HEADER = "KV-Operation";

/** node:tls options as nats.js takes them (PEM text; it also wants TLS on when only a CA is given). */
function natsTls(t: ConnectionOptions): TlsOptions {
	return {
		...(typeof t.ca === "string" ? { ca: t.ca } : {}),
		...(typeof t.cert === "string" ? { cert: t.cert } : {}),
		...(typeof t.key === "string" ? { key: t.key } : {}),
	};
}

function open(a: NatsAddress): Promise<NatsConnection> {
	// Reconnect forever: a broker restart is waited out; operations fail meanwhile and the processor retries them.
	return connect({
		servers: a.server,
		...(a.user !== undefined ? { user: a.user, pass: a.pass ?? "" } : {}),
		...(a.token !== undefined ? { token: a.token } : {}),
		...(a.nkeySeed !== undefined
			? {
					authenticator: nkeyAuthenticator(
						new TextEncoder().encode(a.nkeySeed),
					),
				}
			: {}),
		...(a.tls ? { tls: natsTls(a.tls) } : {}),
		maxReconnectAttempts: -1,
		reconnectTimeWait: 250,
		name: "mlship-stream",
	});
}

/** Creates the stream (file storage, just this subject) when it does not exist yet. */
async function ensureStream(
	jsm: JetStreamManager,
	a: NatsAddress,
): Promise<void> {
	try {
		await jsm.streams.info(a.stream);
	} catch (err) {
		if (!/not found/i.test(String((err as Error).message))) throw err;
		await jsm.streams.add({ name: a.stream, subjects: [a.subject] });
	}
}

/**
 * A JetStream message as a stream message. NATS headers are text and multi-valued: each value is one header (values
 * of a name stay in order; NATS groups them by name). An empty message marked `KV-Operation: DEL`/`PURGE` is a
 * tombstone. Event time: a `mlship-timestamp` header, else the time JetStream stored the message.
 */
function toMessage(m: JsMsg): InMessage {
	const headers: Header[] = [];
	let key: Buffer | null = null;
	let tombstone = false;
	if (m.headers)
		for (const [k, vs] of m.headers) {
			if (k === KEY_HEADER && key === null && vs[0] !== undefined)
				key = Buffer.from(vs[0], "utf8");
			else if (k === OPERATION_HEADER && m.data.length === 0)
				tombstone = vs.some((v) => v === "DEL" || v === "PURGE");
			else for (const v of vs) headers.push([k, Buffer.from(v, "utf8")]);
		}
	return {
		id: `${m.info.stream}:${m.seq}`,
		key,
		// A copy, as before: a view would pin the client's whole read chunk while the message waits.
		value: tombstone ? null : Buffer.from(m.data),
		headers,
		timestamp:
			headerTimestamp(headers) ?? Number(m.timestampNanos / 1_000_000n),
		origin: { topic: m.info.stream, partition: -1, offset: String(m.seq) },
	};
}

/** A header value as NATS text; NATS trims values and cannot hold CR/LF, so only text that survives is accepted. */
function natsText(name: string, v: Buffer | null): string {
	if (v === null) return "";
	const t = v.toString("utf8");
	if (!isUtf8(v) || /[\r\n]/.test(t) || t.trim() !== t)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`NATS cannot carry header '${name}' byte for byte: its value is not UTF-8 text without CR/LF and surrounding spaces (NATS headers are text); write binary metadata to Kafka or Redis`,
		);
	return t;
}

/**
 * Reads a JetStream stream through the durable pull consumer named after the group (created if missing, from
 * the stream's first message, filtered to the subject). Processors in one group share it; a message not
 * acked within `ack_wait_ms` is delivered again. Acks wait for the server's confirmation.
 */
export function natsSource(uri: string, opts: ConnectorOptions): Source {
	const a = parseNatsUri(uri);
	const held = new Map<string, JsMsg>();
	// Messages waiting in the processor (behind back-pressure or a slow sink) are still being worked on: tell the
	// server, so they are not redelivered to another processor after ack_wait while this one still holds them.
	const keepAlive = setInterval(
		() => {
			for (const m of held.values()) m.working();
		},
		Math.max(100, a.ackWaitMs / 3),
	);
	keepAlive.unref();
	let start:
		| Promise<{
				nc: NatsConnection;
				puller: IteratorPuller<JsMsg>;
				stop: () => void;
		  }>
		| undefined;

	/** `prefetch`: how many messages the client buffers ahead (each counts against ack_wait while it waits). */
	async function begin(prefetch: number) {
		const nc = await open(a);
		try {
			const jsm = await jetstreamManager(nc);
			await ensureStream(jsm, a);
			const config = {
				durable_name: opts.group,
				ack_policy: AckPolicy.Explicit,
				deliver_policy: DeliverPolicy.All,
				filter_subject: a.subject,
				ack_wait: a.ackWaitMs * 1_000_000,
				max_ack_pending: 20_000,
			};
			try {
				await jsm.consumers.info(a.stream, opts.group);
			} catch {
				await jsm.consumers.add(a.stream, config).catch(async (err) => {
					// Another processor of the group created it first.
					await jsm.consumers.info(a.stream, opts.group).catch(() => {
						throw err;
					});
				});
			}
			const consumer = await jetstream(nc).consumers.get(a.stream, opts.group);
			const messages = await consumer.consume({ max_messages: prefetch });
			return {
				nc,
				puller: new IteratorPuller(messages[Symbol.asyncIterator]()),
				stop: () => messages.stop(),
			};
		} catch (err) {
			await nc.close();
			throw err;
		}
	}

	return {
		async read(max, waitMs) {
			// The first read's size bounds the prefetch: no more is buffered than the processor takes at once.
			start ??= begin(Math.max(1, max)).catch((err) => {
				start = undefined;
				throw err;
			});
			const { puller } = await start;
			const got = await puller.take(max, waitMs);
			const out: InMessage[] = [];
			for (const m of got) {
				const msg = toMessage(m);
				held.set(msg.id, m);
				out.push(msg);
			}
			return out;
		},
		async ack(messages) {
			await Promise.all(
				messages.map(async (msg) => {
					const m = held.get(msg.id);
					if (!m) return;
					await m.ackAck();
					held.delete(msg.id);
				}),
			);
		},
		async close() {
			clearInterval(keepAlive);
			if (!start) return;
			const s = await start.catch(() => undefined);
			s?.stop();
			await s?.nc.close();
		},
	};
}

const EMPTY = new Uint8Array(0);

/** Publishes each message (headers in order, multi-valued; the key and event time as headers) to the subject and waits for JetStream's PubAck (the stream is created if missing). */
export function natsSink(uri: string): Sink {
	const a = parseNatsUri(uri);
	let start: Promise<NatsConnection> | undefined;
	async function begin(): Promise<NatsConnection> {
		const nc = await open(a);
		try {
			await ensureStream(await jetstreamManager(nc), a);
			return nc;
		} catch (err) {
			await nc.close();
			throw err;
		}
	}
	return {
		async write(messages: readonly OutMessage[]) {
			start ??= begin().catch((err) => {
				start = undefined;
				throw err;
			});
			const js = jetstream(await start);
			await Promise.all(
				messages.map((m) => {
					const h = natsHeaders();
					for (const [k, v] of m.headers)
						if (k !== KEY_HEADER && k !== TIMESTAMP_HEADER)
							h.append(k, natsText(k, v));
					if (m.key !== null) h.append(KEY_HEADER, natsText(KEY_HEADER, m.key));
					if (m.timestamp !== undefined)
						h.append(TIMESTAMP_HEADER, String(m.timestamp));
					if (m.value === null) h.append(OPERATION_HEADER, "DEL");
					return js.publish(a.subject, m.value ?? EMPTY, { headers: h });
				}),
			);
		},
		async close() {
			const nc = await start?.catch(() => undefined);
			await nc?.close();
		},
	};
}
