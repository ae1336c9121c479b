// Kafka against a real single-node Kafka (KRaft): the connector contract, then mlship stream end to end (one broker: start-up takes seconds).
import { after } from "node:test";
import { startKafka } from "../harness/kafka.ts";
import { runContract } from "./connector.contract.ts";
import { runEndToEnd } from "./e2e.ts";

const kafka = await startKafka();
after(() => kafka.stop());
let n = 0;
runContract("kafka", {
	// One partition keeps the round-trip order total; session_timeout_ms=2000: a stopped member's partitions move on fast.
	fresh: async () =>
		`${kafka.url}/contract-${++n}?partitions=1&session_timeout_ms=2000`,
	metadata: true,
	groups: true,
});
runEndToEnd("kafka", {
	// Two partitions, so two processors of a group both get work; a killed member's partitions move after 3 s.
	fresh: async (label) =>
		`${kafka.url}/e2e-${label}-${++n}?partitions=2&session_timeout_ms=3000`,
	restart: () => kafka.restart({ downtimeMs: 500 }),
});
