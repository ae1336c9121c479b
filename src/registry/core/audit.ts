// The audit log: who did what to which model or token, when and from where, kept in the registry database.
import { AsyncLocalStorage } from "node:async_hooks";
import { userInfo } from "node:os";
import { MlshipError } from "../../protocol/errors.ts";
import type { Audit, AuditEntry, AuditEvent, AuditFilter } from "../access.ts";
import { insertRows, placeholders } from "./rows.ts";
import type { Driver, Session } from "./session.ts";

/** Who acts: a token id (server requests) or `local:USER` (the CLI, a library call); and from where (an IP, or `cli`). */
export interface Actor {
	actor: string;
	source: string;
}

const MAX_FIELD = 500;
const MAX_DETAIL_BYTES = 16 * 1024;
const MAX_LIMIT = 100_000;
const ACTION_RE = /^[a-z][a-z0-9_.-]{0,63}$/;

const context = new AsyncLocalStorage<Actor>();
let local: Actor | undefined;

/** The actor of the running code: the {@link withActor} context, else `local:USER` from `cli`. */
export function currentActor(): Actor {
	const c = context.getStore();
	if (c) return c;
	if (!local) {
		let user = process.env.USER || process.env.LOGNAME || "";
		if (!user)
			try {
				user = userInfo().username;
			} catch {
				user = "unknown";
			}
		local = { actor: `local:${user}`, source: "cli" };
	}
	return local;
}

/**
 * Runs `fn` with `actor` as the author of every registry change it makes (a server request runs under its token id and IP).
 * @example await withActor({ actor: "tok_0123456789ab", source: "10.0.0.7" }, () => store.setAlias("churn", "production", 4));
 */
export function withActor<T>(actor: Actor, fn: () => T): T {
	return context.run(actor, fn);
}

interface AuditRow {
	seq: number | string;
	at: string | Date;
	actor: string;
	action: string;
	target: string;
	detail: string | Record<string, unknown>;
	source: string;
}

function clip(text: string): string {
	return text.length > MAX_FIELD ? text.slice(0, MAX_FIELD) : text;
}

/**
 * The registry's audit log. Registry changes (register, alias moves, archive, restore, delete, metadata) and token
 * changes are recorded in the same transaction as the change; servers record load and unload; other features record
 * their own actions (route changes, rollout steps) through {@link record}.
 */
export class AuditLog implements Audit {
	readonly #driver: Driver;

	constructor(driver: Driver) {
		this.#driver = driver;
	}

	/** Records one event in its own transaction. */
	async record(e: AuditEntry): Promise<void> {
		await this.#driver.transaction((tx) => this.insert(tx, e));
	}

	/** Records one event inside the caller's transaction (so it commits, or not, with the change it describes). */
	async insert(tx: Session, e: AuditEntry): Promise<void> {
		await this.insertMany(tx, [e]);
	}

	/** Records events, in order, inside the caller's transaction, many per statement (a bulk registration's). */
	async insertMany(tx: Session, entries: readonly AuditEntry[]): Promise<void> {
		if (entries.length === 0) return;
		const who = currentActor();
		const at = new Date().toISOString();
		const rows = entries.map((e) => {
			if (!ACTION_RE.test(e.action))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`invalid audit action '${e.action.slice(0, 64)}': use lower-case words joined by '.', e.g. model.load`,
				);
			let detail = JSON.stringify(e.detail ?? {});
			if (Buffer.byteLength(detail) > MAX_DETAIL_BYTES)
				detail = JSON.stringify({ truncated: true });
			return [
				at,
				clip(e.actor ?? who.actor),
				e.action,
				clip(e.target),
				detail,
				clip(e.source ?? who.source),
			];
		});
		await insertRows(
			tx,
			"INSERT INTO audit_log (at, actor, action, target, detail, source)",
			rows,
			placeholders(6),
		);
	}

	/** Events newest first. */
	async list(filter: AuditFilter = {}): Promise<AuditEvent[]> {
		const limit = filter.limit ?? 1000;
		if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`limit must be a whole number from 1 to ${MAX_LIMIT}, got ${limit}`,
			);
		const since = (filter.since ?? new Date(0)).toISOString();
		const action = filter.action ?? "";
		const rows = await this.#driver.read((s) =>
			s.all<AuditRow>(
				`SELECT * FROM audit_log
				 WHERE at >= $1 AND ($2 = '' OR action = $2 OR action LIKE $3)
				 ORDER BY seq DESC LIMIT ${limit}`,
				[since, action, `${action}.%`],
			),
		);
		return rows.map((r) => ({
			seq: Number(r.seq),
			at: r.at instanceof Date ? r.at.toISOString() : r.at,
			actor: r.actor,
			action: r.action,
			target: r.target,
			detail:
				typeof r.detail === "string"
					? (JSON.parse(r.detail) as Record<string, unknown>)
					: r.detail,
			source: r.source,
		}));
	}
}
