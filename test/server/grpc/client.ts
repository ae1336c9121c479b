// Test client for the gRPC server: built with @grpc/grpc-js from the same vendored proto, plus tensor helpers
// written independently of src/server/grpc/convert.ts so encoder and decoder bugs cannot cancel out.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { PROTO_FILE } from "../../../src/server/grpc/proto.ts";

const definition = loadSync(PROTO_FILE, {
	keepCase: true,
	longs: String,
	enums: String,
	defaults: true,
	oneofs: true,
});
const ClientCtor = (
	grpc.loadPackageDefinition(definition) as unknown as {
		inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
	}
).inference.GRPCInferenceService;

type Unary = (
	req: object,
	meta: grpc.Metadata,
	opts: grpc.CallOptions,
	cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

// Loose message shapes: what proto-loader decodes (int64 as strings, bytes as Buffer).
export interface Contents {
	bool_contents: boolean[];
	int_contents: number[];
	int64_contents: string[];
	uint_contents: number[];
	uint64_contents: string[];
	fp32_contents: number[];
	fp64_contents: number[];
	bytes_contents: Buffer[];
}
export interface OutTensor {
	name: string;
	datatype: string;
	shape: string[];
	parameters: Record<string, Record<string, unknown>>;
	contents: Contents | null;
}
export interface InferResponse {
	model_name: string;
	model_version: string;
	id: string;
	parameters: Record<string, Record<string, unknown>>;
	outputs: OutTensor[];
	raw_output_contents: Buffer[];
}

/** A client of inference.GRPCInferenceService on 127.0.0.1:port. */
export class InferenceClient {
	readonly client: grpc.Client;

	/** `credentials`: plaintext by default; grpc.credentials.createSsl(...) for a TLS server. */
	constructor(
		port: number,
		credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
	) {
		this.client = new ClientCtor(`127.0.0.1:${port}`, credentials, {
			"grpc.max_receive_message_length": -1,
			"grpc.max_send_message_length": -1,
		});
	}

	/** Calls a unary RPC by name; rejects with the grpc.ServiceError. */
	call<T = Record<string, unknown>>(
		method: string,
		req: object = {},
		opts: grpc.CallOptions = {},
		metadata: Record<string, string> = {},
	): Promise<T> {
		const fn = (this.client as unknown as Record<string, Unary>)[method];
		assert.ok(fn, `no RPC ${method}`);
		const meta = new grpc.Metadata();
		for (const [k, v] of Object.entries(metadata)) meta.set(k, v);
		return new Promise((resolve, reject) => {
			fn.call(this.client, req, meta, opts, (err, res) =>
				err ? reject(err) : resolve(res as T),
			);
		});
	}

	infer(
		req: object,
		opts?: grpc.CallOptions,
		metadata?: Record<string, string>,
	): Promise<InferResponse> {
		return this.call<InferResponse>("ModelInfer", req, opts, metadata);
	}

	/** Opens the bidirectional ModelStreamInfer stream. */
	stream(): grpc.ClientDuplexStream<object, Record<string, unknown>> {
		return (
			this.client as unknown as Record<
				string,
				() => grpc.ClientDuplexStream<object, Record<string, unknown>>
			>
		).ModelStreamInfer?.call(this.client) as grpc.ClientDuplexStream<
			object,
			Record<string, unknown>
		>;
	}

	close(): void {
		this.client.close();
	}
}

/** Asserts that a call fails with `code` (and details matching `details`). */
export async function rejectsWith(
	p: Promise<unknown>,
	code: grpc.status,
	details?: RegExp,
): Promise<grpc.ServiceError> {
	let caught: grpc.ServiceError | undefined;
	await assert.rejects(p, (err: grpc.ServiceError) => {
		caught = err;
		return true;
	});
	const err = caught as grpc.ServiceError;
	assert.equal(
		err.code,
		code,
		`expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`,
	);
	if (details) assert.match(err.details, details);
	return err;
}

/** Datatype → the InferTensorContents field that carries it (FP16 has none). */
export const FIELD: Record<string, keyof Contents | undefined> = {
	BOOL: "bool_contents",
	INT8: "int_contents",
	INT16: "int_contents",
	INT32: "int_contents",
	INT64: "int64_contents",
	UINT8: "uint_contents",
	UINT16: "uint_contents",
	UINT32: "uint_contents",
	UINT64: "uint64_contents",
	FP16: undefined,
	FP32: "fp32_contents",
	FP64: "fp64_contents",
	BYTES: "bytes_contents",
};

const VIEW: Record<
	string,
	| Uint8ArrayConstructor
	| Int8ArrayConstructor
	| Int16ArrayConstructor
	| Uint16ArrayConstructor
	| Int32ArrayConstructor
	| Uint32ArrayConstructor
	| Float32ArrayConstructor
	| Float64ArrayConstructor
	| BigInt64ArrayConstructor
	| BigUint64ArrayConstructor
> = {
	BOOL: Uint8Array,
	INT8: Int8Array,
	INT16: Int16Array,
	INT32: Int32Array,
	INT64: BigInt64Array,
	UINT8: Uint8Array,
	UINT16: Uint16Array,
	UINT32: Uint32Array,
	UINT64: BigUint64Array,
	FP16: Uint16Array,
	FP32: Float32Array,
	FP64: Float64Array,
};

/** Raw little-endian bytes of values (BYTES: 4-byte LE length + bytes each). This machine is little-endian. */
export function toRaw(datatype: string, values: ArrayLike<unknown>): Buffer {
	if (datatype === "BYTES") {
		const parts: Buffer[] = [];
		for (const v of Array.from(values)) {
			const b = Buffer.from(v as string, "utf8");
			const len = Buffer.alloc(4);
			len.writeUInt32LE(b.length);
			parts.push(len, b);
		}
		return Buffer.concat(parts);
	}
	const Ctor = VIEW[datatype];
	assert.ok(Ctor, datatype);
	const arr = (Ctor as Float64ArrayConstructor).from(
		values as ArrayLike<number>,
	);
	return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
}

/** Decodes raw little-endian bytes into values (INT64/UINT64 as bigint, BYTES as strings, BOOL as 0/1). */
export function fromRaw(datatype: string, raw: Buffer): unknown[] {
	if (datatype === "BYTES") {
		const out: string[] = [];
		for (let off = 0; off < raw.length; ) {
			const len = raw.readUInt32LE(off);
			out.push(raw.toString("utf8", off + 4, off + 4 + len));
			off += 4 + len;
		}
		return out;
	}
	const Ctor = VIEW[datatype] as Float64ArrayConstructor;
	const copy = new Uint8Array(raw); // aligned copy
	return Array.from(
		new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT),
	);
}

/** Values as typed contents for `datatype`. */
export function toContents(
	datatype: string,
	values: ArrayLike<unknown>,
): Partial<Contents> {
	const field = FIELD[datatype];
	assert.ok(field, `${datatype} has no contents field`);
	const list = Array.from(values);
	if (datatype === "BYTES")
		return { bytes_contents: list.map((v) => Buffer.from(String(v))) };
	if (datatype === "BOOL") return { bool_contents: list.map((v) => v === 1) };
	if (datatype === "INT64" || datatype === "UINT64")
		return { [field]: list.map((v) => String(v)) };
	return { [field]: list };
}

/** The values of output `i` of a response, from raw_output_contents or typed contents. */
export function outputValues(res: InferResponse, i: number): unknown[] {
	const t = res.outputs[i] as OutTensor;
	if (res.raw_output_contents.length > 0)
		return fromRaw(t.datatype, res.raw_output_contents[i] as Buffer);
	const field = FIELD[t.datatype] as keyof Contents;
	return t.contents?.[field] ?? [];
}
