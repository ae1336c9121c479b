// Secrets and TLS files named by a connection URI: `password_file=`, an environment variable, `ca=`/`cert=`/`key=`.
import { readFileSync, statSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { MlshipError } from "./errors.ts";
import { redactUrl } from "./redact.ts";

/** A password or key file larger than this is a wrong path, not a secret: refused before it is read. */
const MAX_SECRET_FILE_BYTES = 1 << 20;

/**
 * The contents of a file that holds a secret or a certificate, size-checked before it is read. `trim`: drop one
 * trailing newline (what `echo pw > file` leaves). Errors name the file and what it was for, never its contents.
 */
export function readSecretFile(
	path: string,
	what: string,
	opts: { trim?: boolean } = {},
): string {
	let size: number;
	try {
		size = statSync(path).size;
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what}: cannot read '${path}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path and its permissions`,
			{ cause: err },
		);
	}
	if (size > MAX_SECRET_FILE_BYTES)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${what}: '${path}' is ${size} bytes, more than ${MAX_SECRET_FILE_BYTES} for a password or certificate file; check the path`,
		);
	const text = readFileSync(path, "utf8");
	return opts.trim ? text.replace(/\r?\n$/, "") : text;
}

/**
 * The password of a connection: the URI's own (`user:PASSWORD@`) if present, else the file named by
 * `password_file=`, else the environment variable `env`. Undefined when none is set.
 * @example uriPassword(new URL("redis://:x@h/s"), "MLSHIP_REDIS_PASSWORD") // "x"
 */
export function uriPassword(
	inline: string | undefined,
	params: URLSearchParams,
	env: string,
	uri: string,
): string | undefined {
	const file = params.get("password_file");
	if (inline) {
		if (file !== null)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`'${redactUrl(uri)}': give the password either in the URI or with password_file=, not both`,
			);
		return inline;
	}
	if (file !== null)
		return readSecretFile(file, `'${redactUrl(uri)}' password_file`, {
			trim: true,
		});
	const fromEnv = process.env[env];
	return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** Whether a URI parameter is a yes (`1`, `true`, `yes`, `on`). */
function yes(v: string | null): boolean {
	return v !== null && /^(1|true|yes|on)$/i.test(v);
}

/**
 * TLS options from URI parameters: `tls=true` (also implied by any of the others), `ca=PATH` (trust these CAs
 * instead of the system's), `cert=PATH` and `key=PATH` (a client certificate, for mTLS), and
 * `tls_verify=false` only to turn certificate checks off (never the default). Undefined when TLS is not asked for.
 */
export function tlsFromParams(
	params: URLSearchParams,
	uri: string,
	forceTls = false,
): ConnectionOptions | undefined {
	const ca = params.get("ca");
	const cert = params.get("cert");
	const key = params.get("key");
	const tlsParam = params.get("tls");
	if (
		tlsParam !== null &&
		!yes(tlsParam) &&
		!/^(0|false|no|off)$/i.test(tlsParam)
	)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': tls=${tlsParam} is not a yes or no (use tls=true or tls=false)`,
		);
	const on =
		forceTls || yes(tlsParam) || ca !== null || cert !== null || key !== null;
	if (!on) return undefined;
	if ((cert === null) !== (key === null))
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': a client certificate needs both cert= and key=`,
		);
	const where = `'${redactUrl(uri)}'`;
	const verify = params.get("tls_verify");
	return {
		...(ca !== null ? { ca: readSecretFile(ca, `${where} ca`) } : {}),
		...(cert !== null ? { cert: readSecretFile(cert, `${where} cert`) } : {}),
		...(key !== null ? { key: readSecretFile(key, `${where} key`) } : {}),
		...(verify !== null && /^(0|false|no|off)$/i.test(verify)
			? { rejectUnauthorized: false }
			: {}),
	};
}

/**
 * A `postgres://` URL as node-postgres should get it: a `password_file=PATH` parameter is replaced by the file's
 * contents as the URL's password (node-postgres reads PGPASSWORD and ~/.pgpass itself, and `sslmode`,
 * `sslrootcert`, `sslcert`, `sslkey` from the URL). The result holds the password: never show it, show the input.
 * @example pgConnectionUrl("postgres://app@db/prod?password_file=/run/secrets/pg&sslmode=verify-full")
 */
export function pgConnectionUrl(url: string): string {
	if (!/[?&]password_file=/.test(url)) return url;
	let u: URL;
	try {
		u = new URL(url);
	} catch {
		return url;
	}
	const file = u.searchParams.get("password_file") as string;
	if (u.password)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(url)}': give the password either in the URL or with password_file=, not both`,
		);
	u.searchParams.delete("password_file");
	u.password = encodeURIComponent(
		readSecretFile(file, `'${redactUrl(url)}' password_file`, { trim: true }),
	);
	return u.toString();
}

/** Parses a connection URI; a malformed one is refused naming the expected form (and never showing a password). */
export function parseConnectionUrl(uri: string, expected: string): URL {
	try {
		return new URL(uri);
	} catch {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`'${redactUrl(uri)}': not a URL; expected ${expected} (percent-encode @ : / in a password)`,
		);
	}
}
