// API tokens in the registry: only a SHA-256 hash of each secret is stored, so every replica shares the tokens.
import { createHash, randomBytes } from "node:crypto";
import { MlshipError } from "../../protocol/errors.ts";
import {
	type CreateTokenOptions,
	SCOPES,
	type Scope,
	type StoredToken,
	type TokenInfo,
	type Tokens,
} from "../access.ts";
import { type AuditLog, currentActor } from "./audit.ts";
import type { Driver } from "./session.ts";

/** Every token starts with this, so a leaked one is easy to find with a secret scanner. */
export const TOKEN_PREFIX = "mls_";
/** Random bytes in a token's secret: 256 bits, so a plain SHA-256 is a safe hash (nothing to brute-force). */
const SECRET_BYTES = 32;
/** Most model patterns per token, and the longest pattern. */
const MAX_PATTERNS = 100;
const MAX_PATTERN_LENGTH = 200;
const MAX_DESCRIPTION = 500;
const PATTERN_RE = /^[A-Za-z0-9._*?-]+$/;
const ID_RE = /^tok_[0-9a-f]{12}$/;

/** SHA-256 of a presented token, hex: the key tokens are stored and looked up by. */
export function hashToken(token: string): string {
	return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Throws MLSHIP_INVALID_ARGUMENT unless every scope is known and there is at least one. */
export function checkScopes(scopes: readonly string[]): Scope[] {
	if (scopes.length === 0)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`a token needs at least one scope: ${SCOPES.join(", ")}`,
		);
	for (const s of scopes)
		if (!(SCOPES as readonly string[]).includes(s))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`unknown scope '${s}': expected ${SCOPES.join(", ")}`,
			);
	return [...new Set(scopes as Scope[])].sort(
		(a, b) => SCOPES.indexOf(a) - SCOPES.indexOf(b),
	);
}

/** Throws MLSHIP_INVALID_ARGUMENT unless every model pattern is a name glob. */
export function checkPatterns(patterns: readonly string[]): string[] {
	if (patterns.length > MAX_PATTERNS)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`at most ${MAX_PATTERNS} model patterns per token, got ${patterns.length}`,
		);
	for (const p of patterns)
		if (p.length > MAX_PATTERN_LENGTH || !PATTERN_RE.test(p))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`invalid model pattern '${p.slice(0, MAX_PATTERN_LENGTH)}': use model-name characters (letters, digits, '.', '_', '-') and the wildcards '*' and '?', up to ${MAX_PATTERN_LENGTH} characters`,
			);
	return [...new Set(patterns)];
}

/**
 * A model-name glob as a RegExp: `*` any run of characters, `?` one character, everything else literal.
 * @example globToRegExp("churn*").test("churn-eu") // true
 */
export function globToRegExp(pattern: string): RegExp {
	let re = "^";
	for (const ch of pattern)
		re +=
			ch === "*"
				? ".*"
				: ch === "?"
					? "."
					: ch.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
	return new RegExp(`${re}$`);
}

interface TokenRow {
	id: string;
	hash: string;
	scopes: string;
	models: string;
	description: string;
	created_at: string | Date;
	created_by: string;
	expires_at: string | Date | null;
	revoked_at: string | Date | null;
	last_used_at: string | Date | null;
}

const iso = (v: string | Date): string =>
	v instanceof Date ? v.toISOString() : v;

function toToken(row: TokenRow): StoredToken {
	const t: StoredToken = {
		id: row.id,
		hash: row.hash,
		scopes: row.scopes.split(",").filter(Boolean) as Scope[],
		models: JSON.parse(row.models) as string[],
		description: row.description,
		createdAt: iso(row.created_at),
		createdBy: row.created_by,
	};
	if (row.expires_at !== null) t.expiresAt = iso(row.expires_at);
	if (row.revoked_at !== null) t.revokedAt = iso(row.revoked_at);
	if (row.last_used_at !== null) t.lastUsedAt = iso(row.last_used_at);
	return t;
}

/**
 * The registry's tokens. The secret is returned once by {@link create} and never stored: the table keeps its
 * SHA-256. A random 256-bit secret cannot be guessed from its hash, so a slow password hash (bcrypt, scrypt)
 * would only cost CPU on every request without adding safety.
 */
export class TokenStore implements Tokens {
	readonly #driver: Driver;
	readonly #audit: AuditLog;

