// Redis Streams against a real redis-server: the connector contract, then mlship stream end to end.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { startRedis } from "../harness/redis.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { runContract } from "./connector.contract.ts";
import { runEndToEnd } from "./e2e.ts";
import { streamUntil } from "./msg.ts";

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

/** Runs redis-cli with commands on stdin (where it reads "\xff" escapes in double quotes); returns stdout. */
function redisCli(commands: string, ...args: string[]): string {
	return execFileSync(
		"redis-cli",
		["-p", String(redis.port), "--no-raw", ...args],
		{ input: commands, encoding: "utf8" },
	);
}

/** The quoted strings of redis-cli's --no-raw output, unescaped to bytes (ids, field names, values in order). */
function tokens(out: string): Buffer[] {
	const esc: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8 };
	return [...out.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(([, body]) => {
		const bytes: number[] = [];
		const s = body ?? "";
		for (let i = 0; i < s.length; i++) {
			const c = s[i] as string;
			if (c !== "\\") bytes.push(c.charCodeAt(0));
			else if (s[i + 1] === "x") {
				bytes.push(Number.parseInt(s.slice(i + 2, i + 4), 16));
				i += 3;
			} else {
				const e = s[++i] as string;
				bytes.push(esc[e] ?? e.charCodeAt(0));
			}
		}
		return Buffer.from(bytes);
	});
}

/** An entry's fields as [name, value] pairs (text names, byte values), read with redis-cli. */
function entries(stream: string): { id: string; fields: [string, Buffer][] }[] {
	// Entry ids open the top-level items ("1) 1) "…-0"" at the start of a line).
	const ids = [
		...redisCli(`XRANGE ${stream} - +\n`).matchAll(/^\d+\) 1\) "(\d+-\d+)"$/gm),
	].map((m) => m[1] as string);
	return ids.map((id) => {
		const t = tokens(redisCli(`XRANGE ${stream} ${id} ${id}\n`)).slice(1);
		const fields: [string, Buffer][] = [];
		for (let i = 0; i + 1 < t.length; i += 2)
			fields.push([(t[i] as Buffer).toString(), t[i + 1] as Buffer]);
		return { id, fields };
	});
}

describe("Redis byte for byte, written and read by redis-cli", () => {
	it("binary keys and fields, repeated fields in order, tombstones and dead letters keep every byte; event time is carried", async () => {
		const [input, output, dlq] = ["bin-in", "bin-out", "bin-dlq"];
		const iris = JSON.stringify(golden("iris-logreg").records[0]).replaceAll(
			'"',
			'\\"',
		);
		redisCli(
			[
				`XADD ${input} * value "${iris}" key "\\xff\\x01" hop a hop b bin "\\x00\\xff\\x80"`,
				`XADD ${input} * value "\\x00\\x80\\xffx" key k2 bin "\\xfe"`,
				`XADD ${input} * key "\\xfe" hop t`,
				"",
			].join("\n"),
		);
		const ins = entries(input);
		assert.equal(ins.length, 3);
		await streamUntil(
			{
				model: bundleDir("iris-logreg"),
				from: `${redis.url}/${input}`,
				to: `${redis.url}/${output}`,
				dlq: `${redis.url}/${dlq}`,
				group: "bytes",
			},
			() => entries(output).length >= 2 && entries(dlq).length >= 1,
		);
		const [result, tomb] = entries(output);
		const msOf = (id: string) => Buffer.from(id.split("-")[0] as string);
		assert.ok(result && tomb, "a result and a tombstone");
		assert.deepEqual(
			result.fields.slice(1, 5),
			[
				["key", Buffer.from([0xff, 0x01])],
				["hop", Buffer.from("a")],
				["hop", Buffer.from("b")],
				["bin", Buffer.from([0x00, 0xff, 0x80])],
			],
			"key and fields byte for byte, repeats in order",
		);
		assert.equal(result.fields[0]?.[0], "value");
		assert.match(String(result.fields[0]?.[1]), /setosa/);
		assert.deepEqual(result.fields.at(-1), [
			"mlship-timestamp",
			msOf(ins[0]?.id ?? ""),
		]);
		assert.deepEqual(
			tomb.fields,
			[
				["key", Buffer.from([0xfe])],
				["hop", Buffer.from("t")],
				["mlship-timestamp", msOf(ins[2]?.id ?? "")],
			],
			"a tombstone: no value field, the same key",
		);
		const [dead] = entries(dlq);
		assert.ok(dead);
		assert.deepEqual(dead.fields.slice(0, 3), [
			["value", Buffer.from([0x00, 0x80, 0xff, 0x78])],
			["key", Buffer.from("k2")],
			["bin", Buffer.from([0xfe])],
		]);
		const h = new Map(dead.fields.map(([k, v]) => [k, v.toString()]));
		assert.equal(h.get("__connect.errors.topic"), input);
		assert.equal(h.get("__connect.errors.offset"), ins[1]?.id);
		assert.equal(
			h.get("__connect.errors.exception.class.name"),
			"MLSHIP_INVALID_INPUT",
		);
	});
});
