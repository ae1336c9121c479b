// Admission before the body: a request to a model whose queue is full is refused (503) before its body is read or parsed.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ModelParams } from "./routes/health.ts";

/** Bodies above this are not drained after an early 503: the connection is closed instead. */
const DRAIN_LIMIT = 64 * 1024;
/**
 * An early refusal is sent after this hold (at most Retry-After). Holding costs a timer, not CPU, and keeps
 * clients that retry at once (ignoring Retry-After) from turning refusals into a busy loop on the main thread.
 */
const HOLD_MS = 100;
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
 */
export class Admission {
	readonly #gates = new Map<string, Gate>();
	readonly #retryAfter: string;
	readonly #holdMs: number;

	constructor(retryAfterSeconds: number) {
		this.#retryAfter = String(retryAfterSeconds);
		this.#holdMs = Math.min(HOLD_MS, retryAfterSeconds * 1000);
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
		if (this.#holdMs > 0) setTimeout(send, this.#holdMs);
		else send();
	}
}
