// The one contract every stream connector passes against its real broker (or file): round trip, acks, redelivery, groups.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { openSink, openSource } from "../../src/stream/connectors/index.ts";
import type { InMessage, OutMessage, Source } from "../../src/stream/types.ts";
import { hdr, text, textMessage } from "./msg.ts";

export interface ContractTarget {
	/** A fresh, empty place to produce to and consume from (topic, stream, file), as a connector URI. */
	fresh(): Promise<string>;
	/** Keys and headers travel (JSON lines carry only the value). */
	metadata: boolean;
	/** A broker with consumer groups: acks, redelivery of unacked messages, work shared within a group. */
	groups: boolean;
	/** Called once after the suite (e.g. remove a temp dir). */
	teardown?: () => Promise<void>;
	/** Waits until `members` consumers of `group` are settled members (brokers that rebalance, like Kafka). */
	settle?: (group: string, members: number) => Promise<void>;
}

function messages(n: number, from = 0): OutMessage[] {
	return Array.from({ length: n }, (_, i) =>
		textMessage(`k${from + i}`, JSON.stringify({ n: from + i }), {
			"x-request-id": `r${from + i}`,
			trace: `t-${from + i}`,
		}),
	);
}

/** Reads until `n` messages arrived (or `rounds` reads came back empty). */
async function readN(
	src: Source,
	n: number,
	rounds = 40,
	batch = 7,
): Promise<InMessage[]> {
	const got: InMessage[] = [];
	let empty = 0;
	while (got.length < n && empty < rounds) {
		const r = await src.read(Math.min(batch, n - got.length), 250);
		if (r === null) break;
		if (r.length === 0) empty++;
		got.push(...r);
	}
	return got;
}

const numberOf = (m: InMessage) =>
	(JSON.parse(text(m.value) ?? "null") as { n: number }).n;

/**
 * Runs the connector contract for one connector.
 * @example runContract("redis", { fresh: async () => `${r.url}/s${n++}`, metadata: true, groups: true })
 */
export function runContract(name: string, target: ContractTarget): void {
	describe(`stream connector contract: ${name}`, () => {
		after(async () => {
			await target.teardown?.();
		});
		let consumers = 0;
		const opts = (group = "g") => ({ group, consumer: `c${++consumers}` });

		it("delivers what a sink wrote: every value in order, with key and headers", async () => {
			const uri = await target.fresh();
			const sink = await openSink(uri);
			await sink.write(messages(12));
			await sink.write(messages(13, 12));
			await sink.close();
			const src = await openSource(uri, opts());
			try {
				const got = await readN(src, 25);
				assert.deepEqual(
					got.map(numberOf),
					Array.from({ length: 25 }, (_, i) => i),
				);
				assert.equal(
					new Set(got.map((m) => m.id)).size,
					25,
					"ids are distinct",
				);
				if (target.metadata)
					for (const m of got) {
						const n = numberOf(m);
						assert.equal(text(m.key), `k${n}`);
						assert.equal(hdr(m, "x-request-id"), `r${n}`);
						assert.equal(hdr(m, "trace"), `t-${n}`);
					}
				await src.ack(got);
			} finally {
				await src.close();
			}
		});

		if (!target.groups) {
			it("a finite source ends with null after its last message", async () => {
				const uri = await target.fresh();
				const sink = await openSink(uri);
				await sink.write(messages(3));
				await sink.close();
				const src = await openSource(uri, opts());
				try {
					assert.equal((await readN(src, 3)).length, 3);
					assert.equal(await src.read(10, 100), null);
				} finally {
					await src.close();
				}
			});
			return;
		}

		it("read waits at most waitMs and returns [] when nothing comes", async () => {
			const uri = await target.fresh();
			const src = await openSource(uri, opts());
			try {
				assert.deepEqual(await src.read(10, 200), []);
			} finally {
				await src.close();
			}
		});

		it("acked messages are not delivered again; unacked ones are, to the next consumer of the group", async () => {
			const uri = await target.fresh();
			const sink = await openSink(uri);
			await sink.write(messages(10));
			await sink.close();
			const first = await openSource(uri, opts("redo"));
			const got = await readN(first, 10);
			assert.equal(got.length, 10);
			await first.ack(got.slice(0, 6));
			await first.close(); // dies holding 4 unacked
			const second = await openSource(uri, opts("redo"));
			try {
				const again = await readN(second, 4, 80);
				assert.deepEqual(
					again.map(numberOf).sort((a, b) => a - b),
					[6, 7, 8, 9],
				);
				await second.ack(again);
				assert.deepEqual(
					await readN(second, 1, 3),
					[],
					"nothing else is delivered",
				);
			} finally {
				await second.close();
			}
		});

		it("two consumers in one group share the messages: none is lost, and only a rebalance redelivers", async () => {
			const uri = await target.fresh();
			const a = await openSource(uri, opts("share"));
			const b = await openSource(uri, opts("share"));
			try {
				// Both join the group (a first read), and the group settles, before anything is there to read: the
				// rebalance a joining member causes is then over, and only it could redeliver.
				await Promise.all([a.read(1, 250), b.read(1, 250)]);
				await target.settle?.("share", 2);
				const sink = await openSink(uri);
				await sink.write(messages(60));
				await sink.close();
				const seen: number[] = [];
				let empty = 0;
				while (new Set(seen).size < 60 && empty < 40) {
					const [ra, rb] = await Promise.all([a.read(5, 250), b.read(5, 250)]);
					if ((ra?.length ?? 0) + (rb?.length ?? 0) === 0) empty++;
					for (const [src, r] of [
						[a, ra],
						[b, rb],
					] as const)
						if (r && r.length > 0) {
							seen.push(...r.map(numberOf));
							await src.ack(r);
						}
				}
				assert.deepEqual(
					[...new Set(seen)].sort((x, y) => x - y),
					Array.from({ length: 60 }, (_, i) => i),
				);
				// Kafka moves partitions when the second member joins: a batch read but not yet committed by the
				// first member (≤ 5 messages per move) is read again by its new owner. Nothing else repeats.
				assert.ok(
					seen.length - 60 <= 10,
					`${seen.length - 60} messages delivered twice`,
				);
			} finally {
				await a.close();
				await b.close();
			}
		});
	});
}
