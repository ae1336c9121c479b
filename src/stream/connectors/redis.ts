// Redis Streams connector: consumer groups (XREADGROUP/XACK, XAUTOCLAIM for dead consumers' work), XADD to produce.
import type { ConnectionOptions } from "node:tls";
import { Redis } from "ioredis";
import { MlshipError } from "../../protocol/errors.ts";
import { redactUrl } from "../../protocol/redact.ts";
import {
	parseConnectionUrl,
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

/**
 * `redis[s]://[[user]:password@]host:port/stream[?claim_idle_ms=30000&password_file=PATH&ca=PATH]`: `rediss://` (or
 * `tls=true`) is TLS; a user is an ACL user (Redis 6+); the password may come from `password_file=` or
 * MLSHIP_REDIS_PASSWORD instead of the URI.
 */
export interface RedisAddress {
	host: string;
	port: number;
	username: string | undefined;
	password: string | undefined;
	stream: string;
	/** Pending entries idle this long (their consumer died) are claimed by a live consumer. */
	claimIdleMs: number;
	tls: ConnectionOptions | undefined;
}

export function parseRedisUri(uri: string): RedisAddress {
	const u = parseConnectionUrl(uri, "redis://[user:password@]host:port/stream");
	const stream = decodeURIComponent(u.pathname.replace(/^\//, ""));
	if (!stream || stream.includes("/"))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': expected redis://host:port/stream (one stream name after the port)`,
		);
	const idle = Number(u.searchParams.get("claim_idle_ms") ?? 30_000);
	if (!Number.isFinite(idle) || idle < 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': claim_idle_ms must be a number of milliseconds`,
		);
	const tls = tlsFromParams(
		u.searchParams,
		uri,
		u.protocol.toLowerCase() === "rediss:",
	);
	return {
		host: u.hostname || "127.0.0.1",
		port: Number(u.port || 6379),
		username: u.username ? decodeURIComponent(u.username) : undefined,
		password: uriPassword(
			u.password ? decodeURIComponent(u.password) : undefined,
			u.searchParams,
			"MLSHIP_REDIS_PASSWORD",
			uri,
		),
		stream,
		claimIdleMs: idle,
		tls,
	};
}

function connect(a: RedisAddress): Redis {
	const r = new Redis({
		host: a.host,
		port: a.port,
		...(a.username !== undefined ? { username: a.username } : {}),
		password: a.password,
		...(a.tls ? { tls: { ...a.tls, servername: a.host } } : {}),
		// Fail a command after a few reconnect attempts: the processor retries it with its own backoff.
		maxRetriesPerRequest: 3,
		retryStrategy: (n) => Math.min(n * 100, 1000),
		lazyConnect: false,
		// RESP2: stream replies keep one shape (RESP3 turns XREADGROUP's reply into a map).
		protocol: 2,
	});
	// Connection errors surface on the commands; without a listener ioredis would print them.
	r.on("error", () => {});
	return r;
}

/** A stream entry as read with the buffer variants of the commands: every field name and value is bytes. */
type Entry = [id: Buffer, fields: Buffer[] | null];

/** Entries of an XREADGROUP reply (one stream). */
function entriesOf(reply: unknown): Entry[] {
	return (reply as [Buffer, Entry[]][] | null)?.[0]?.[1] ?? [];
}

/**
 * An entry as a message: field `value` is the payload (absent: a tombstone), `key` the key (absent: none), every
 * other field a header, in order (repeated fields kept). Event time: a `mlship-timestamp` field, else the time
 * Redis stored the entry (its id).
 */
function toMessage(e: Entry, stream: string): InMessage {
	const id = e[0].toString("latin1");
	const fields = e[1] ?? [];
	let key: Buffer | null = null;
	let value: Buffer | null = null;
	const headers: Header[] = [];
	for (let i = 0; i + 1 < fields.length; i += 2) {
		const f = (fields[i] as Buffer).toString("utf8");
		const v = fields[i + 1] as Buffer;
		if (f === "value") value = v;
		else if (f === "key") key = v;
		else headers.push([f, v]);
	}
	return {
		id,
		key,
		value,
		headers,
		timestamp: headerTimestamp(headers) ?? Number(id.slice(0, id.indexOf("-"))),
		origin: { topic: stream, partition: -1, offset: id },
	};
}

/**
 * Reads a stream as one consumer of a group (created at the stream's start, with the stream, if missing). On
 * start it first re-reads its own pending entries (a restart under the same consumer name); every
 * `claim_idle_ms / 2` it claims entries other consumers left pending longer than `claim_idle_ms`.
 * Entry fields: `value` (the payload), `key`, and any others as headers.
 */
export function redisSource(uri: string, opts: ConnectorOptions): Source {
	const a = parseRedisUri(uri);
	const reader = connect(a);
	const acker = connect(a);
	let ready: Promise<void> | undefined;
	/** Cursor through our own pending entries ("0" = from the start); undefined once they are all re-read. */
	let history: string | undefined = "0";
	let lastClaim = 0;
	const inFlight = new Set<string>();
	// Entries waiting in the processor are still ours: re-claiming them resets their idle time, so other
	// consumers do not take them over after claim_idle_ms while this one still holds them.
	const keepAlive = setInterval(
		() => {
			if (inFlight.size === 0) return;
			acker
				.call(
					"XCLAIM",
					a.stream,
					opts.group,
					opts.consumer,
					0,
					...inFlight,
					"JUSTID",
				)
				.catch(() => {});
		},
		Math.max(100, a.claimIdleMs / 3),
	);
	keepAlive.unref();

	async function ensureGroup(): Promise<void> {
		try {
			await acker.call(
				"XGROUP",
				"CREATE",
				a.stream,
				opts.group,
				"0",
				"MKSTREAM",
			);
		} catch (err) {
			if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
		}
	}

	/** XREADGROUP from `id` ("0"… = our pending entries after it, ">" = new ones). */
	async function readGroup(
		max: number,
		block: (string | number)[],
		id: string,
	): Promise<Entry[]> {
		const r = await reader.callBuffer(
			"XREADGROUP",
			"GROUP",
			opts.group,
			opts.consumer,
			"COUNT",
			max,
			...block,
			"STREAMS",
			a.stream,
			id,
		);
		return entriesOf(r);
	}

	function take(entries: Entry[]): InMessage[] {
		const out: InMessage[] = [];
		for (const e of entries) {
			const m = toMessage(e, a.stream);
			if (inFlight.has(m.id)) continue;
			inFlight.add(m.id);
			out.push(m);
		}
		return out;
	}

	return {
		async read(max, waitMs) {
			ready ??= ensureGroup().catch((err) => {
				ready = undefined;
				throw err;
			});
			await ready;
			if (history !== undefined) {
				const entries = await readGroup(max, [], history);
				const last = entries[entries.length - 1];
				if (last === undefined) history = undefined;
				else {
					history = last[0].toString("latin1");
					// Entries deleted from the stream come back with null fields: ack them away.
					const gone = entries
						.filter((e) => e[1] === null)
						.map((e) => e[0].toString("latin1"));
					if (gone.length > 0)
						await acker.call("XACK", a.stream, opts.group, ...gone);
					const msgs = take(entries.filter((e) => e[1] !== null));
					if (msgs.length > 0) return msgs;
				}
			}
			const now = Date.now();
			if (now - lastClaim >= a.claimIdleMs / 2) {
				lastClaim = now;
				const r = (await acker.callBuffer(
					"XAUTOCLAIM",
					a.stream,
					opts.group,
					opts.consumer,
					a.claimIdleMs,
					"0-0",
					"COUNT",
					max,
				)) as [Buffer, Entry[], Buffer[]?];
				const msgs = take((r[1] ?? []).filter((e) => e[1] !== null));
				if (msgs.length > 0) return msgs;
			}
			return take(await readGroup(max, ["BLOCK", Math.max(1, waitMs)], ">"));
		},
		async ack(messages) {
			if (messages.length === 0) return;
			const ids = messages.map((m) => m.id);
			await acker.call("XACK", a.stream, opts.group, ...ids);
			for (const id of ids) inFlight.delete(id);
		},
		async close() {
			clearInterval(keepAlive);
			reader.disconnect();
			await acker.quit().catch(() => {});
		},
	};
}

/**
 * Appends each message to a stream with XADD, as bytes: fields `value` (absent for a tombstone), `key` (when set),
 * one per header in order (a null header value is written empty: Redis has no null), and `mlship-timestamp` with
 * the event time when there is one.
 */
export function redisSink(uri: string): Sink {
	const a = parseRedisUri(uri);
	const r = connect(a);
	return {
		async write(messages: readonly OutMessage[]) {
			if (messages.length === 0) return;
			const p = r.pipeline();
			for (const m of messages) {
				const fields: (string | Buffer)[] = [];
				if (m.value !== null) fields.push("value", m.value);
				if (m.key !== null) fields.push("key", m.key);
				for (const [h, v] of m.headers)
					if (h !== "value" && h !== "key" && h !== TIMESTAMP_HEADER)
						fields.push(h, v ?? EMPTY);
				if (m.timestamp !== undefined)
					fields.push(TIMESTAMP_HEADER, String(m.timestamp));
				// XADD needs a field: a bare tombstone (no key, headers or time) still marks its place.
				if (fields.length === 0)
					fields.push(TIMESTAMP_HEADER, String(Date.now()));
				p.call("XADD", a.stream, "*", ...fields);
			}
			const res = await p.exec();
			for (const [err] of res ?? [[new Error("pipeline was not executed")]])
				if (err) throw err;
		},
		async close() {
			await r.quit().catch(() => {});
		},
	};
}

const EMPTY = Buffer.alloc(0);
