// The vocabulary of access control kept in the registry: API tokens with scopes, and the audit log.

/** What a token may do: `predict` (inference), `read` (metadata, index, metrics), `admin` (load, unload, upload). */
export type Scope = "predict" | "read" | "admin";
export const SCOPES: readonly Scope[] = ["predict", "read", "admin"];

/** A token as listed: everything but the secret (which is never stored). */
export interface TokenInfo {
	id: string;
	scopes: Scope[];
	/** Model-name glob patterns (`churn*`); empty = every model. */
	models: string[];
	description: string;
	/** ISO 8601 times. */
	createdAt: string;
	/** Who created it (`local:USER` from the CLI, or a token id). */
	createdBy: string;
	expiresAt?: string;
	revokedAt?: string;
	lastUsedAt?: string;
}

/** A stored token with its hash, as the server checks it. */
export interface StoredToken extends TokenInfo {
	/** SHA-256 of the secret, hex. */
	hash: string;
}

/** Options for {@link Tokens.create}. */
export interface CreateTokenOptions {
	scopes: readonly Scope[];
	/** Model-name glob patterns (`*` any run of characters, `?` one); none = every model. */
	models?: readonly string[];
	/** When the token stops working. */
	expiresAt?: Date;
	description?: string;
}

/** The registry's API tokens (see core/tokens.ts). */
export interface Tokens {
	/** Creates a token; the secret is returned once and stored nowhere. */
	create(opts: CreateTokenOptions): Promise<{ token: string; info: TokenInfo }>;
	/** Tokens newest first, without secrets; revoked ones only with `includeRevoked`. */
	list(opts?: { includeRevoked?: boolean }): Promise<TokenInfo[]>;
	/** Every token with its hash, revoked ones too (what a server checks against). */
	all(): Promise<StoredToken[]>;
	/** Revokes a token; it stops working on every server within about a second. */
	revoke(id: string): Promise<TokenInfo>;
	/** Records when tokens were last used. */
	touch(ids: readonly string[], at?: Date): Promise<void>;
}

/** One audit record as stored. */
export interface AuditEvent {
	seq: number;
	/** ISO 8601 time. */
	at: string;
	/** A token id (server requests) or `local:USER` (CLI, library). */
	actor: string;
	/** `model.register`, `alias.set`, `model.load`, `token.create`, `route.set`… */
	action: string;
	/** What was acted on: `churn@3`, `churn@production`, `tok_…`. */
	target: string;
	detail: Record<string, unknown>;
	/** An IP address, or `cli`. */
	source: string;
}

/** What to record; actor and source default to the current `withActor` context (else `local:USER` from `cli`). */
export interface AuditEntry {
	action: string;
	target: string;
	detail?: Record<string, unknown>;
	actor?: string;
	source?: string;
}

/** Filter for {@link Audit.list}. */
export interface AuditFilter {
	/** Only events at or after this time. */
	since?: Date;
	/** Only this action (`model.load`), or every action under a prefix (`model` → `model.*`). */
	action?: string;
	/** Most events returned, newest first (default 1000, at most 100,000). */
	limit?: number;
}

/** The registry's audit log (see core/audit.ts). */
export interface Audit {
	/** Records one event. */
	record(e: AuditEntry): Promise<void>;
	/** Events newest first. */
	list(filter?: AuditFilter): Promise<AuditEvent[]>;
}
