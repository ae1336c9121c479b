// Redis Streams against a real redis-server: the connector contract, then mlship stream end to end.
import { after } from "node:test";
import { startRedis } from "../harness/redis.ts";
import { runContract } from "./connector.contract.ts";
import { runEndToEnd } from "./e2e.ts";

const redis = await startRedis();
after(() => redis.stop());
let n = 0;
runContract("redis", {
	// claim_idle_ms=500: a stopped consumer's pending entries are claimed by the next one within a second (the redelivery test).
	fresh: async () => `${redis.url}/contract-${++n}?claim_idle_ms=500`,
	metadata: true,
	groups: true,
});
runEndToEnd("redis", {
	// A dead processor's pending entries are claimed by a live one after 2 s (default 30 s).
	fresh: async (label) => `${redis.url}/e2e-${label}-${++n}?claim_idle_ms=2000`,
	restart: () => redis.restart({ downtimeMs: 500 }),
});
