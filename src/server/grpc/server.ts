// The OIP v2 gRPC adapter: inference.GRPCInferenceService on @grpc/grpc-js, a thin layer over the DataPlane.
import * as grpc from "@grpc/grpc-js";
import type { DataPlane, InferOptions } from "../../dataplane/types.ts";
import {
	type ErrorCode,
	GRPC_STATUS,
	invalidInput,
	MlshipError,
} from "../../protocol/errors.ts";
import { REQUEST_ID_HEADER, requestIdOf } from "../../protocol/request-id.ts";
import {
	headerValue,
	TRACEPARENT,
	TRACESTATE,
	tracer,
} from "../../protocol/trace.ts";
import type { TensorSpec } from "../../protocol/types.ts";
import type { AuditEntry } from "../../registry/access.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import { grpcNeed } from "../auth/policy.ts";
import { loadByName } from "../model-root.ts";
import {
	type PbInferRequest,
	type PbInferResponse,
	requestFromPb,
	responseToPb,
} from "./convert.ts";
import { inferenceService } from "./proto.ts";

export interface GrpcServerOptions {
	/** Interface to listen on (default 127.0.0.1; "0.0.0.0" or "::" for every interface). */
	host?: string;
	/** Port; 0 picks a free one (read it from the returned `port`). */
	port: number;
	/** Largest message received or sent, in bytes (default 64 MiB); larger ones fail with RESOURCE_EXHAUSTED. */
	maxMessageBytes?: number;
	/** Called with errors answered as INTERNAL (their details never reach clients), e.g. to log them. */
	onInternalError?: (err: unknown, method: string) => void;
	/** Token checks from metadata `authorization` (src/server/auth); without one every RPC is open. */
	auth?: Authenticator;
	/** Records admin actions (load, unload) in the audit log. */
	audit?: (e: AuditEntry) => Promise<void>;
	/** `RepositoryModelLoad` of a name that is not served loads it from here (see loadByName); default: served only. */
	modelRoot?: string;
	/** Listener credentials (default: plaintext); TLS ones from ServerTls.grpcCredentials follow certificate reloads. */
	credentials?: grpc.ServerCredentials;
}

