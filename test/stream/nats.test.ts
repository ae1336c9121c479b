// NATS JetStream connector against a real nats-server: the connector contract.
import { startNats } from "../harness/nats.ts";
import { runContract } from "./connector.contract.ts";

const nats = await startNats();
let n = 0;
runContract("nats", {
	// ack_wait_ms=3000: a stopped consumer's unacked messages are delivered again within 3 s (the redelivery test).
	fresh: async () => {
		n++;
		return `${nats.url}/CONTRACT${n}/contract.${n}?ack_wait_ms=3000`;
	},
	metadata: true,
	groups: true,
	teardown: () => nats.stop(),
});
