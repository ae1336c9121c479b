// mlship stream on Redis Streams, end to end against a real redis-server.
import { startRedis } from "../harness/redis.ts";
import { runEndToEnd } from "./e2e.ts";

const redis = await startRedis();
let n = 0;
runEndToEnd("redis", {
	// A dead consumer's pending entries are claimed by a live one after 2 s (default 30 s).
	fresh: async (label) => `${redis.url}/e2e-${label}-${++n}?claim_idle_ms=2000`,
	restart: () => redis.restart({ downtimeMs: 500 }),
	teardown: () => redis.stop(),
});
