// Triton's binary tensor data extension: raw little-endian tensor bytes ↔ typed tensor data.
import { endianness } from "node:os";
import {
	allocate,
	DATATYPE_INFO,
	type Datatype,
	type TensorData,
} from "../../protocol/datatypes.ts";
import { invalidInput } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";

// Typed arrays are viewed and copied byte for byte, which is only the wire format on little-endian hosts.
if (endianness() !== "LE")
	throw new Error(
		"the binary tensor data extension needs a little-endian host",
	);

/**
 * Decodes the raw bytes of one input (`bytes` is exactly its `binary_data_size`) into tensor data with `n`
 * elements. Fixed-size datatypes need n × size bytes; BYTES elements are a 4-byte little-endian length then
 * the bytes (read as UTF-8); BOOL bytes must be 0 or 1. Errors name the input and say what was expected.
 */
export function dataFromBytes(
	name: string,
	datatype: Datatype,
	shape: readonly number[],
	n: number,
	bytes: Uint8Array,
): TensorData {
	const where = `input '${name}'`;
	const info = DATATYPE_INFO[datatype];
	if (info.array === null) {
		// Every BYTES element carries a 4-byte length, so the bytes present bound the element count: check that
		// before allocating anything from a shape the client chose.
		if (n * 4 > bytes.length)
			throw invalidInput(
				`${where}: shape ${JSON.stringify(shape)} of BYTES needs at least 4 bytes per element (${n} × 4), but binary_data_size is ${bytes.length}`,
			);
		return bytesElements(where, n, bytes);
	}
	const want = n * info.size;
	if (bytes.length !== want)
		throw invalidInput(
			`${where}: binary_data_size is ${bytes.length} bytes but shape ${JSON.stringify(shape)} of ${datatype} needs ${n} × ${info.size} = ${want} bytes`,
		);
	const out = allocate(datatype, n) as Exclude<TensorData, string[]>;
	// One copy into a fresh buffer: a view into the body may sit at an unaligned offset (not allowed for wider
	// types) and may share a pooled ArrayBuffer, which must never be transferred to a worker thread.
	new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
	if (info.kind === "bool")
		for (let i = 0; i < n; i++) {
			const b = bytes[i] as number;
			if (b > 1)
				throw invalidInput(
					`${where}: BOOL element ${i} is the byte ${b} (expected 0 or 1)`,
				);
		}
	return out;
}

/** Decodes `n` length-prefixed BYTES elements; the caller has checked that `n × 4` bytes are present. */
function bytesElements(where: string, n: number, bytes: Uint8Array): string[] {
	const out = new Array<string>(n);
	const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
	const text = new TextDecoder();
	let pos = 0;
	let i = 0;
	while (pos < bytes.length) {
		if (i >= n)
			throw invalidInput(
				`${where}: binary BYTES data holds more than the ${n} elements its shape needs`,
			);
		if (pos + 4 > bytes.length)
			throw invalidInput(
				`${where}: BYTES element ${i}: ${bytes.length - pos} bytes left, too few for its 4-byte length`,
			);
		const len = view.getUint32(pos, true);
		pos += 4;
		if (pos + len > bytes.length)
			throw invalidInput(
				`${where}: BYTES element ${i} says ${len} bytes but only ${bytes.length - pos} remain`,
			);
		out[i++] = text.decode(bytes.subarray(pos, pos + len));
		pos += len;
	}
	if (i !== n)
		throw invalidInput(
			`${where}: binary BYTES data holds ${i} elements but its shape needs ${n}`,
		);
	return out;
}

/** The raw bytes of a tensor (a view, not a copy, for typed arrays). */
export function tensorBytes(t: Tensor): Uint8Array {
	const d = t.data;
	if (!Array.isArray(d))
		return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
	const enc = new TextEncoder();
	const parts = d.map((s) => enc.encode(s));
	let total = 0;
	for (const p of parts) total += 4 + p.length;
	const out = new Uint8Array(total);
	const view = new DataView(out.buffer);
	let pos = 0;
	for (const p of parts) {
		view.setUint32(pos, p.length, true);
		out.set(p, pos + 4);
		pos += 4 + p.length;
	}
	return out;
}
