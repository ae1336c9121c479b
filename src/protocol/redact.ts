// Secrets never reach messages: the one place a URL's password (or token) is replaced by `***` before it is shown,
// used by every log line, error message, --json output, metrics label and banner.

/** Query parameters whose value is a secret wherever they appear (`postgres://…?password=x`). */
const SECRET_PARAMS =
	/([?&](?:password|pass|passwd|token|secret|sslpassword)=)[^&#\s'"]*/gi;

/**
 * The URL as the user wrote it, with its password replaced by `***`. The user info ends at the last `@` of the
 * authority (as URL parsers read it), so a password with an unencoded `@` is hidden whole. A NATS URL with a user
 * but no password carries a token: it is hidden too.
 * @example redactUrl("postgres://app:hunter2@db/prod?table=t") // "postgres://app:***@db/prod?table=t"
 * @example redactUrl("nats://s3cr3t-token@nats:4222/s/x") // "nats://***@nats:4222/s/x"
 */
export function redactUrl(url: string): string {
	const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#\s]*)/i.exec(url);
	if (!m) return url;
	const scheme = (m[1] as string).toLowerCase();
	const authority = m[2] as string;
	const at = authority.lastIndexOf("@");
	let shown = authority;
	if (at >= 0) {
		const userinfo = authority.slice(0, at);
		const colon = userinfo.indexOf(":");
		const hidden =
			colon >= 0
				? `${userinfo.slice(0, colon)}:***`
				: scheme === "nats" || scheme === "tls"
					? "***"
					: userinfo;
		shown = `${hidden}${authority.slice(at)}`;
	}
	const rest = url.slice(m[0].length).replace(SECRET_PARAMS, "$1***");
	return `${m[1]}://${shown}${rest}`;
}

/** Every URL inside a text (a log message, an error from a client library) redacted with redactUrl. */
export function redactText(text: string): string {
	if (
		!text.includes("://") &&
		!/[?&][a-z]*(pass|token|secret)[a-z]*=/i.test(text)
	)
		return text;
	return text
		.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"`<>]+/gi, (u) => redactUrl(u))
		.replace(SECRET_PARAMS, "$1***");
}

/**
 * A value for a log line or --json output with every string redacted (objects and arrays copied, up to a depth);
 * an Error becomes `{ type, message, stack }` with both redacted.
 */
export function redactValue(v: unknown, depth = 0): unknown {
	if (typeof v === "string") return redactText(v);
	if (v === null || typeof v !== "object" || depth > 6) return v;
	if (v instanceof Error)
		return {
			type: v.name,
			message: redactText(v.message),
			...(v.stack ? { stack: redactText(v.stack) } : {}),
			...((v as { code?: unknown }).code !== undefined
				? { code: (v as { code?: unknown }).code }
				: {}),
		};
	if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1));
	if (Object.getPrototypeOf(v) !== Object.prototype) return v;
	const out: Record<string, unknown> = {};
	for (const [k, x] of Object.entries(v)) out[k] = redactValue(x, depth + 1);
	return out;
}

/**
 * pino options that redact every argument of every log call (merging object and message), so no logger needs to
 * remember to: spread into `pino({ ...redactingLogger, level })`.
 */
export const redactingLogger = {
	hooks: {
		logMethod(
			this: unknown,
			args: unknown[],
			method: (...a: unknown[]) => void,
		): void {
			method.apply(
				this,
				args.map((a) => redactValue(a)),
			);
		},
	},
};
