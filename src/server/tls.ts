// TLS for the server's listeners: certificate, key and optional client CA (mTLS) read from files, shared by REST and
// gRPC, and reloaded in place (SIGHUP) so new connections get the new certificate and open ones are not dropped.
import { createSecureContext, type SecureContextOptions } from "node:tls";
import type * as grpc from "@grpc/grpc-js";
import { MlshipError } from "../protocol/errors.ts";
import { readSecretFile } from "../protocol/secrets.ts";

export interface TlsFiles {
	/** PEM certificate chain (`--tls-cert`). */
	cert: string;
	/** PEM private key (`--tls-key`). */
	key: string;
	/** PEM CA bundle that client certificates must chain to (`--tls-client-ca`): clients without one are refused. */
	clientCa?: string;
}

interface Material {
	cert: Buffer;
	key: Buffer;
	ca: Buffer | undefined;
}

type Listener = (m: Material) => void;

/**
 * The listeners' TLS material. `reload()` reads the files again and hands the new material to REST
 * (`server.setSecureContext`) and gRPC (a certificate provider whose update grpc-js applies to its listener in place);
 * a reload that fails (a missing or mismatched file) keeps the old material and says why.
 */
export class ServerTls {
	readonly files: TlsFiles;
	#material: Material;
	readonly #listeners = new Set<Listener>();

	constructor(files: TlsFiles) {
		this.files = files;
		this.#material = read(files);
	}

	/** Options for `https.createServer` / Fastify's `https`. */
	httpsOptions(): SecureContextOptions & {
		requestCert: boolean;
		rejectUnauthorized: boolean;
	} {
		const m = this.#material;
		return {
			cert: m.cert,
			key: m.key,
			...(m.ca ? { ca: m.ca } : {}),
			requestCert: m.ca !== undefined,
			rejectUnauthorized: m.ca !== undefined,
		};
	}

	/**
	 * Calls `fn` with the current material (now, or on the next microtask with `deferFirst`) and after every
	 * successful reload.
	 */
	onChange(fn: Listener, deferFirst = false): () => void {
		this.#listeners.add(fn);
		if (deferFirst)
			queueMicrotask(() => {
				if (this.#listeners.has(fn)) fn(this.#material);
			});
		else fn(this.#material);
		return () => this.#listeners.delete(fn);
	}

	/** Reads the files again; on success every listener gets the new material. Throws (old material kept) on failure. */
	reload(): void {
		const next = read(this.files);
		this.#material = next;
		for (const fn of this.#listeners) fn(next);
	}

	/** gRPC server credentials that follow reloads (grpc-js updates the secure context of its listener). */
	grpcCredentials(g: typeof grpc): grpc.ServerCredentials {
		const identity = new Provider(this, "identity");
		const ca = this.files.clientCa ? new Provider(this, "ca") : null;
		// grpc-js's declaration names the parameters (ca, identity), but its implementation takes the identity
		// provider first and the (optional) CA provider second.
		return g.experimental.createCertificateProviderServerCredentials(
			identity,
			ca as unknown as grpc.experimental.CertificateProvider,
			ca !== null,
		);
	}
}

/**
 * One side (identity or CA) of ServerTls as grpc-js's CertificateProvider. The first update is delivered on the next
 * microtask: grpc-js registers its listener on the credentials before its own watcher, so an update delivered at once
 * would reach no listener (its file-watcher provider is asynchronous too).
 */
class Provider implements grpc.experimental.CertificateProvider {
	readonly #tls: ServerTls;
	readonly #kind: "identity" | "ca";
	readonly #off = new Map<unknown, () => void>();

	constructor(tls: ServerTls, kind: "identity" | "ca") {
		this.#tls = tls;
		this.#kind = kind;
	}

	addCaCertificateListener(
		fn: grpc.experimental.CaCertificateUpdateListener,
	): void {
		if (this.#kind !== "ca") return;
		this.#off.set(
			fn,
			this.#tls.onChange(
				(m) => fn(m.ca ? { caCertificate: m.ca } : null),
				true,
			),
		);
	}

	removeCaCertificateListener(
		fn: grpc.experimental.CaCertificateUpdateListener,
	): void {
		this.#off.get(fn)?.();
		this.#off.delete(fn);
	}

	addIdentityCertificateListener(
		fn: grpc.experimental.IdentityCertificateUpdateListener,
	): void {
		if (this.#kind !== "identity") return;
		this.#off.set(
			fn,
			this.#tls.onChange(
				(m) => fn({ certificate: m.cert, privateKey: m.key }),
				true,
			),
		);
	}

	removeIdentityCertificateListener(
		fn: grpc.experimental.IdentityCertificateUpdateListener,
	): void {
		this.#off.get(fn)?.();
		this.#off.delete(fn);
	}
}

function read(files: TlsFiles): Material {
	const cert = Buffer.from(readSecretFile(files.cert, "--tls-cert"));
	const key = Buffer.from(readSecretFile(files.key, "--tls-key"));
	const ca = files.clientCa
		? Buffer.from(readSecretFile(files.clientCa, "--tls-client-ca"))
		: undefined;
	// A certificate and key that do not belong together would only fail at the first handshake: check them now.
	try {
		createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`TLS files --tls-cert ${files.cert} / --tls-key ${files.key}${files.clientCa ? ` / --tls-client-ca ${files.clientCa}` : ""} cannot be used: ${(err as Error).message}`,
			{ cause: err },
		);
	}
	return { cert, key, ca };
}

/** TLS settings as given: all three off, or cert and key together (a client CA needs them). */
export function tlsFilesFrom(s: {
	tls_cert?: string | undefined;
	tls_key?: string | undefined;
	tls_client_ca?: string | undefined;
}): TlsFiles | undefined {
	if (!s.tls_cert && !s.tls_key && !s.tls_client_ca) return undefined;
	if (!s.tls_cert || !s.tls_key)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`TLS needs both --tls-cert and --tls-key (got only ${s.tls_cert ? "--tls-cert" : s.tls_key ? "--tls-key" : "--tls-client-ca"})`,
		);
	return {
		cert: s.tls_cert,
		key: s.tls_key,
		...(s.tls_client_ca ? { clientCa: s.tls_client_ca } : {}),
	};
}
