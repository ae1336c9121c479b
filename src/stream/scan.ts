// Reading a JSON payload of uniform records into columns, for the stream's decode thread (decode-worker.ts).
//
// Two readers with one answer: `scanRecords` reads the bytes of the common case (a list of records whose values are
// all numbers, every record with the first one's keys in the same order) straight into a Float64Array, building no
// objects; anything else it does not fully check — a string, null, an escape in a key, a reordered or repeated key,
// a byte outside ASCII, a body that is not a list — makes it answer null, and `parseRecords` (JSON.parse) reads the
// payload. Either may answer null in turn: the main thread then decodes the payload itself, so error texts and
// edge cases stay the main path's (`decodeRequest`). test/stream/scan.test.ts fuzzes the scanner against JSON.parse.

/** Columns of one payload: numbers column-major in `numbers` (n per key), a column with other values in `other`. */
export interface Parsed {
	keys: string[];
	n: number;
	bodyId: string | undefined;
	numbers: Float64Array;
	/** Per key: its values when not all are numbers (then its part of `numbers` is unused). */
	other: (unknown[] | undefined)[];
}

/** The records of a body the decode thread handles: a list, or `{"records"|"instances": [...], "id"?}`; else null. */
function recordsOf(
	body: unknown,
): { rows: unknown[]; bodyId: string | undefined } | null {
	if (Array.isArray(body)) return { rows: body, bodyId: undefined };
	if (body === null || typeof body !== "object") return null;
	const obj = body as Record<string, unknown>;
	if ("inputs" in obj) return null;
	const bodyId =
		typeof obj.id === "string" || typeof obj.id === "number"
			? String(obj.id)
			: undefined;
	for (const field of ["records", "instances"])
		if (field in obj) {
			const rows = obj[field];
			return Array.isArray(rows) ? { rows, bodyId } : null;
		}
	return null;
}

/** JSON.parse, then columns of uniform records (null: anything else, for the main path). */
export function parseRecords(text: string): Parsed | null {
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		return null;
	}
	const got = recordsOf(body);
	if (got === null || got.rows.length === 0) return null;
	const { rows, bodyId } = got;
	const first = rows[0];
	if (first === null || typeof first !== "object" || Array.isArray(first))
		return null;
	const keys = Object.keys(first);
	// A key that would set an object's prototype when copied: the main path reads such records.
	if (keys.includes("__proto__")) return null;
	const n = rows.length;
	const k = keys.length;
	const numbers = new Float64Array(n * k);
	const other: (unknown[] | undefined)[] = new Array(k).fill(undefined);
	for (let r = 0; r < n; r++) {
		const row = rows[r];
		if (row === null || typeof row !== "object" || Array.isArray(row))
			return null;
		// Same keys as the first record, or the main path decides (missing keys, extra keys: its own messages).
		let count = 0;
		for (const _ in row) count++;
		if (count !== k) return null;
		for (let c = 0; c < k; c++) {
			const key = keys[c] as string;
			if (!Object.hasOwn(row, key)) return null;
			const v = (row as Record<string, unknown>)[key];
			const o = other[c];
			if (o !== undefined) o[r] = v;
			else if (typeof v === "number") numbers[c * n + r] = v;
			else {
				// The first value that is not a number: the column goes as a plain list.
				const list: unknown[] = Array.from(numbers.subarray(c * n, c * n + r));
				list[r] = v;
				other[c] = list;
			}
		}
	}
	return { keys, n, bodyId, numbers, other };
}

// Byte values the scanner looks at.
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** Powers of ten that a double holds exactly (10^0 … 10^22): the fast path's products and quotients round once. */
const EXACT_POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
/** Significant digits that always fit a double exactly (10^15 < 2^53). */
const MAX_EXACT_DIGITS = 15;

// The scanner's helpers take and return positions (a position shared through a closure would live in a heap
// context and cost a memory access per byte); `numberEnd` is where the last number read ended.
let numberEnd = 0;

