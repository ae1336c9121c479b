// Avro payloads, checked by another Avro implementation: fastavro writes the requests (Confluent wire format) and reads mlship's results with the schema mlship wrote.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { Redis } from "ioredis";
import { startRedis } from "../harness/redis.ts";
import { assertClose, bundleDir, golden } from "../helpers/fixtures.ts";
import { streamUntil } from "./msg.ts";

const REPO = join(import.meta.dirname, "..", "..");
const PYTHON = join(REPO, "tools/avro/.venv/bin/python");
const CHECK = join(REPO, "tools/avro/avro_check.py");
if (!existsSync(PYTHON))
	throw new Error(
		"fastavro is not installed in tools/avro/.venv: run scripts/setup",
	);

const redis = await startRedis();
const dir = await mkdtemp(join(tmpdir(), "mlship-avro-"));
after(async () => {
	await redis.stop();
	await rm(dir, { recursive: true, force: true });
});

function fastavro(cmd: "write" | "read", schema: string, lines: string[]) {
	const r = spawnSync(PYTHON, [CHECK, cmd, schema], {
		input: `${lines.join("\n")}\n`,
		encoding: "utf8",
	});
	assert.equal(r.status, 0, r.stderr);
	return r.stdout.trim().split("\n");
}

const g = golden("iris-logreg");
const LABELS = ["setosa", "versicolor", "virginica"];

it("--format avro: requests written by fastavro (Confluent wire format) are scored; fastavro reads the results with the schema mlship derived", async () => {
	const schema = join(dir, "iris.avsc");
	const resultSchema = join(dir, "result.avsc");
	await writeFile(
		schema,
		JSON.stringify({
			type: "record",
			name: "IrisRequest",
			fields: [
				"sepal_length",
				"sepal_width",
				"petal_length",
				"petal_width",
			].map((name) => ({ name, type: "double" })),
		}),
	);
	const datums = fastavro(
		"write",
		schema,
		g.records.map((r) => JSON.stringify(r)),
	);
	const r = new Redis({ port: redis.port, lazyConnect: false });
	try {
		for (const [i, hex] of datums.entries())
			await r.xadd(
				"avro-in",
				"*",
				"value",
				Buffer.from(hex, "hex"),
				"key",
				`k${i}`,
			);
		// And one that is not Avro of that schema: a dead letter, not a crash.
		await r.xadd(
			"avro-in",
			"*",
			"value",
			Buffer.from([0, 0, 0, 0, 1, 0xff]),
			"key",
			"bad",
		);
		await streamUntil(
			{
				model: bundleDir("iris-logreg"),
				from: `${redis.url}/avro-in`,
				to: `${redis.url}/avro-out`,
				dlq: `${redis.url}/avro-dlq`,
				group: "avro",
				format: "avro",
				schema,
				resultSchema,
			},
			async () =>
				(await r.xlen("avro-out")) >= g.records.length &&
				(await r.xlen("avro-dlq")) >= 1,
		);
		const entries = (await r.xrangeBuffer("avro-out", "-", "+")) as [
			Buffer,
			Buffer[],
		][];
		assert.equal(entries.length, g.records.length);
		const values = entries.map(([, f]) =>
			(f[f.findIndex((x) => x.toString() === "value") + 1] as Buffer).toString(
				"hex",
			),
		);
		const results = fastavro("read", resultSchema, values).map(
			(l) =>
				JSON.parse(l) as {
					id: string;
					key: string | null;
					model_name: string;
					predictions: { label: string; probabilities: number[] }[];
				},
		);
		for (const res of results) {
			const i = Number(res.key?.slice(1));
			assert.equal(res.model_name, "iris-logreg");
			assert.equal(
				res.predictions[0]?.label,
				LABELS[g.expected.label?.[i] as number],
			);
			const want = g.expected.probabilities?.[i] as number[];
			for (const [j, v] of (res.predictions[0]?.probabilities ?? []).entries())
				assertClose(v, want[j] as number, `k${i} probabilities[${j}]`);
		}
		assert.deepEqual(
			results.map((x) => x.key).sort(),
			g.records.map((_, i) => `k${i}`).sort(),
		);
		const derived = JSON.parse(await readFile(resultSchema, "utf8")) as {
			name: string;
		};
		assert.equal(derived.name, "dev.mlship.MlshipResult");
		const [dead] = (await r.xrangeBuffer("avro-dlq", "-", "+")) as [
			Buffer,
			Buffer[],
		][];
		assert.ok(dead, "the bad datum is a dead letter");
		assert.match(
			dead[1].map((x) => x.toString("latin1")).join(" "),
			/not an Avro datum/,
		);
	} finally {
		r.disconnect();
	}
});
