// Checks API tokens for REST and gRPC: a snapshot of the registry's token hashes, re-read twice a second.
import { timingSafeEqual } from "node:crypto";
import { MlshipError } from "../../protocol/errors.ts";
import type { StoredToken, Tokens } from "../../registry/access.ts";
import { globToRegExp, hashToken } from "../../registry/core/tokens.ts";
import type { Need } from "./policy.ts";
import { type RateLimit, RateLimiter } from "./rate-limit.ts";

/**
 * `auto` (default): when the registry holds no token at all, predict and read are open and admin is refused; once any
 * token exists (even revoked or expired), every call but health needs one. `required`: always a token. `off`: no
 * token checks (admin still needs --allow-open-admin).
 */
export type AuthMode = "auto" | "required" | "off";

export interface AuthOptions {
	mode: AuthMode;
	/** Let admin calls through without a token where no token is asked for (auto with no tokens, or off). */
	allowOpenAdmin?: boolean;
	/** The registry's tokens; undefined = no registry (then only `auto` and `off` can start). */
	tokens?: Tokens;
	/** How often the token table is re-read, ms (default 500: a revoked token stops working within a second). */
	refreshMs?: number;
	/** How often last-used times are written, ms (default 60 s; 0 = never). */
	touchMs?: number;
	/** Called when re-reading the tokens fails (the last snapshot stays in force). */
	onError?: (err: unknown) => void;
	/** Rate limits per scope, per token (or per client address without one); see RateLimiter. */
	rateLimits?: readonly RateLimit[];
}

/** The one answer to every token that does not work: never says whether it was missing, unknown, expired or revoked. */
export const UNAUTHENTICATED_MESSAGE =
	"missing or invalid token: send 'Authorization: Bearer TOKEN' (gRPC metadata 'authorization') with a token from 'mlship tokens create'";

const BEARER_RE = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]{1,512})[ \t]*$/i;

interface Entry {
	token: StoredToken;
	hash: Buffer;
	expiresAt: number;
	patterns: RegExp[];
}