export interface GrpcServer {
	/** The port actually bound. */
	readonly port: number;
	/** Stops the server: graceful (default) stops accepting calls and lets in-flight calls finish. */
	close(graceful?: boolean): Promise<void>;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const INTERNAL_DETAILS = "internal error";

function isMlshipError(err: unknown): err is MlshipError {
	// Duck-typed too, for errors rebuilt after crossing a worker boundary.
	return (
		err instanceof MlshipError ||
		(err instanceof Error &&
			typeof (err as Error & { code?: unknown }).code === "string" &&
			Object.hasOwn(GRPC_STATUS, (err as Error & { code: string }).code))
	);
}

/** Maps any error to a gRPC status through GRPC_STATUS; anything else is INTERNAL with a generic message. */
export function grpcStatusOf(err: unknown): grpc.StatusObject {
	if (isMlshipError(err) && err.code !== "MLSHIP_INTERNAL")
		return {
			code: GRPC_STATUS[err.code as ErrorCode],
			details: err.message,
			metadata: new grpc.Metadata(),
		};
	return {
		code: grpc.status.INTERNAL,
		details: INTERNAL_DETAILS,
		metadata: new grpc.Metadata(),
	};
}

function requireName(value: string | undefined, field: string): string {
	if (!value) throw invalidInput(`${field} is required`);
	return value;
}

function tensorMetadata(t: TensorSpec) {
	return { name: t.name, datatype: t.datatype, shape: t.shape };
}

type DeadlineCall = Pick<
	grpc.ServerUnaryCall<unknown, unknown>,
	"getDeadline" | "metadata"
>;

/** The token id each call was authenticated with. */
const callers = new WeakMap<object, string>();

/** The address of a gRPC peer (`ipv4:10.0.0.7:5123` → `10.0.0.7`), for the audit log. */
function peerAddress(peer: string): string {
	const m = /^(?:ipv4:|ipv6:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
	return m?.[1] ?? peer;
}

/**
 * The request's deadline as a data-plane timeout, so work the client gave up on is not done; and the entity
 * of a per-entity family from metadata `x-mlship-entity`.
 */
function inferOptions(call: DeadlineCall): InferOptions {
	const opts: InferOptions = {
		// A traffic policy's sticky key may be a metadata value (read only when a policy asks for it).
		header: (name) => {
			const v = call.metadata?.get(name)[0];
			return v === undefined ? undefined : String(v);
		},
	};
	const caller = callers.get(call);
	if (caller !== undefined) opts.caller = caller;
	const entity = call.metadata?.get("x-mlship-entity")[0];
	if (entity !== undefined) opts.entity = String(entity);
	const deadline = call.getDeadline();
	const at = deadline instanceof Date ? deadline.getTime() : deadline;
	if (Number.isFinite(at)) opts.timeoutMs = Math.max(0, at - Date.now());
	return opts;
}

interface NameVersion {
	name: string;
	version?: string;
}
interface RepositoryRequest {
	model_name: string;
	parameters?: Record<string, unknown>;
}

/**
 * Starts the OIP gRPC server (`inference.GRPCInferenceService`, plus Triton's repository RPCs and
 * ModelStreamInfer) in front of a data plane. The data plane is not closed by `close()`.
 * @example
 * const grpcServer = await startGrpcServer(dp, { port: 8081 });
 * // ... later
 * await grpcServer.close();
 */
export async function startGrpcServer(
	dp: DataPlane,
	opts: GrpcServerOptions,
): Promise<GrpcServer> {
	const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
	const report = (err: unknown, method: string): void => {
		if (!isMlshipError(err) || GRPC_STATUS[err.code] === grpc.status.INTERNAL)
			opts.onInternalError?.(err, method);
	};

	const auth = opts.auth;
	const audit = opts.audit ?? (async () => {});
	/** Checks the call's token for `method` on `model`; remembers the caller on the call. */
	function authorize(
		method: string,
		call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "metadata" | "getPeer">,
		model: unknown,
	): void {
		if (!auth) return;
		const header = call.metadata.get("authorization")[0];
		const caller = auth.check(
			header === undefined ? undefined : String(header),
			grpcNeed(method),
			typeof model === "string" && model !== "" ? model : undefined,
			peerAddress(call.getPeer()),
		);
		if (caller !== undefined) callers.set(call, caller);
	}
	/** Records an admin RPC with the caller's token id (`anonymous` when let through without one) and address. */
	const auditAdmin = (
		action: string,
		name: string,
		call: grpc.ServerUnaryCall<unknown, unknown>,
	) =>
		audit({
			action,
			target: name,
			detail: { transport: "grpc" },
			actor: callers.get(call) ?? "anonymous",
			source: peerAddress(call.getPeer()),
		});
	const modelOf = (req: unknown): unknown => {
		const r = req as { name?: unknown; model_name?: unknown } | null;
		return r?.model_name ?? r?.name;
	};

	function unary<Req, Res>(
		method: string,
		fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
	): grpc.handleUnaryCall<Req, Res> {
		return (call, callback) => {
			new Promise<Res>((resolve) => {
				authorize(method, call, modelOf(call.request));
				resolve(fn(call.request, call));
			}).then(
				(res) => callback(null, res),
				(err: unknown) => {
					report(err, method);
					callback(grpcStatusOf(err));
				},
			);
		};
	}

	async function infer(
		req: PbInferRequest,
		call: DeadlineCall,
	): Promise<PbInferResponse> {
		// One check when tracing is off; on, a server span (continuing metadata `traceparent`) with decode, queue,
		// compute and encode children.
		const span = tracer()?.start("inference.GRPCInferenceService/ModelInfer", {
			kind: "server",
			traceparent: headerValue(call.metadata?.get(TRACEPARENT)[0]),
			tracestate: headerValue(call.metadata?.get(TRACESTATE)[0]),
			attributes: {
				"rpc.system": "grpc",
				"rpc.method": "ModelInfer",
				"mlship.model": String(req.model_name ?? "").slice(0, 256),
			},
		});
		try {
			const t0 = span && performance.now();
			const name = requireName(req.model_name, "model_name");
			const request = requestFromPb(req);
			const opts = inferOptions(call);
			const header = call.metadata?.get(REQUEST_ID_HEADER)[0];
			opts.requestId = requestIdOf(
				req.id || undefined,
				header === undefined ? undefined : String(header),
			);
			if (span) {
				span.record("decode", t0 as number, performance.now());
				span.set("mlship.request_id", opts.requestId);
				opts.trace = span;
			}
			const res = await dp.infer(
				name,
				req.model_version || undefined,
				request,
				opts,
			);
			const t1 = span && performance.now();
			const out = responseToPb(
				res,
				(req.raw_input_contents?.length ?? 0) > 0,
				opts.requestId,
			);
			if (span) {
				span.record("encode", t1 as number, performance.now());
				if (res.model_version !== undefined)
					span.set("mlship.model_version", res.model_version);
			}
			return out;
		} catch (err) {
			span?.fail(err);
			throw err;
		} finally {
			span?.end();
		}
	}

	/** Triton's streaming RPC: each request answered on the stream as it completes, errors in `error_message`. */
	function modelStreamInfer(
		call: grpc.ServerDuplexStream<PbInferRequest, unknown>,
	): void {
		let pending = 0;
		let ended = false;
		const finish = () => {
			if (ended && pending === 0 && !call.cancelled) call.end();
		};
		call.on("data", (req: PbInferRequest) => {
			pending++;
			new Promise<void>((resolve) => {
				authorize("ModelStreamInfer", call, req.model_name);
				resolve();
			})
				.then(() => infer(req, call))
				.then(
					(res) => ({ error_message: "", infer_response: res }),
					(err: unknown) => {
						report(err, "ModelStreamInfer");
						return {
							error_message: grpcStatusOf(err).details,
							infer_response: {
								model_name: req.model_name,
								model_version: req.model_version ?? "",
								id: req.id ?? "",
							},
						};
					},
				)
				.then((msg) => {
					if (!call.cancelled) call.write(msg);
				})
				.finally(() => {
					pending--;
					finish();
				});
		});
		call.on("end", () => {
			ended = true;
			finish();
		});
		call.on("error", () => {
			// The client went away; pending results are dropped by the cancelled check.
		});
	}

	const handlers: grpc.UntypedServiceImplementation = {
		ServerLive: unary("ServerLive", () => ({ live: dp.live() })),
		ServerReady: unary("ServerReady", () => ({ ready: dp.ready() })),
		ModelReady: unary("ModelReady", (req: NameVersion) => ({
			ready: dp.modelReady(
				requireName(req.name, "name"),
				req.version || undefined,
			),
		})),
		ServerMetadata: unary("ServerMetadata", () => {
			const m = dp.metadata();
			return { name: m.name, version: m.version, extensions: m.extensions };
		}),
		ModelMetadata: unary("ModelMetadata", (req: NameVersion) => {
			const m = dp.modelMetadata(
				requireName(req.name, "name"),
				req.version || undefined,
			);
			return {
				name: m.name,
				versions: m.versions,
				platform: m.platform,
				inputs: m.inputs.map(tensorMetadata),
				outputs: m.outputs.map(tensorMetadata),
			};
		}),
		ModelInfer: unary("ModelInfer", (req: PbInferRequest, call) =>
			infer(req, call),
		),
		ModelStreamInfer: modelStreamInfer,
		RepositoryIndex: unary("RepositoryIndex", (req: { ready?: boolean }) => ({
			models: dp.repositoryIndex(req.ready === true),
		})),
		RepositoryModelLoad: unary(
			"RepositoryModelLoad",
			async (req: RepositoryRequest, call) => {
				const name = requireName(req.model_name, "model_name");
				const given = Object.keys(req.parameters ?? {});
				// Triton's "config" / "file:..." overrides would load something other than the served model.
				if (given.length > 0)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`load parameters are not supported (got ${given.map((k) => `'${k}'`).join(", ")}); mlship loads the model from its bundle or registry`,
					);
				await loadByName(dp, name, opts.modelRoot);
				await auditAdmin("model.load", name, call);
				return {};
			},
		),
		RepositoryModelUnload: unary(
			"RepositoryModelUnload",
			async (req: RepositoryRequest, call) => {
				// "unload_dependents" needs no handling: mlship has no ensembles.
				const name = requireName(req.model_name, "model_name");
				await dp.unload(name);
				await auditAdmin("model.unload", name, call);
				return {};
			},
		),
	};

	const server = new grpc.Server({
		"grpc.max_receive_message_length": maxBytes,
		"grpc.max_send_message_length": maxBytes,
	});
	server.addService(inferenceService(), handlers);

	const host = opts.host ?? "127.0.0.1";
	const address = `${host.includes(":") ? `[${host}]` : host}:${opts.port}`;
	const port = await new Promise<number>((resolve, reject) => {
		server.bindAsync(
			address,
			opts.credentials ?? grpc.ServerCredentials.createInsecure(),
			(err, bound) => {
				if (err)
					reject(
						new Error(`cannot listen for gRPC on ${address}: ${err.message}`, {
							cause: err,
						}),
					);
				else resolve(bound);
			},
		);
	});

	let closed: Promise<void> | undefined;
	return {
		port,
		close(graceful = true): Promise<void> {
			closed ??= new Promise<void>((resolve) => {
				if (!graceful) {
					server.forceShutdown();
					resolve();
					return;
				}
				server.tryShutdown((err) => {
					if (err) server.forceShutdown();
					resolve();
				});
			});
			return closed;
		},
	};
}
