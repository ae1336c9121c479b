// CSV payloads: a message is a header row and record rows; a result is a header row and one row per prediction (read here by Python's csv module).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, it } from "node:test";
import { Redis } from "ioredis";
import { startRedis } from "../harness/redis.ts";
import { assertClose, bundleDir, golden } from "../helpers/fixtures.ts";
import { streamUntil } from "./msg.ts";

const redis = await startRedis();
after(() => redis.stop());
const g = golden("iris-logreg");
const LABELS = ["setosa", "versicolor", "virginica"];
const COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/** Rows of a CSV document as Python's csv.DictReader reads them. */
function pythonCsv(doc: string): Record<string, string>[] {
	const r = spawnSync(
		"python3",
		[
			"-c",
			"import csv,json,sys; print(json.dumps(list(csv.DictReader(sys.stdin))))",
		],
		{ input: doc, encoding: "utf8" },
	);
	assert.equal(r.status, 0, r.stderr);
	return JSON.parse(r.stdout) as Record<string, string>[];
}

it("--format csv: each message's rows are scored; the result is CSV with one row per prediction; a message that is not CSV is a dead letter", async () => {
	const rows = g.records.map((rec) =>
		COLUMNS.map((c) => (rec as Record<string, number>)[c]).join(","),
	);
	const r = new Redis({ port: redis.port });
	try {
		// Message j holds records 3j … 3j+2 under one header row.
		const messages = Math.ceil(rows.length / 3);
		for (let j = 0; j < messages; j++)
			await r.xadd(
				"csv-in",
				"*",
				"value",
				[COLUMNS.join(","), ...rows.slice(3 * j, 3 * j + 3)].join("\n"),
				"key",
				`m${j}`,
			);
		await r.xadd("csv-in", "*", "value", 'a,b\n1,"unterminated', "key", "bad");
		await streamUntil(
			{
				model: bundleDir("iris-logreg"),
				from: `${redis.url}/csv-in`,
				to: `${redis.url}/csv-out`,
				dlq: `${redis.url}/csv-dlq`,
				group: "csv",
				format: "csv",
			},
			async () =>
				(await r.xlen("csv-out")) >= messages && (await r.xlen("csv-dlq")) >= 1,
		);
		const out = await r.xrange("csv-out", "-", "+");
		assert.equal(out.length, messages);
		let n = 0;
		for (const [, fields] of out) {
			const key = fields[fields.indexOf("key") + 1] as string;
			const j = Number(key.slice(1));
			const got = pythonCsv(fields[fields.indexOf("value") + 1] as string);
			assert.equal(got.length, Math.min(3, rows.length - 3 * j));
			for (const [k, row] of got.entries()) {
				const i = 3 * j + k;
				assert.equal(row.key, key);
				assert.equal(row.model_name, "iris-logreg");
				assert.equal(row.label, LABELS[g.expected.label?.[i] as number]);
				const want = g.expected.probabilities?.[i] as number[];
				for (let c = 0; c < 3; c++)
					assertClose(
						Number(row[`probabilities_${c}`]),
						want[c] as number,
						`record ${i}`,
					);
				n++;
			}
		}
		assert.equal(n, g.records.length);
		const [dead] = await r.xrange("csv-dlq", "-", "+");
		assert.ok(dead);
		assert.match(dead[1].join(" "), /not CSV/);
	} finally {
		r.disconnect();
	}
});
