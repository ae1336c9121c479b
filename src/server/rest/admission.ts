// Admission before the body: a request to a model whose queue is full is refused (503) before its body is read or parsed.
import type { FastifyReply, FastifyRequest } from "fastify";

/** The path parameters of a model route (`/v2/models/{model}[/versions/{version}]`). */
export interface ModelParams {
	model: string;
	version?: string;
}

/** Bodies above this are not drained after an early 503: the connection is closed instead. */
const DRAIN_LIMIT = 64 * 1024;
/** While refusing, the learned limit is raised this often, so it follows a larger queue or a faster model. */
const PROBE_MS = 1_000;

interface Gate {
	/** Requests admitted and not yet answered. */
	inflight: number;
	/** Admit while inflight < limit; undefined = no overflow seen yet. */
	limit: number | undefined;
	raisedAt: number;
}

const ADMITTED = Symbol("mlship.admitted");
/** On a socket: when its last early 503 was sent (performance.now() ms). */
const REFUSED_AT = Symbol("mlship.refusedAt");
type Refused = { [REFUSED_AT]?: number };
type Tracked = FastifyRequest<{ Params: ModelParams }> & {
	[ADMITTED]?: Gate;
};

/**
 * Keeps refusing cheap under overload (issue 11.25). Parsing a body only to answer "queue is full" spends the
 * main thread the admitted requests need, so goodput collapses as connections grow. The data plane's queue is
 * the authority: when it refuses a request as overloaded, the number of requests then in flight for that model
 * becomes its limit, and later requests beyond it are answered 503 in `onRequest`, before the body is read.
 * While refusing, the limit is raised once a second (the next overflow lowers it again), so it tracks a queue
 * that grew or a model that got faster. Costs one map lookup per request; nothing is refused before a real overflow.
 * A connection that comes back before its Retry-After gets its next 503 only when that has passed.
 */
export class Admission {
	readonly #gates = new Map<string, Gate>();
	readonly #retryAfter: string;
	readonly #retryAfterMs: number;

	constructor(retryAfterSeconds: number) {
		this.#retryAfter = String(retryAfterSeconds);
		this.#retryAfterMs = retryAfterSeconds * 1000;
	}

	/** The route's onRequest hook. */
	readonly onRequest = (
		req: FastifyRequest,
		reply: FastifyReply,
		done: () => void,
	): void => {
		const r = req as Tracked;
		const { model, version } = r.params;
		const key = version === undefined ? model : `${model}\u0000${version}`;
		let gate = this.#gates.get(key);
		if (gate === undefined) {
			// Bounded: only names the data plane has overloaded on are kept after the request (see below).
			gate = { inflight: 0, limit: undefined, raisedAt: 0 };
		}
		if (gate.limit !== undefined && gate.inflight >= gate.limit) {
			const now = performance.now();
			if (now - gate.raisedAt >= PROBE_MS) {
				gate.raisedAt = now;
				gate.limit = Math.ceil(gate.limit * 1.25);
			} else {
				this.#refuse(req, reply, model);
				return;
			}
		}
		gate.inflight++;
		if (gate.inflight === 1) this.#gates.set(key, gate);
		r[ADMITTED] = gate;
		reply.raw.once("close", () => {
			if (--gate.inflight === 0 && gate.limit === undefined)
				this.#gates.delete(key);
		});
		done();
	};

	/** Call when the data plane refused an admitted request as overloaded: learns the limit from it. */
	overflowed(req: FastifyRequest): void {
		const gate = (req as Tracked)[ADMITTED];
		if (gate === undefined) return;
		gate.limit = Math.max(1, gate.inflight - 1);
		gate.raisedAt = performance.now();
	}

	#refuse(req: FastifyRequest, reply: FastifyReply, model: string): void {
		const length = Number(req.headers["content-length"] ?? Number.NaN);
		// Node drains an unread body to keep the connection; a large or unsized one is cheaper to cut off.
		if (!(length <= DRAIN_LIMIT)) reply.header("connection", "close");
		const error = `model '${model}': the model's queue is full; retry later`;
		reply.code(503).header("retry-after", this.#retryAfter);
		const send = () => reply.type("application/json").send({ error });
		// A connection that asks again before the Retry-After of its previous 503 is answered only once that has
		// passed: a client that ignores Retry-After waits anyway, instead of spinning both sides' CPU on refusals
		// (which takes it from the model). The first refusal, and a client that waits, are answered at once.
		const socket = req.raw.socket as typeof req.raw.socket & Refused;
		const now = performance.now();
		const last = socket[REFUSED_AT];
		const wait = last === undefined ? 0 : last + this.#retryAfterMs - now;
		socket[REFUSED_AT] = now + Math.max(0, wait);
		if (wait > 0) setTimeout(send, wait).unref();
		else send();
	}
}
