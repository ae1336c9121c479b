// Token checks on every REST route: one onRequest hook, before admission and before any body is read.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Authenticator } from "../auth/authenticator.ts";
import { restNeed } from "../auth/policy.ts";

const CALLER = Symbol("mlship.caller");
type WithCaller = FastifyRequest & { [CALLER]?: string };

/** The token id a request was authenticated with, if any. */
export function callerOf(req: FastifyRequest): string | undefined {
	return (req as WithCaller)[CALLER];
}

/** Who and where, for the audit log: the token id (`anonymous` when the server let the call through without one). */
export function actorOf(req: FastifyRequest): {
	actor: string;
	source: string;
} {
	return { actor: callerOf(req) ?? "anonymous", source: req.ip };
}

/**
 * Checks each request's token against the scope its route needs (src/server/auth/policy.ts). Runs before the
 * body is read, so an unauthenticated client cannot make the server parse a large body.
 */
export function registerAuth(app: FastifyInstance, auth: Authenticator): void {
	app.addHook("onRequest", (req, _reply, done) => {
		const need = restNeed(req.method, req.routeOptions.url);
		const model = (req.params as { model?: unknown } | undefined)?.model;
		try {
			const caller = auth.check(
				req.headers.authorization,
				need,
				typeof model === "string" ? model : undefined,
				req.ip,
			);
			if (caller !== undefined) (req as WithCaller)[CALLER] = caller;
		} catch (err) {
			done(err as Error);
			return;
		}
		done();
	});
}