	constructor(driver: Driver, audit: AuditLog) {
		this.#driver = driver;
		this.#audit = audit;
	}

	/**
	 * Creates a token; returns its info and the secret (shown once, stored nowhere).
	 * @example const { token } = await store.tokens.create({ scopes: ["predict"], models: ["churn*"] });
	 */
	async create(
		opts: CreateTokenOptions,
	): Promise<{ token: string; info: TokenInfo }> {
		const scopes = checkScopes(opts.scopes);
		const models = checkPatterns(opts.models ?? []);
		const description = opts.description ?? "";
		if (description.length > MAX_DESCRIPTION)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`the description is ${description.length} characters; at most ${MAX_DESCRIPTION}`,
			);
		if (opts.expiresAt !== undefined && !(opts.expiresAt.getTime() > 0))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"the expiry is not a valid time",
			);
		const token = `${TOKEN_PREFIX}${randomBytes(SECRET_BYTES).toString("base64url")}`;
		const id = `tok_${randomBytes(6).toString("hex")}`;
		const info: TokenInfo = {
			id,
			scopes,
			models,
			description,
			createdAt: new Date().toISOString(),
			createdBy: currentActor().actor,
		};
		if (opts.expiresAt) info.expiresAt = opts.expiresAt.toISOString();
		await this.#driver.transaction(async (tx) => {
			await tx.all(
				`INSERT INTO auth_tokens (id, hash, scopes, models, description, created_at, created_by, expires_at)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				[
					id,
					hashToken(token),
					scopes.join(","),
					JSON.stringify(models),
					description,
					info.createdAt,
					info.createdBy,
					info.expiresAt ?? null,
				],
			);
			const detail: Record<string, unknown> = { scopes, models };
			if (info.expiresAt) detail.expiresAt = info.expiresAt;
			await this.#audit.insert(tx, {
				action: "token.create",
				target: id,
				detail,
			});
		});
		return { token, info };
	}

	/** Every token, newest first, without secrets; revoked ones only with `includeRevoked`. */
	async list(opts: { includeRevoked?: boolean } = {}): Promise<TokenInfo[]> {
		const rows = await this.#all(opts.includeRevoked === true);
		return rows.map(({ hash: _, ...info }) => info);
	}

	/** Every token with its hash (revoked ones too: the server needs to know that tokens exist). */
	all(): Promise<StoredToken[]> {
		return this.#all(true);
	}

	async #all(includeRevoked: boolean): Promise<StoredToken[]> {
		const rows = await this.#driver.read((s) =>
			s.all<TokenRow>(
				`SELECT * FROM auth_tokens WHERE ($1 = 1 OR revoked_at IS NULL) ORDER BY created_at DESC, id`,
				[includeRevoked ? 1 : 0],
			),
		);
		return rows.map(toToken);
	}

	/** Revokes a token: it stops working on every server within a second. Revoking twice is refused. */
	async revoke(id: string): Promise<TokenInfo> {
		if (!ID_RE.test(id))
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`invalid token id '${id.slice(0, 40)}': ids look like tok_0123456789ab (see mlship tokens list)`,
			);
		const row = await this.#driver.transaction(async (tx) => {
			const r = await tx.one<TokenRow>(
				"SELECT * FROM auth_tokens WHERE id = $1",
				[id],
			);
			if (!r)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`no token '${id}' (see mlship tokens list)`,
				);
			if (r.revoked_at !== null)
				throw new MlshipError(
					"MLSHIP_ALREADY_EXISTS",
					`token '${id}' was already revoked at ${iso(r.revoked_at)}`,
				);
			await this.#audit.insert(tx, { action: "token.revoke", target: id });
			return tx.one<TokenRow>(
				"UPDATE auth_tokens SET revoked_at = $2 WHERE id = $1 RETURNING *",
				[id, new Date().toISOString()],
			);
		});
		const { hash: _, ...info } = toToken(row as TokenRow);
		return info;
	}

	/** Records when tokens were last used (the server calls this at most once a minute, never per request). */
	async touch(ids: readonly string[], at: Date = new Date()): Promise<void> {
		if (ids.length === 0) return;
		await this.#driver.transaction(async (tx) => {
			for (const id of ids)
				await tx.all("UPDATE auth_tokens SET last_used_at = $2 WHERE id = $1", [
					id,
					at.toISOString(),
				]);
		});
	}
}
