// The decode thread's scanner reads uniform numeric records without JSON.parse: whatever it accepts must be exactly
// what JSON.parse reads (same keys, same doubles, -0 included), and anything else must go to JSON.parse (null).
import assert from "node:assert/strict";
import { it } from "node:test";
import {
	type Parsed,
	parseRecords,
	scanRecords,
} from "../../src/stream/scan.ts";
import { golden } from "../helpers/fixtures.ts";
import { prng as rng } from "../helpers/random.ts";

/** Columns by name, for comparing two readers (key order may differ: JSON.parse puts integer-like keys first). */
function byName(p: Parsed): Map<string, unknown[]> {
	const m = new Map<string, unknown[]>();
	p.keys.forEach((k, c) => {
		m.set(
			k,
			p.other[c] ?? Array.from(p.numbers.subarray(c * p.n, (c + 1) * p.n)),
		);
	});
	return m;
}

function assertSame(text: string, scanned: Parsed): void {
	// Accepted by the scanner: valid JSON that JSON.parse reads to the same columns, value for value.
	assert.doesNotThrow(
		() => JSON.parse(text),
		`scanner accepted invalid JSON: ${text}`,
	);
	const parsed = parseRecords(text);
	assert.ok(parsed, `scanner accepted what JSON.parse's path refuses: ${text}`);
	assert.equal(scanned.n, parsed.n, text);
	assert.equal(scanned.bodyId, parsed.bodyId, text);
	const a = byName(scanned);
	const b = byName(parsed);
	assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), text);
	for (const [k, vs] of a) {
		const ws = b.get(k) as unknown[];
		for (let r = 0; r < vs.length; r++)
			assert.ok(
				Object.is(vs[r], ws[r]),
				`${k}[${r}]: ${vs[r]} vs ${ws[r]} in ${text}`,
			);
	}
}

const bytes = (s: string) => Buffer.from(s, "utf8");

it("reads the breast_cancer records as JSON.parse does", () => {
	const records = golden("breast-cancer-gbdt").records as object[];
	const text = JSON.stringify(records);
	const s = scanRecords(bytes(text));
	assert.ok(s, "the scanner took the golden records");
	assert.equal(s.n, records.length);
	assertSame(text, s);
	// Pretty-printed (JSON's whitespace everywhere) reads the same.
	const pretty = JSON.stringify(records, null, "\t").replaceAll("\n", "\r\n");
	const p = scanRecords(bytes(` \n${pretty}\n `));
	assert.ok(p, "the scanner took pretty-printed records");
	assertSame(pretty, p);
});

it("numbers come out as JSON.parse's doubles, in every notation", () => {
	const r = rng(17);
	const forms = [
		(x: number) => String(x),
		(x: number) => x.toExponential(Math.floor(r() * 20)),
		(x: number) => x.toFixed(Math.floor(r() * 20)),
		(x: number) => x.toPrecision(1 + Math.floor(r() * 21)),
		(x: number) => x.toExponential(Math.floor(r() * 20)).toUpperCase(),
		(x: number) => x.toExponential(Math.floor(r() * 20)).replace("e+", "e"),
	];
	const special = [
		"0",
		"-0",
		"0.0",
		"-0.0e5",
		"1e400",
		"-1e400",
		"1e-400",
		"4.9e-324",
		"2.2250738585072014e-308",
		"1.7976931348623157e308",
		"9007199254740993",
		"123456789012345678901234567890",
		"0.1000000000000000055511151231257827",
		"1e22",
		"1e23",
		"8.5e-23",
		"999999999999999.9",
		"0.000000000000000000000000001",
		"1E+2",
		"1e0000000000000000000000000001",
	];
	let checked = 0;
	const check = (t: string) => {
		const text = `[{"x":${t}}]`;
		const s = scanRecords(bytes(text));
		assert.ok(s, `scanner refused the number ${t}`);
		assert.ok(
			Object.is(s.numbers[0], JSON.parse(text)[0].x),
			`${t}: ${s.numbers[0]} vs ${JSON.parse(text)[0].x}`,
		);
		checked++;
	};
	for (const t of special) check(t);
	for (let i = 0; i < 30_000; i++) {
		// Doubles of every scale, and short decimals (the common case: data written with a few digits).
		const x =
			i % 3 === 0
				? (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20)
				: i % 3 === 1
					? (new Float64Array(
							new BigUint64Array([
								BigInt(Math.floor(r() * 2 ** 32)) * 2n ** 32n +
									BigInt(Math.floor(r() * 2 ** 32)),
							]).buffer,
						)[0] as number)
					: Math.round(r() * 10 ** Math.floor(r() * 8)) /
						10 ** Math.floor(r() * 8);
		if (!Number.isFinite(x)) continue;
		const form = forms[i % forms.length] as (x: number) => string;
		let t: string;
		try {
			t = form(x);
		} catch {
			continue;
		}
		check(t);
	}
	assert.ok(checked > 25_000, `checked ${checked} numbers`);
});

