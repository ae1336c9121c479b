// Dead-letter replay: re-publishes dead letters as the original records (error headers removed), e.g. after a model fix.
import { MlshipError } from "../protocol/errors.ts";
import { checkUri, openSink, openSource } from "./connectors/index.ts";
import { headerText, replaceHeaders } from "./headers.ts";
import { stripDeadLetterHeaders } from "./message.ts";
import type { InMessage, OutMessage, SinkOptions } from "./types.ts";

export interface ReplayOptions {
	/** The dead-letter queue (a connector URI). */
	from: string;
	/** Where the original records go (usually the stream's input). */
	to: string;
	/** Consumer group reading the dead letters; replayed ones are acked in it, so a second run goes on after them. */
	group?: string | undefined;
	consumer?: string | undefined;
	/** Stop once no dead letter arrived for this long (the first read waits at least 10 s). Default 2000 ms. */
	idleMs?: number | undefined;
	/** Stop after this many. Default: all. */
	max?: number | undefined;
	partitioner?: SinkOptions["partitioner"] | undefined;
}

const FIRST_READ_MS = 10_000;
const ENVELOPE_HEADERS: ReadonlySet<string> = new Set(["mlship-error"]);

/**
 * The original record of a dead letter. `connect` dead letters are the record itself: the `__connect.errors.*`
 * headers are removed. An `envelope` dead letter (`mlship-error` header, JSON body) gives back its `payload`
 * (`payload_base64`; `payload: null` is a tombstone). Throws MLSHIP_INVALID_INPUT for an envelope that is not one.
 */
export function originalOf(m: InMessage): OutMessage {
	const base = { key: m.key, timestamp: m.timestamp };
	if (headerText(m.headers, "mlship-error") === undefined)
		return {
			...base,
			value: m.value,
			headers: stripDeadLetterHeaders(m.headers),
		};
	let env: { payload?: unknown; payload_base64?: unknown };
	try {
		env = JSON.parse(m.value?.toString("utf8") ?? "null") ?? {};
	} catch {
		throw new MlshipError(
			"MLSHIP_INVALID_INPUT",
			`dead letter ${m.id} has an mlship-error header but its value is not a JSON envelope`,
		);
	}
	const value =
		typeof env.payload_base64 === "string"
			? Buffer.from(env.payload_base64, "base64")
			: typeof env.payload === "string"
				? Buffer.from(env.payload, "utf8")
				: env.payload === null
					? null
					: undefined;
	if (value === undefined)
		throw new MlshipError(
			"MLSHIP_INVALID_INPUT",
			`dead letter ${m.id}: its envelope has no payload or payload_base64`,
		);
	return {
		...base,
		value,
		headers: replaceHeaders(m.headers, ENVELOPE_HEADERS, []),
	};
}

/**
 * Reads dead letters from `from` (as consumer group `group`) and produces each one's original record to `to`,
 * acking only after the broker has it (at least once). Ends when nothing arrives for `idleMs` or after `max`.
 * @example const { replayed } = await replayDeadLetters({ from: "kafka://k:9092/dead", to: "kafka://k:9092/requests" });
 */
export async function replayDeadLetters(
	opts: ReplayOptions,
): Promise<{ replayed: number }> {
	checkUri(opts.from);
	checkUri(opts.to);
	const idleMs = opts.idleMs ?? 2000;
	const max = opts.max ?? Number.POSITIVE_INFINITY;
	const sink = await openSink(
		opts.to,
		opts.partitioner !== undefined ? { partitioner: opts.partitioner } : {},
	);
	let replayed = 0;
	try {
		const source = await openSource(opts.from, {
			group: opts.group ?? "mlship-replay",
			consumer: opts.consumer ?? `replay-${process.pid}`,
		});
		try {
			// The first read also joins the group and fetches from the start: it waits longer than idleMs.
			let wait = Math.max(idleMs, FIRST_READ_MS);
			while (replayed < max) {
				const batch = await source.read(Math.min(256, max - replayed), wait);
				wait = idleMs;
				if (batch === null || batch.length === 0) break;
				const refused = await sink.write(batch.map(originalOf));
				// A record the target will never take stops the replay unacked (it stays in the dead-letter queue).
				if (refused && refused.length > 0)
					throw new MlshipError(
						"MLSHIP_PAYLOAD_TOO_LARGE",
						`cannot replay dead letter ${(batch[refused[0]?.index ?? 0] as InMessage).id}: ${refused[0]?.reason}`,
					);
				await source.ack(batch);
				replayed += batch.length;
			}
		} finally {
			await source.close();
		}
	} finally {
		await sink.close();
	}
	return { replayed };
}
