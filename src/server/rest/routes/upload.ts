// POST /v2/repository/models/:model/versions: a bundle uploaded as tar (or tar.gz), registered into the server's registry.
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
	type ArchiveLimits,
	withExtractedArchive,
} from "../../../bundle/archive.ts";
import { readBundle } from "../../../bundle/bundle.ts";
import { MlshipError } from "../../../protocol/errors.ts";
import { withActor } from "../../../registry/core/audit.ts";
import {
	assertAlias,
	assertEntity,
	assertName,
	type ModelVersion,
} from "../../../registry/types.ts";
import { actorOf } from "../auth.ts";
import type { RestContext } from "../context.ts";

export const UPLOAD_PATH = "/v2/repository/models/:model/versions";
/** Header with the lowercase hex sha256 of the request body (or the `sha256` query parameter). */
export const SHA256_HEADER = "x-mlship-sha256";

type Query = Record<string, string | string[] | undefined>;

const bad = (msg: string) => new MlshipError("MLSHIP_INVALID_ARGUMENT", msg);

/** One value of a query parameter (a repeated one is refused, except `alias`). */
function one(q: Query, key: string): string | undefined {
	const v = q[key];
	if (Array.isArray(v))
		throw bad(
			`query parameter '${key}' is given ${v.length} times; give it once`,
		);
	return v;
}

/** What a successful upload answers (201). */
export interface UploadResult {
	name: string;
	version: number;
	sha256: string;
	aliases: string[];
	entity: string | null;
	created_at: string;
	/** sha256 and size of the archive as received. */
	archive: { sha256: string; bytes: number };
	/** Whether this server serves the name (it then hot-loads the new version as its references move). */
	served: boolean;
}

/** The upload's options, checked before a byte of the body is read. */
export function uploadOptions(
	name: string,
	q: Query,
	headers: FastifyRequest["headers"],
): {
	sha256: string;
	aliases: string[];
	entity: string | undefined;
	allowSignatureChange: boolean;
} {
	assertName(name);
	const header = headers[SHA256_HEADER];
	const fromHeader = Array.isArray(header) ? header[0] : header;
	const fromQuery = one(q, "sha256");
	if (
		fromHeader !== undefined &&
		fromQuery !== undefined &&
		fromHeader.toLowerCase() !== fromQuery.toLowerCase()
	)
		throw bad(
			`the ${SHA256_HEADER} header and the sha256 query parameter differ; give one`,
		);
	const sha256 = (fromHeader ?? fromQuery)?.toLowerCase();
	if (sha256 === undefined)
		throw bad(
			`the sha256 of the body is required: send header ${SHA256_HEADER}: <64 hex digits> (or ?sha256=), e.g. from 'sha256sum bundle.tar'`,
		);
	if (!/^[0-9a-f]{64}$/.test(sha256))
		throw bad(
			`${SHA256_HEADER} must be 64 hex digits (a sha256), got ${JSON.stringify(sha256.slice(0, 80))}`,
		);
	const alias = q.alias;
	const aliases = alias === undefined ? [] : [alias].flat();
	for (const a of aliases) assertAlias(a);
	const entity = one(q, "entity");
	if (entity !== undefined) assertEntity(entity);
	const allow = one(q, "allow_signature_change");
	if (allow !== undefined && allow !== "true" && allow !== "false")
		throw bad(
			`allow_signature_change must be true or false, got ${JSON.stringify(allow.slice(0, 40))}`,
		);
	return { sha256, aliases, entity, allowSignatureChange: allow === "true" };
}

/**
 * Registers the upload route (admin: it changes what the registry holds). The body is read as a stream (no other
 * parser buffers it): Content-Length and the running count are checked against `limits.maxBytes`.
 */
export function registerUploadRoute(
	app: FastifyInstance,
	{ dp }: RestContext,
	limits: ArchiveLimits,
): void {
	app.register(async (child) => {
		// Only in this route's context: the body reaches the handler as the request stream.
		child.removeAllContentTypeParsers();
		child.addContentTypeParser("*", (_req, payload, done) =>
			done(null, payload),
		);
		child.post<{ Params: { model: string }; Querystring: Query }>(
			UPLOAD_PATH,
			async (req, reply) => {
				const name = req.params.model;
				const opts = uploadOptions(name, req.query, req.headers);
				const store = dp.registryStore();
				if (!store)
					throw bad(
						"this server serves bundles from disk, not from a registry, so it cannot store an uploaded version: start it with a registry (mlship serve --registry sqlite:registry.db --model NAME), or register with 'mlship models register'",
					);
				const length = Number(req.headers["content-length"] ?? Number.NaN);
				if (length > limits.maxBytes) {
					reply.header("connection", "close");
					throw new MlshipError(
						"MLSHIP_PAYLOAD_TOO_LARGE",
						`the archive is ${length} bytes, more than the upload limit of ${limits.maxBytes} bytes`,
					);
				}
				const registry = await store;
				let v: ModelVersion;
				let archive: { sha256: string; bytes: number };
				try {
					({ v, archive } = await withExtractedArchive(
						req.raw,
						{
							expectedSha256: opts.sha256,
							limits,
							where: `upload of '${name}'`,
						},
						async (a) => {
							const bundle = await readBundle(a.dir).catch((err: unknown) => {
								// Name the upload, not the temp dir it was extracted to.
								if (!(err instanceof MlshipError)) throw err;
								throw new MlshipError(
									err.code,
									err.message.replaceAll(a.dir, `upload of '${name}'`),
								);
							});
							// The audit log names the uploader (token id) and address, not the server's OS user.
							const registered = await withActor(actorOf(req), () =>
								registry.register(bundle, {
									name,
									aliases: opts.aliases,
									...(opts.entity !== undefined && { entity: opts.entity }),
									allowSignatureChange: opts.allowSignatureChange,
									metadata: {
										uploaded: { sha256: a.sha256, bytes: a.bytes },
									},
								}),
							);
							return {
								v: registered,
								archive: { sha256: a.sha256, bytes: a.bytes },
							};
						},
					));
				} catch (err) {
					// The rest of a refused body is not read: close the connection after the answer.
					if (!req.raw.readableEnded) reply.header("connection", "close");
					if (
						err instanceof MlshipError &&
						err.message.includes("--allow-signature-change")
					)
						throw new MlshipError(
							err.code,
							`${err.message}; over this endpoint: ?allow_signature_change=true`,
						);
					throw err;
				}
				const result: UploadResult = {
					name: v.name,
					version: v.version,
					sha256: v.sha256,
					aliases: v.aliases,
					entity: v.entity ?? null,
					created_at: v.createdAt,
					archive,
					served: dp.repositoryIndex().some((e) => e.name === v.name),
				};
				reply.code(201);
				return result;
			},
		);
	});
}