/** The position of the first byte at or after `i` that is not JSON whitespace. */
function skipSpace(b: Uint8Array, i: number, len: number): number {
	while (i < len) {
		const c = b[i] as number;
		if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
		i++;
	}
	return i;
}

/** The JSON number at `i` (numberEnd: the position after it), or NaN when the text there is not a JSON number. */
function readNumber(b: Uint8Array, i: number, len: number): number {
	const start = i;
	let neg = false;
	if (i < len && b[i] === MINUS) {
		neg = true;
		i++;
	}
	let mant = 0;
	let digits = 0;
	let exp = 0;
	let exact = true;
	let c = i < len ? (b[i] as number) : -1;
	if (c === ZERO) {
		i++;
		c = i < len ? (b[i] as number) : -1;
	} else if (c > ZERO && c <= NINE) {
		do {
			if (digits < MAX_EXACT_DIGITS) mant = mant * 10 + (c - ZERO);
			else exact = false;
			digits++;
			i++;
			c = i < len ? (b[i] as number) : -1;
		} while (c >= ZERO && c <= NINE);
	} else return Number.NaN;
	if (c === DOT) {
		i++;
		c = i < len ? (b[i] as number) : -1;
		if (c < ZERO || c > NINE) return Number.NaN;
		do {
			// Leading zeros of the fraction (0.000123) are not significant digits.
			if (digits === 0 && c === ZERO) exp--;
			else if (digits < MAX_EXACT_DIGITS) {
				mant = mant * 10 + (c - ZERO);
				digits++;
				exp--;
			} else exact = false;
			i++;
			c = i < len ? (b[i] as number) : -1;
		} while (c >= ZERO && c <= NINE);
	}
	if (c === LOWER_E || c === UPPER_E) {
		i++;
		c = i < len ? (b[i] as number) : -1;
		let eneg = false;
		if (c === MINUS || c === PLUS) {
			eneg = c === MINUS;
			i++;
			c = i < len ? (b[i] as number) : -1;
		}
		if (c < ZERO || c > NINE) return Number.NaN;
		let e = 0;
		do {
			// Past 9,999 the value is 0 or Infinity either way: Number() below says which.
			if (e < 10_000) e = e * 10 + (c - ZERO);
			else exact = false;
			i++;
			c = i < len ? (b[i] as number) : -1;
		} while (c >= ZERO && c <= NINE);
		exp += eneg ? -e : e;
	}
	numberEnd = i;
	if (exact && exp >= -22 && exp <= 22) {
		// Both operands exact: IEEE rounds the one operation correctly, as JSON.parse rounds the decimal.
		const v =
			exp < 0
				? mant / (EXACT_POW10[-exp] as number)
				: mant * (EXACT_POW10[exp] as number);
		return neg ? -v : v;
	}
	// Too many digits, or an exponent beyond the exact powers: the number's own text, as JSON.parse reads it.
	let text = "";
	for (let j = start; j < i; j++) text += String.fromCharCode(b[j] as number);
	return Number(text);
}

/** The position of the closing quote of the key whose text starts at `i`, or -1 for anything but plain ASCII. */
function keyEnd(b: Uint8Array, i: number, len: number): number {
	while (i < len) {
		const c = b[i] as number;
		if (c === QUOTE) return i;
		// An escape, a control character or a byte outside ASCII: JSON.parse reads it.
		if (c === BACKSLASH || c < SPACE || c > 0x7e) return -1;
		i++;
	}
	return -1;
}

/**
 * Reads `[{"a": 1, "b": 2.5}, ...]` — every value a JSON number, every record with the first record's keys in the
 * same order, keys plain ASCII without escapes, no duplicate key, not `__proto__` — into columns without building
 * the records. Null for anything else (including what JSON.parse would refuse): `parseRecords` then reads it.
 * Numbers are JSON.parse's doubles: up to 15 significant digits and an exponent within ±22 by one correctly rounded
 * operation (Clinger's fast path), the rest by `Number` on the number's own text.
 */
