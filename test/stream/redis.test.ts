// Redis Streams connector against a real redis-server: the connector contract.
import { startRedis } from "../harness/redis.ts";
import { runContract } from "./connector.contract.ts";

const redis = await startRedis();
let n = 0;
runContract("redis", {
	// claim_idle_ms=500: a stopped consumer's pending entries are claimed by the next one within a second (the redelivery test).
	fresh: async () => `${redis.url}/contract-${++n}?claim_idle_ms=500`,
	metadata: true,
	groups: true,
	teardown: () => redis.stop(),
});
