// mlship stream on NATS JetStream, end to end against a real nats-server.
import { startNats } from "../harness/nats.ts";
import { runEndToEnd } from "./e2e.ts";

const nats = await startNats();
let n = 0;
runEndToEnd("nats", {
	// A dead processor's unacked messages are delivered again after 3 s (default 30 s).
	fresh: async (label) => {
		n++;
		return `${nats.url}/E2E_${label.toUpperCase()}_${n}/e2e.${label}.${n}?ack_wait_ms=3000`;
	},
	restart: () => nats.restart({ downtimeMs: 500 }),
	teardown: () => nats.stop(),
});
