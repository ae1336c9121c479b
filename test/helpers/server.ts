// Test helpers: a real REST server on a loopback port, and OIP request bodies (JSON and binary) from fixtures.
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import {
	createDataPlane,
	type DataPlaneOptions,
} from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import {
	DATATYPE_INFO,
	type Datatype,
	halfToFloat,
} from "../../src/protocol/datatypes.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import {
	createRestServer,
	type RestServerOptions,
} from "../../src/server/rest/index.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import {
	resolveSettings,
	type ServerSettingsInput,
} from "../../src/server/settings.ts";
import { bundleDir, golden } from "./fixtures.ts";

export interface RestHarness {
	/** `http://127.0.0.1:<port>` */
	url: string;
	dp: DataPlane;
	close(): Promise<void>;
}

/** Starts a real data plane serving `models` (fixture name → served name) behind the REST server on 127.0.0.1:0. */
export async function startRest(
	models: Record<string, string>,
	opts: RestServerOptions = {},
	dpOpts: Partial<DataPlaneOptions> = {},
): Promise<RestHarness> {
	const dp = await createDataPlane({
		models: Object.entries(models).map(([fixture, name]) => ({
			name,
			source: bundleDir(fixture),
		})),
		processMetrics: false,
		...dpOpts,
	});
	const app = createRestServer(dp, opts);
	await app.listen({ host: "127.0.0.1", port: 0 });
	const addr = app.server.address();
	if (addr === null || typeof addr !== "object") throw new Error("no port");
	return {
		url: `http://127.0.0.1:${addr.port}`,
		dp,
		async close() {
			await app.close();
			await dp.close();
		},
	};
}

/** The golden records of a fixture as input tensors (via the bundle's feature plan). */
export async function goldenTensors(fixture: string): Promise<Tensor[]> {
	const b = await readBundle(bundleDir(fixture));
	const { tensors, errors } = encodeRecords(
		planTable(b.manifest),
		golden(fixture).records,
	);
	if (errors.length > 0) throw new Error(JSON.stringify(errors));
	return tensors;
}

/** Tensor data as plain JSON values (flat). */
export function flatData(t: Tensor): unknown[] {
	const kind = DATATYPE_INFO[t.datatype].kind;
	if (kind === "bigint") return Array.from(t.data as BigInt64Array, Number);
	if (kind === "half") return Array.from(t.data as Uint16Array, halfToFloat);
	if (kind === "bool") return Array.from(t.data as Uint8Array, (x) => x !== 0);
	return Array.from(t.data as ArrayLike<unknown>);
}

/** Flat row-major values nested by `shape` (the other OIP JSON layout). */
export function nest(flat: unknown[], shape: number[]): unknown {
	if (shape.length <= 1) return flat;
	const [rows, ...rest] = shape as [number, ...number[]];
	const width = flat.length / rows;
	return Array.from({ length: rows }, (_, r) =>
		nest(flat.slice(r * width, (r + 1) * width), rest),
	);
}

/** An OIP JSON input object; `nested` lays data out by shape. */
export function jsonInput(t: Tensor, nested = false): Record<string, unknown> {
	const flat = flatData(t);
	return {
		name: t.name,
		datatype: t.datatype,
		shape: t.shape,
		data: nested ? nest(flat, t.shape) : flat,
	};
}

