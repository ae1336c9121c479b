// The servers a dashboard shows: this process's own data plane (`serve --ui`) and other `mlship serve` processes
// named with `--server URL`, read over their REST API with the user's own token.
import type { FastifyInstance } from "fastify";
import type { DataPlane, RepositoryEntry } from "../../dataplane/types.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { AuditEntry } from "../../registry/access.ts";
import { MAX_EXPOSITION_BYTES } from "./live.ts";

/** How long one call to another server may take before it counts as unreachable. */
const REMOTE_TIMEOUT_MS = 3000;

/** What the dashboard reads from (and asks of) one server. */
export interface UiServer {
	/** Stable id in URLs: `local`, or `s1`, `s2`… in --server order. */
	id: string;
	/** What the page shows: the URL, or `this server`. */
	label: string;
	ready(auth: string | undefined): Promise<boolean>;
	index(auth: string | undefined): Promise<RepositoryEntry[]>;
	metrics(auth: string | undefined): Promise<string>;
	experiment(model: string, auth: string | undefined): Promise<unknown>;
	/** The drift report of `GET /v2/models/{m}/monitor?since=…` (the server's own route, with the user's token). */
	monitor(
		model: string,
		since: string,
		auth: string | undefined,
	): Promise<unknown>;
	/** Live quality by version from feedback: `GET /v2/models/{m}/quality` (the server's own route, with the user's token). */
	quality(model: string, auth: string | undefined): Promise<unknown>;
	/** Unloads a model; the server's own unload route (or, locally, the data plane) records it in the audit log. */
	unload(
		model: string,
		auth: string | undefined,
		actor: { actor: string; source: string },
	): Promise<void>;
}

/** The error of a non-2xx answer: its `error` text, with a code from its status. */
function answerError(where: string, status: number, body: string): MlshipError {
	let message = body.slice(0, 500);
	try {
		message = String(
			(JSON.parse(body) as { error?: unknown }).error ?? message,
		);
	} catch {}
	const code =
		status === 400
			? "MLSHIP_INVALID_ARGUMENT"
			: status === 401
				? "MLSHIP_UNAUTHENTICATED"
				: status === 403
					? "MLSHIP_PERMISSION_DENIED"
					: status === 404
						? "MLSHIP_MODEL_NOT_FOUND"
						: "MLSHIP_UNAVAILABLE";
	return new MlshipError(code, `${where}: ${message}`);
}

/** A GET of this process's own route, through its token checks. */
async function inject(
	app: FastifyInstance,
	url: string,
	auth: string | undefined,
): Promise<unknown> {
	const res = await app.inject({
		method: "GET",
		url,
		headers: auth === undefined ? {} : { authorization: auth },
	});
	if (res.statusCode >= 300)
		throw answerError("this server", res.statusCode, res.body);
	return res.json();
}

/** This process's data plane; routes the data plane does not expose (the drift monitor) are asked of `app` in-process, through its token checks. */
export function localServer(
	dp: DataPlane,
	audit: (e: AuditEntry) => Promise<void>,
	app: FastifyInstance,
): UiServer {
	return {
		id: "local",
		label: "this server",
		ready: async () => dp.ready(),
		index: async () => dp.repositoryIndex(),
		metrics: async () => (await dp.metrics()).body,
		experiment: async (model) => {
			if (!dp.experiment)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					"this server does not run experiments",
				);
			return dp.experiment(model);
		},
		monitor: (model, since, auth) =>
			inject(
				app,
				`/v2/models/${encodeURIComponent(model)}/monitor?since=${encodeURIComponent(since)}`,
				auth,
			),
		quality: (model, auth) =>
			inject(app, `/v2/models/${encodeURIComponent(model)}/quality`, auth),
		unload: async (model, _auth, actor) => {
			await dp.unload(model);
			await audit({
				action: "model.unload",
				target: model,
				detail: { transport: "ui" },
				...actor,
			});
		},
	};
}

/** Checks a --server (or --stream) value: an http(s) URL without credentials, path, query or fragment. */
export function parseServerUrl(text: string, flag = "--server"): string {
	let u: URL;
	try {
		u = new URL(text);
	} catch {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${flag} expects a URL such as http://127.0.0.1:${flag === "--server" ? "8080" : "9464"}, got '${text.slice(0, 200)}'`,
		);
	}
	if (u.protocol !== "http:" && u.protocol !== "https:")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${flag} must be an http:// or https:// URL, got ${u.protocol}`,
		);
	if (u.username || u.password)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${flag} must not carry credentials: the dashboard sends each user's own token`,
		);
	return u.origin;
}

/** Largest JSON answer read from another server (a repository index of 100,000 entity models is ~10 MB). */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** Largest error answer read (its `error` text is shown). */
const MAX_ERROR_BYTES = 64 * 1024;