export function scanRecords(b: Uint8Array): Parsed | null {
	const len = b.length;
	let i = skipSpace(b, 0, len);
	if (i >= len || b[i] !== OPEN_LIST) return null;
	i++;
	// The first record's keys: where their bytes are, and their text.
	const keyStart: number[] = [];
	const keyStop: number[] = [];
	const keys: string[] = [];
	// Seen keys by name: a hostile first record of 100,000 keys stays linear.
	const seen = new Set<string>();
	// First record: its keys and values, as many as it has.
	i = skipSpace(b, i, len);
	if (i >= len || b[i] !== OPEN_OBJECT) return null;
	i = skipSpace(b, i + 1, len);
	const first: number[] = [];
	for (;;) {
		if (i >= len || b[i] !== QUOTE) return null;
		const ks = i + 1;
		const ke = keyEnd(b, ks, len);
		if (ke < 0) return null;
		let name = "";
		for (let j = ks; j < ke; j++) name += String.fromCharCode(b[j] as number);
		// A repeated key (JSON.parse keeps the last) or one that sets a prototype when copied.
		if (name === "__proto__" || seen.has(name)) return null;
		seen.add(name);
		keys.push(name);
		keyStart.push(ks);
		keyStop.push(ke);
		i = skipSpace(b, ke + 1, len);
		if (i >= len || b[i] !== COLON) return null;
		i = skipSpace(b, i + 1, len);
		const v = readNumber(b, i, len);
		if (Number.isNaN(v)) return null;
		first.push(v);
		i = skipSpace(b, numberEnd, len);
		const sep = i < len ? b[i] : -1;
		i++;
		if (sep === CLOSE_OBJECT) break;
		if (sep !== COMMA) return null;
		i = skipSpace(b, i, len);
	}
	const k = keys.length;
	const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
	// Room for about as many records as the payload's size allows at the first record's length.
	let row = new Float64Array(Math.max(1, Math.ceil(len / i)) * k + k);
	row.set(first);
	let n = 1;
	for (;;) {
		i = skipSpace(b, i, len);
		const sep = i < len ? b[i] : -1;
		i++;
		if (sep === CLOSE_LIST) break;
		if (sep !== COMMA) return null;
		if ((n + 1) * k > row.length) {
			const grown = new Float64Array(row.length * 2);
			grown.set(row);
			row = grown;
		}
		i = skipSpace(b, i, len);
		if (i >= len || b[i] !== OPEN_OBJECT) return null;
		i = skipSpace(b, i + 1, len);
		const base = n * k;
		for (let c = 0; ; ) {
			// The first record's key c, byte for byte, then its closing quote.
			const fs = keyStart[c] as number;
			const fl = (keyStop[c] as number) - fs;
			if (i + fl + 2 > len || b[i] !== QUOTE) return null;
			i++;
			// Four bytes at a time, then the rest.
			let j = 0;
			for (; j + 4 <= fl; j += 4)
				if (view.getUint32(i + j) !== view.getUint32(fs + j)) return null;
			for (; j < fl; j++) if (b[i + j] !== b[fs + j]) return null;
			i += fl;
			if (b[i] !== QUOTE) return null;
			i = skipSpace(b, i + 1, len);
			if (i >= len || b[i] !== COLON) return null;
			i = skipSpace(b, i + 1, len);
			const v = readNumber(b, i, len);
			if (Number.isNaN(v)) return null;
			row[base + c] = v;
			c++;
			i = skipSpace(b, numberEnd, len);
			const end = i < len ? b[i] : -1;
			i++;
			if (c === k) {
				if (end !== CLOSE_OBJECT) return null;
				break;
			}
			if (end !== COMMA) return null;
			i = skipSpace(b, i, len);
		}
		n++;
	}
	if (skipSpace(b, i, len) !== len) return null;
	// Row-major as read; the decode thread's reply is column-major.
	const numbers = new Float64Array(n * k);
	for (let c = 0; c < k; c++) {
		const base = c * n;
		for (let r = 0; r < n; r++) numbers[base + r] = row[r * k + c] as number;
	}
	return {
		keys,
		n,
		bodyId: undefined,
		numbers,
		other: new Array(k).fill(undefined),
	};
}