/** A random payload of records, then (sometimes) broken in a random way. */
function payload(r: () => number): string {
	const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
	const ws = () => pick(["", "", "", " ", "\n", "\t", "\r\n  "]);
	const nkeys = 1 + Math.floor(r() * 5);
	const keys = Array.from({ length: nkeys }, (_, i) =>
		r() < 0.05
			? pick([`é${i}`, `a\\"${i}`, `q${i}\\n`])
			: pick([`f${i}`, `k${i}`, `${i}`, `x_${i}`]),
	);
	const num = () =>
		pick([
			String(Math.floor(r() * 1000)),
			String((r() - 0.5) * 1e6),
			(r() * 1e-5).toExponential(5),
			"-0",
			"0.5",
			"12345678901234567890",
		]);
	const rows = 1 + Math.floor(r() * 6);
	let text = `${ws()}[`;
	for (let i = 0; i < rows; i++) {
		const order = r() < 0.1 ? [...keys].reverse() : keys;
		const parts = order.map(
			(k) =>
				`${ws()}"${k}"${ws()}:${ws()}${r() < 0.03 ? pick(['"s"', "null", "true", "[1]", "{}"]) : num()}${ws()}`,
		);
		if (r() < 0.03) parts.pop();
		if (r() < 0.03) parts.push(`"extra":1`);
		if (r() < 0.03) parts.push(`"${keys[0]}":2`);
		text += `${i > 0 ? `,${ws()}` : ""}{${parts.join(",")}}${ws()}`;
	}
	text += `]${ws()}`;
	if (r() < 0.05) text = `{"records":${text}}`;
	// Breakage: a byte removed, one inserted, a tail cut off, garbage after the end.
	const m = r();
	if (m < 0.25) {
		const at = Math.floor(r() * text.length);
		const what = pick([
			"",
			",",
			"]",
			"}",
			"{",
			'"',
			":",
			"-",
			".",
			"e",
			"0",
			"x",
			" ",
			"\\",
			"\u0000",
			"ü",
		]);
		text =
			r() < 0.5
				? text.slice(0, at) + text.slice(at + 1)
				: text.slice(0, at) + what + text.slice(at);
	} else if (m < 0.3) text = text.slice(0, Math.floor(r() * text.length));
	else if (m < 0.33) text += pick(["x", "[]", ",", "0"]);
	return text;
}

it("fuzz: what the scanner accepts is what JSON.parse reads; the rest goes to JSON.parse", () => {
	const r = rng(2026);
	let accepted = 0;
	let refused = 0;
	for (let i = 0; i < 20_000; i++) {
		const text = payload(r);
		const s = scanRecords(bytes(text));
		if (s === null) {
			refused++;
			continue;
		}
		accepted++;
		assertSame(text, s);
	}
	// Both ways taken many times: a scanner that refused everything (or took everything) would fail here.
	assert.ok(accepted > 3_000, `accepted ${accepted}`);
	assert.ok(refused > 3_000, `refused ${refused}`);
});

it("refuses what only JSON.parse's path may read, and what is not JSON", () => {
	for (const text of [
		"[]",
		"[{}]",
		'{"records":[{"a":1}]}',
		'[{"a":1},{"b":1}]',
		'[{"a":1,"b":2},{"b":2,"a":1}]',
		'[{"a":1,"a":2}]',
		'[{"__proto__":1}]',
		'[{"a":"1"}]',
		'[{"a":null}]',
		'[{"a\\u0062":1}]',
		'[{"é":1}]',
		'\uFEFF[{"a":1}]',
		'[{"a":01}]',
		'[{"a":1.}]',
		'[{"a":.5}]',
		'[{"a":+1}]',
		'[{"a":1e}]',
		'[{"a":-}]',
		'[{"a":NaN}]',
		'[{"a":Infinity}]',
		'[{"a":0x10}]',
		'[{"a":1,}]',
		'[{"a":1},]',
		'[{"a":1}',
		'[{"a":1}] x',
		'[{"a":1}][]',
		'[{"a":1\u00a0}]',
	])
		assert.equal(scanRecords(bytes(text)), null, text);
});

// Quadratic duplicate checks took minutes here; the generous timeout only turns such a hang into a failure.
it("a first record of 200,000 keys is read in linear time (a repeated key at its end still sends it to JSON.parse)", {
	timeout: 120_000,
}, () => {
	const n = 200_000;
	const keys = Array.from({ length: n }, (_, i) => `"k${i}":${i % 7}`);
	const text = `[{${keys.join(",")}}]`;
	const s = scanRecords(bytes(text));
	assert.ok(s);
	assert.equal(s.keys.length, n);
	assert.equal(s.numbers[n - 1], (n - 1) % 7);
	assert.equal(scanRecords(bytes(`[{${keys.join(",")},"k0":1}]`)), null);
});