function unauthenticated(): MlshipError {
	return new MlshipError("MLSHIP_UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE);
}

function adminDisabled(mode: AuthMode): MlshipError {
	return new MlshipError(
		"MLSHIP_PERMISSION_DENIED",
		mode === "off"
			? "admin endpoints are disabled: the server runs with --auth off; start it with --allow-open-admin to allow load and unload without a token, or use tokens (mlship tokens create --scope admin)"
			: "admin endpoints are disabled while no token exists: create an admin token with 'mlship tokens create --scope admin' and send it as 'Authorization: Bearer TOKEN', or start the server with --allow-open-admin",
	);
}

/**
 * The server's token check. Presented tokens are hashed (SHA-256) and looked up by hash; the stored hash is then
 * compared in constant time. Tokens come from the registry, so every replica agrees; the table is re-read every
 * `refreshMs`, so a token created or revoked anywhere takes effect within about a second.
 */
export class Authenticator {
	readonly mode: AuthMode;
	readonly #allowOpenAdmin: boolean;
	readonly #tokens: Tokens | undefined;
	readonly #onError: (err: unknown) => void;
	#byHash = new Map<string, Entry>();
	#anyToken = false;
	#timer: NodeJS.Timeout | undefined;
	#touchTimer: NodeJS.Timeout | undefined;
	#refreshing: Promise<void> | undefined;
	#failing = false;
	readonly #used = new Set<string>();
	readonly #limiter: RateLimiter;

	private constructor(opts: AuthOptions) {
		this.#limiter = new RateLimiter(opts.rateLimits ?? []);
		this.mode = opts.mode;
		this.#allowOpenAdmin = opts.allowOpenAdmin === true;
		this.#tokens = opts.tokens;
		this.#onError = opts.onError ?? (() => {});
	}

	/**
	 * Reads the tokens once and keeps them fresh. Refuses `--auth required` without a registry.
	 * @example const auth = await Authenticator.start({ mode: "auto", tokens: store.tokens });
	 */
	static async start(opts: AuthOptions): Promise<Authenticator> {
		if (opts.mode === "required" && opts.tokens === undefined)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"--auth required needs a registry to read tokens from: pass --registry URI (tokens are made with 'mlship tokens create --registry URI'), or serve with --auth auto",
			);
		const a = new Authenticator(opts);
		if (opts.mode !== "off" && opts.tokens) {
			await a.refresh();
			const every = opts.refreshMs ?? 500;
			a.#timer = setInterval(() => {
				a.refresh().catch(() => {});
			}, every).unref();
			const touch = opts.touchMs ?? 60_000;
			if (touch > 0)
				a.#touchTimer = setInterval(() => a.#flushUsed(), touch).unref();
		}
		return a;
	}

	/** Whether calls need a token now (required, or auto with at least one token in the registry). */
	get enforced(): boolean {
		return this.mode === "required" || (this.mode === "auto" && this.#anyToken);
	}

	/** Whether the registry holds any token (revoked and expired ones count). */
	get hasTokens(): boolean {
		return this.#anyToken;
	}

	/** Re-reads the token table now (also done on a timer). */
	refresh(): Promise<void> {
		const tokens = this.#tokens;
		if (!tokens) return Promise.resolve();
		this.#refreshing ??= tokens
			.all()
			.then(
				(all) => {
					const next = new Map<string, Entry>();
					for (const t of all)
						if (t.revokedAt === undefined)
							next.set(t.hash, {
								token: t,
								hash: Buffer.from(t.hash, "hex"),
								expiresAt:
									t.expiresAt === undefined
										? Number.POSITIVE_INFINITY
										: Date.parse(t.expiresAt),
								patterns: t.models.map(globToRegExp),
							});
					this.#byHash = next;
					this.#anyToken = all.length > 0;
					this.#failing = false;
				},
				(err: unknown) => {
					if (!this.#failing) this.#onError(err);
					this.#failing = true;
					throw err;
				},
			)
			.finally(() => {
				this.#refreshing = undefined;
			});
		return this.#refreshing;
	}

	/**
	 * Checks one call. `authorization` is the header (or gRPC metadata) value; `model` the model the call names
	 * (undefined for server-wide calls); `address` the client's, for rate limits of calls without a token. Returns
	 * the token id (the caller), or undefined when no token was needed. Throws MLSHIP_UNAUTHENTICATED (401),
	 * MLSHIP_PERMISSION_DENIED (403) or RateLimitedError (429).
	 */
	check(
		authorization: string | undefined,
		need: Need,
		model: string | undefined,
		address = "unknown",
	): string | undefined {
		if (need === "open") return undefined;
		const caller = this.#identify(authorization, need, model);
		if (this.#limiter.active) this.#limiter.take(need, caller, address);
		return caller;
	}

	#identify(
		authorization: string | undefined,
		need: Exclude<Need, "open">,
		model: string | undefined,
	): string | undefined {
		if (this.mode === "off") {
			if (need === "admin" && !this.#allowOpenAdmin) throw adminDisabled("off");
			return undefined;
		}
		if (authorization === undefined || authorization === "") {
			if (this.enforced) throw unauthenticated();
			if (need === "admin" && !this.#allowOpenAdmin)
				throw adminDisabled("auto");
			return undefined;
		}
		const m = BEARER_RE.exec(authorization);
		if (!m) throw unauthenticated();
		const hex = hashToken(m[1] as string);
		const e = this.#byHash.get(hex);
		// The lookup is by hash (which says nothing about the secret); the bytes are still compared in constant time.
		if (
			!e ||
			!timingSafeEqual(e.hash, Buffer.from(hex, "hex")) ||
			!(Date.now() < e.expiresAt)
		)
			throw unauthenticated();
		const t = e.token;
		if (!t.scopes.includes(need))
			throw new MlshipError(
				"MLSHIP_PERMISSION_DENIED",
				`token ${t.id} has scope ${t.scopes.join(", ")}; this call needs '${need}' (create one with 'mlship tokens create --scope ${need}')`,
			);
		if (e.patterns.length > 0) {
			if (model === undefined)
				throw new MlshipError(
					"MLSHIP_PERMISSION_DENIED",
					`token ${t.id} is limited to models ${t.models.join(", ")}; this server-wide call needs a token without --models`,
				);
			if (!e.patterns.some((p) => p.test(model)))
				throw new MlshipError(
					"MLSHIP_PERMISSION_DENIED",
					`token ${t.id} is limited to models ${t.models.join(", ")}, not '${model.slice(0, 200)}'`,
				);
		}
		this.#used.add(t.id);
		return t.id;
	}

	#flushUsed(): void {
		if (this.#used.size === 0 || !this.#tokens) return;
		const ids = [...this.#used];
		this.#used.clear();
		this.#tokens.touch(ids).catch((err: unknown) => this.#onError(err));
	}

	/** Stops re-reading; writes the last-used times seen so far. */
	async close(): Promise<void> {
		this.#limiter.close();
		clearInterval(this.#timer);
		clearInterval(this.#touchTimer);
		await this.#refreshing?.catch(() => {});
		if (this.#touchTimer !== undefined) {
			const ids = [...this.#used];
			this.#used.clear();
			if (ids.length > 0 && this.#tokens)
				await this.#tokens.touch(ids).catch(() => {});
		}
	}
}
