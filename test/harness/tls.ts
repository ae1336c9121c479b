// Test harness: certificates made at test time with the openssl CLI — a CA, server certificates for 127.0.0.1 and
// localhost, and a client certificate — for TLS tests of mlship serve and of TLS-enabled PostgreSQL/Redis/NATS/Kafka.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Paths of PEM files (certificates and unencrypted keys) in a temporary directory. */
export interface TestCerts {
	dir: string;
	/** The CA every certificate here is signed by. */
	ca: string;
	caKey: string;
	/** Server certificate and key, valid for 127.0.0.1, ::1 and localhost. */
	serverCert: string;
	serverKey: string;
	/** Client certificate and key (CN `mlship-client`), for mTLS. */
	clientCert: string;
	clientKey: string;
	/** Signs another server certificate (new serial, CN `cn`) with the same CA, for reload tests. */
	issueServer(name: string, cn: string): Promise<{ cert: string; key: string }>;
	/** A CA that signed nothing here (for "untrusted" tests). */
	otherCa(): Promise<string>;
	remove(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
	try {
		await run("openssl", args, { cwd });
	} catch (err) {
		throw new Error(
			`openssl ${args.join(" ")} failed: ${(err as { stderr?: string }).stderr ?? err}; is the openssl CLI installed?`,
			{ cause: err },
		);
	}
}

/**
 * Makes a CA, a server certificate for 127.0.0.1/localhost and a client certificate in a new temp dir (EC P-256
 * keys: fast to make on a loaded machine).
 * @example const certs = await makeCerts(); try { ... certs.serverCert ... } finally { await certs.remove(); }
 */
export async function makeCerts(): Promise<TestCerts> {
	const dir = await mkdtemp(join(tmpdir(), "mlship-certs-"));
	const p = (f: string) => join(dir, f);
	const key = (out: string) =>
		openssl(
			[
				"genpkey",
				"-algorithm",
				"EC",
				"-pkeyopt",
				"ec_paramgen_curve:P-256",
				"-out",
				out,
			],
			dir,
		);
	await key(p("ca.key"));
	await openssl(
		[
			"req",
			"-x509",
			"-new",
			"-key",
			p("ca.key"),
			"-days",
			"2",
			"-subj",
			"/CN=mlship test CA",
			"-addext",
			"basicConstraints=critical,CA:TRUE",
			"-addext",
			"keyUsage=critical,keyCertSign,cRLSign",
			"-out",
			p("ca.pem"),
		],
		dir,
	);
	let serial = 1;
	const sign = async (name: string, cn: string, ext: string) => {
		await key(p(`${name}.key`));
		await openssl(
			[
				"req",
				"-new",
				"-key",
				p(`${name}.key`),
				"-subj",
				`/CN=${cn}`,
				"-out",
				p(`${name}.csr`),
			],
			dir,
		);
		await writeFile(p(`${name}.ext`), ext);
		await openssl(
			[
				"x509",
				"-req",
				"-in",
				p(`${name}.csr`),
				"-CA",
				p("ca.pem"),
				"-CAkey",
				p("ca.key"),
				"-set_serial",
				String(serial++ + Math.floor(Math.random() * 1e6)),
				"-days",
				"2",
				"-extfile",
				p(`${name}.ext`),
				"-out",
				p(`${name}.pem`),
			],
			dir,
		);
		return { cert: p(`${name}.pem`), key: p(`${name}.key`) };
	};
	const serverExt =
		"subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n";
	const server = await sign("server", "127.0.0.1", serverExt);
	const client = await sign(
		"client",
		"mlship-client",
		"extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
	);
	return {
		dir,
		ca: p("ca.pem"),
		caKey: p("ca.key"),
		serverCert: server.cert,
		serverKey: server.key,
		clientCert: client.cert,
		clientKey: client.key,
		issueServer: (name, cn) => sign(name, cn, serverExt),
		async otherCa() {
			await key(p("other-ca.key"));
			await openssl(
				[
					"req",
					"-x509",
					"-new",
					"-key",
					p("other-ca.key"),
					"-days",
					"2",
					"-subj",
					"/CN=other CA",
					"-out",
					p("other-ca.pem"),
				],
				dir,
			);
			return p("other-ca.pem");
		},
		remove: () => rm(dir, { recursive: true, force: true }),
	};
}

/** The text of a PEM file (for clients that take PEM text rather than a path). */
export function pem(path: string): Promise<Buffer> {
	return readFile(path);
}
