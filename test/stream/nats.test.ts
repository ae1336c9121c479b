// NATS JetStream against a real nats-server: the connector contract, then mlship stream end to end.
import { after } from "node:test";
import { startNats } from "../harness/nats.ts";
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