async function call(
	origin: string,
	path: string,
	auth: string | undefined,
	init: { method?: string; body?: string } = {},
	kind = "server",
): Promise<Response> {
	const headers: Record<string, string> = {};
	if (auth !== undefined) headers.authorization = auth;
	if (init.body !== undefined) headers["content-type"] = "application/json";
	let res: Response;
	try {
		res = await fetch(`${origin}${path}`, {
			method: init.method ?? "GET",
			headers,
			...(init.body !== undefined && { body: init.body }),
			signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS),
			redirect: "error",
		});
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_UNAVAILABLE",
			`${kind} ${origin} is unreachable (${(err as Error).message}): is it running?`,
		);
	}
	if (!res.ok)
		throw answerError(
			`${kind} ${origin}`,
			res.status,
			(await readAtMost(res, MAX_ERROR_BYTES).catch(() => "")) ??
				`an error answer above ${MAX_ERROR_BYTES} bytes`,
		);
	return res;
}

/**
 * The body of `res` as text when it is at most `max` bytes, else undefined. Bytes are counted as they arrive, so a
 * chunked answer (no content-length) is cancelled once over the limit, never read whole; a declared length over it
 * is refused before reading.
 */
export async function readAtMost(
	res: Response,
	max: number,
): Promise<string | undefined> {
	const declared = Number(res.headers.get("content-length") ?? "0");
	const reader = res.body?.getReader();
	if (!reader) return "";
	if (declared > max) {
		await reader.cancel().catch(() => {});
		return undefined;
	}
	const chunks: Uint8Array[] = [];
	let bytes = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		bytes += value.byteLength;
		if (bytes > max) {
			await reader.cancel().catch(() => {});
			return undefined;
		}
		chunks.push(value);
	}
	return new TextDecoder().decode(Buffer.concat(chunks, bytes));
}

/** The text of a server's or stream's answer to `path`, refused (MLSHIP_UNAVAILABLE) above `max` bytes. */
async function limitedText(
	res: Response,
	where: string,
	path: string,
	max: number,
): Promise<string> {
	const text = await readAtMost(res, max);
	if (text === undefined)
		throw new MlshipError(
			"MLSHIP_UNAVAILABLE",
			`${where}: ${path} is above the dashboard's limit of ${max} bytes`,
		);
	return text;
}

/** Another `mlship serve`, read over REST with the caller's Authorization header. */
export function remoteServer(id: string, origin: string): UiServer {
	const where = `server ${origin}`;
	/** A JSON answer of the server, read up to MAX_JSON_BYTES. */
	const json = async (
		path: string,
		auth: string | undefined,
		init?: { method: string; body: string },
	): Promise<unknown> => {
		const shown = path.replace(/\?.*/, "");
		const text = await limitedText(
			await call(origin, path, auth, init),
			where,
			shown,
			MAX_JSON_BYTES,
		);
		try {
			return JSON.parse(text);
		} catch {
			throw new MlshipError(
				"MLSHIP_UNAVAILABLE",
				`${where}: ${shown} is not JSON: is this an mlship serve?`,
			);
		}
	};
	const modelPath = (m: string, what: string) =>
		`/v2/models/${encodeURIComponent(m)}/${what}`;
	return {
		id,
		label: origin,
		ready: async (auth) => {
			try {
				await call(origin, "/v2/health/ready", auth);
				return true;
			} catch {
				return false;
			}
		},
		index: async (auth) =>
			(await json("/v2/repository/index", auth, {
				method: "POST",
				body: "{}",
			})) as RepositoryEntry[],
		metrics: async (auth) =>
			limitedText(
				await call(origin, "/metrics", auth),
				where,
				"/metrics",
				MAX_EXPOSITION_BYTES,
			),
		experiment: (m, auth) => json(modelPath(m, "experiment"), auth),
		monitor: (m, since, auth) =>
			json(
				`${modelPath(m, "monitor")}?since=${encodeURIComponent(since)}`,
				auth,
			),
		quality: (m, auth) => json(modelPath(m, "quality"), auth),
		unload: async (model, auth) => {
			await call(
				origin,
				`/v2/repository/models/${encodeURIComponent(model)}/unload`,
				auth,
				{ method: "POST", body: "{}" },
			);
		},
	};
}

/** Largest `/status` answer read from a stream processor. */
const MAX_STATUS_BYTES = 256 * 1024;

/** A stream processor the dashboard shows: its `--metrics-port` endpoint. */
export interface UiStream {
	/** `t1`, `t2`… in --stream order. */
	id: string;
	label: string;
	/** Its `GET /status` (the model, source and sink, counts, last message time); throws when unreachable. */
	status(): Promise<Record<string, unknown>>;
}

/**
 * `mlship stream --metrics-port P` at `origin`. The metrics port takes no token, so none is sent to it (a user's
 * token never leaves for another service).
 */
export function remoteStream(id: string, origin: string): UiStream {
	return {
		id,
		label: origin,
		status: async () => {
			const text = await limitedText(
				await call(origin, "/status", undefined, {}, "stream"),
				`stream ${origin}`,
				"/status",
				MAX_STATUS_BYTES,
			);
			let body: unknown;
			try {
				body = JSON.parse(text);
			} catch {
				throw new MlshipError(
					"MLSHIP_UNAVAILABLE",
					`stream ${origin}: /status is not JSON: is this an mlship stream --metrics-port?`,
				);
			}
			if (typeof body !== "object" || body === null || Array.isArray(body))
				throw new MlshipError(
					"MLSHIP_UNAVAILABLE",
					`stream ${origin}: /status is not an object: is this an mlship stream --metrics-port?`,
				);
			return body as Record<string, unknown>;
		},
	};
}
