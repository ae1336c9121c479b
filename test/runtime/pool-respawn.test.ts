// WorkerPool replaces a worker that dies and replays what the old one held (SharedOnnxPool's loads) before the new
// one takes calls; a call in flight on the dead worker fails, later calls succeed.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { pathToFileURL } from "node:url";
import { WorkerPool } from "../../src/runtime/pool.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-pool-"));
});
after(() => rm(dir, { recursive: true, force: true }));

it("a replacement worker is brought up to date by the replay before it answers", async () => {
	// A worker that remembers loaded keys, lists them, and exits when told to.
	const file = join(dir, "keys-worker.mjs");
	await writeFile(
		file,
		`import { parentPort } from "node:worker_threads";
const keys = new Set();
parentPort.on("message", (m) => {
	if (m.exit) process.exit(1);
	if (m.op === "load") keys.add(m.key);
	parentPort.postMessage({ id: m.id, ok: true, value: [...keys] });
});
parentPort.postMessage({ ready: true });
`,
	);
	const pool = await WorkerPool.start(pathToFileURL(file), undefined, 1);
	try {
		const replayed: string[] = [];
		pool.onRespawn(async (post) => {
			replayed.push("a");
			await post({ op: "load", key: "a" });
		});
		assert.deepEqual(await pool.call({ op: "load", key: "a" }), ["a"]);
		await assert.rejects(pool.call({ exit: true }), /model worker exited/);
		// The next call waits for the replacement and its replay: the new worker already holds "a".
		assert.deepEqual(await pool.call({ op: "list" }), ["a"]);
		assert.deepEqual(replayed, ["a"]);
	} finally {
		await pool.close();
	}
});
