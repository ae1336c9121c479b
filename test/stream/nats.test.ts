// NATS JetStream against a real nats-server: the connector contract, then mlship stream end to end.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { runStream } from "../../src/stream/run.ts";
import { startNats } from "../harness/nats.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { runContract } from "./connector.contract.ts";
import { runEndToEnd } from "./e2e.ts";

const nats = await startNats();
after(() => nats.stop());
let n = 0;
runContract("nats", {
	// ack_wait_ms=3000: a stopped consumer's unacked messages are delivered again within 3 s (the redelivery test).
	fresh: async () => {
		n++;
		return `${nats.url}/CONTRACT${n}/contract.${n}?ack_wait_ms=3000`;
	},
	metadata: true,
	groups: true,
});
runEndToEnd("nats", {
	// A dead processor's unacked messages are delivered again after 3 s (default 30 s).
	fresh: async (label) => {
		n++;
		return `${nats.url}/E2E_${label.toUpperCase()}_${n}/e2e.${label}.${n}?ack_wait_ms=3000`;
	},
	restart: () => nats.restart({ downtimeMs: 500 }),
});

describe("NATS byte for byte, published and read with the NATS client directly", () => {
	it("binary payloads, multi-valued headers, tombstones and dead letters pass through; event time is carried", async () => {
		const nc = await connect({ servers: nats.url.replace(/^nats:\/\//, "") });
		try {
			const jsm = await jetstreamManager(nc);
			for (const name of ["BIN_IN", "BIN_OUT", "BIN_DLQ"])
				await jsm.streams.add({ name, subjects: [`${name.toLowerCase()}.x`] });
			const js = jetstream(nc);
			const before = Date.now();
			const h1 = natsHeaders();
			h1.append("key", "cust-1");
			h1.append("hop", "a");
			h1.append("hop", "b");
			h1.append("trace", "t1");
			const iris = JSON.stringify(golden("iris-logreg").records[0]);
			await js.publish("bin_in.x", iris, { headers: h1 });
			const h2 = natsHeaders();
			h2.append("key", "cust-2");
			h2.append("hop", "c");
			const poison = Uint8Array.from([0x00, 0x80, 0xff, 0x78]);
			const a2 = await js.publish("bin_in.x", poison, { headers: h2 });
			const h3 = natsHeaders();
			h3.append("key", "cust-3");
			h3.append("KV-Operation", "DEL");
			await js.publish("bin_in.x", new Uint8Array(0), { headers: h3 });
			const afterPublish = Date.now();
			const s = await runStream({
				model: bundleDir("iris-logreg"),
				from: `${nats.url}/BIN_IN/bin_in.x`,
				to: `${nats.url}/BIN_OUT/bin_out.x`,
				dlq: `${nats.url}/BIN_DLQ/bin_dlq.x`,
				group: "bytes",
			});
			const read = async (stream: string, n: number) => {
				const got: JsMsg[] = [];
				const c = await js.consumers.get(stream);
				for (let i = 0; i < 100 && got.length < n; i++) {
					const m = await c.next({ expires: 1000 });
					if (m) got.push(m);
				}
				return got;
			};
			let out: JsMsg[];
			let dead: JsMsg[];
			try {
				out = await read("BIN_OUT", 2);
				dead = await read("BIN_DLQ", 1);
			} finally {
				s.stop();
				await s.done;
			}
			const [result, tomb] = out;
			assert.ok(result && tomb);
			assert.deepEqual(result.headers?.values("hop"), ["a", "b"]);
			assert.deepEqual(result.headers?.values("key"), ["cust-1"]);
			assert.deepEqual(result.headers?.values("trace"), ["t1"]);
			// The time JetStream stored the request (its event time), not the time of the result.
			const ts = Number(result.headers?.get("mlship-timestamp"));
			assert.ok(
				ts >= before &&
					ts <= afterPublish &&
					ts <= result.info.timestampNanos / 1e6,
				`event time ${ts}`,
			);
			assert.match(new TextDecoder().decode(result.data), /setosa/);
			assert.equal(tomb.data.length, 0);
			assert.deepEqual(tomb.headers?.values("KV-Operation"), ["DEL"]);
			assert.deepEqual(tomb.headers?.values("key"), ["cust-3"]);
			const [d] = dead;
			assert.ok(d);
			assert.deepEqual(
				Buffer.from(d.data),
				Buffer.from(poison),
				"the payload byte for byte",
			);
			assert.deepEqual(d.headers?.values("hop"), ["c"]);
			assert.deepEqual(d.headers?.values("key"), ["cust-2"]);
			assert.deepEqual(d.headers?.values("__connect.errors.offset"), [
				String(a2.seq),
			]);
			assert.deepEqual(d.headers?.values("__connect.errors.topic"), ["BIN_IN"]);
		} finally {
			await nc.close();
		}
	});
});