/** Raw little-endian bytes of a tensor as the binary extension sends them. */
export function rawBytes(t: Tensor): Buffer {
	if (Array.isArray(t.data)) {
		const parts: Buffer[] = [];
		for (const s of t.data) {
			const b = Buffer.from(s, "utf8");
			const len = Buffer.alloc(4);
			len.writeUInt32LE(b.length);
			parts.push(len, b);
		}
		return Buffer.concat(parts);
	}
	const d = t.data as Float32Array;
	return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * A binary-extension request body: JSON header (inputs with `binary_data_size`, no data) then the tensors.
 * Returns the body and the value of Inference-Header-Content-Length.
 */
export function binaryBody(
	header: Record<string, unknown>,
	tensors: Tensor[],
): { body: Buffer; headerLength: number } {
	const raws = tensors.map(rawBytes);
	const json = Buffer.from(
		JSON.stringify({
			...header,
			inputs: tensors.map((t, i) => ({
				name: t.name,
				datatype: t.datatype,
				shape: t.shape,
				parameters: { binary_data_size: raws[i]?.length },
			})),
		}),
	);
	return { body: Buffer.concat([json, ...raws]), headerLength: json.length };
}

export interface DecodedOutput {
	name: string;
	datatype: Datatype;
	shape: number[];
	parameters?: Record<string, unknown>;
	data: ArrayLike<unknown>;
}

/**
 * Decodes an infer response body, JSON or binary (JSON header + raw outputs with `binary_data_size`).
 * `binary` lists the outputs that came as raw bytes.
 */
export function decodeInferResponse(
	body: Buffer,
	headerLength: string | null,
): {
	json: Record<string, unknown>;
	outputs: DecodedOutput[];
	binary: string[];
} {
	const end = headerLength === null ? body.length : Number(headerLength);
	const json = JSON.parse(body.toString("utf8", 0, end)) as {
		outputs: DecodedOutput[];
	} & Record<string, unknown>;
	let pos = end;
	const binary: string[] = [];
	const outputs = json.outputs.map((o) => {
		const size = o.parameters?.binary_data_size;
		if (typeof size !== "number") return o;
		binary.push(o.name);
		const bytes = body.subarray(pos, pos + size);
		pos += size;
		return { ...o, data: fromBytes(o.datatype, bytes) };
	});
	if (pos !== body.length)
		throw new Error(`binary response: ${body.length - pos} bytes left over`);
	return { json, outputs, binary };
}

function fromBytes(datatype: Datatype, bytes: Buffer): ArrayLike<unknown> {
	const info = DATATYPE_INFO[datatype];
	if (info.array === null) {
		const out: string[] = [];
		for (let p = 0; p < bytes.length; ) {
			const len = bytes.readUInt32LE(p);
			out.push(bytes.toString("utf8", p + 4, p + 4 + len));
			p += 4 + len;
		}
		return out;
	}
	const copy = new Uint8Array(bytes).buffer;
	return new info.array(copy, 0, bytes.length / info.size);
}

/** POSTs JSON (or raw bytes with the binary header) and returns status, headers and the body bytes. */
export async function post(
	url: string,
	body: unknown,
	headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
	const raw =
		Buffer.isBuffer(body) || typeof body === "string"
			? body
			: JSON.stringify(body);
	const res = await fetch(url, {
		method: "POST",
		headers: { "content-type": "application/json", ...headers },
		body: raw,
	});
	return {
		status: res.status,
		headers: res.headers,
		body: Buffer.from(await res.arrayBuffer()),
	};
}

/** GETs a URL; returns status, headers and the parsed JSON body (or the text when not JSON). */
export async function get(
	url: string,
): Promise<{ status: number; headers: Headers; json: unknown; text: string }> {
	const res = await fetch(url);
	const text = await res.text();
	let json: unknown;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	return { status: res.status, headers: res.headers, json, text };
}

/**
 * Starts the whole server (startServer: REST, gRPC, auth, registry) on loopback ports with silent logs, serving
 * `models` (served name → bundle path), optionally with a registry and other settings; MLSHIP_* env is ignored.
 */
export async function startServing(
	models: Record<string, string>,
	registry?: string,
	extra: Partial<ServerSettingsInput> = {},
): Promise<RunningServer> {
	const { default: pino } = await import("pino");
	return startServer(
		resolveSettings(
			{
				host: "127.0.0.1",
				http_port: 0,
				grpc_port: 0,
				workers: 1,
				log_level: "silent",
				models: Object.entries(models).map(([name, source]) => ({
					name,
					source,
				})),
				...(registry ? { registry } : {}),
				...extra,
			},
			undefined,
			{},
		),
		pino({ level: "silent" }),
	);
}
