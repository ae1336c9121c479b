// The JSON-lines connector (files; stdio is exercised by the CLI tests) against the connector contract.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runContract } from "./connector.contract.ts";

const dir = await mkdtemp(join(tmpdir(), "mlship-jsonl-"));
let n = 0;
runContract("jsonl file", {
	fresh: async () => join(dir, `m${++n}.jsonl`),
	metadata: false,
	groups: false,
	teardown: () => rm(dir, { recursive: true, force: true }),
});
