// Bundle archives from outside (an upload): a tar or tar.gz stream extracted under limits into a temp dir, always removed.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract } from "tar-stream";
import { MlshipError } from "../protocol/errors.ts";
import { MANIFEST_FILE } from "./bundle.ts";

/** What an archive may hold. Every limit is checked while reading, before the bytes are kept. */
export interface ArchiveLimits {
	/** Largest archive (the bytes received, compressed or not). */
	maxBytes: number;
	/** Most entries (files and directories). */
	maxEntries: number;
	/** Largest sum of the files' sizes once extracted. */
	maxExtractedBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
	maxBytes: 64 * 1024 * 1024,
	maxEntries: 1000,
	maxExtractedBytes: 256 * 1024 * 1024,
};

/** The archive as received: its sha256 and size, and the bundle directory inside the temp dir. */
export interface ExtractedArchive {
	/** The directory holding mlship.yaml (the archive's top level, or its one top-level directory). */
	dir: string;
	sha256: string;
	bytes: number;
	entries: number;
}

const invalid = (where: string, msg: string) =>
	new MlshipError("MLSHIP_INVALID_BUNDLE", `${where}: ${msg}`);

const tooLarge = (where: string, msg: string) =>
	new MlshipError("MLSHIP_PAYLOAD_TOO_LARGE", `${where}: ${msg}`);

/**
 * The path an entry may have inside the bundle, or an error: relative, no `..`, no backslash or NUL, no drive
 * letter. `./a/./b/` becomes `a/b`; the top level itself (`.` or `./`) is "".
 */
export function safeEntryPath(name: string, where: string): string {
	if (name.includes("\0") || name.includes("\\"))
		throw invalid(
			where,
			`entry ${JSON.stringify(name)} has a NUL or backslash in its path`,
		);
	if (name.startsWith("/") || /^[A-Za-z]:/.test(name))
		throw invalid(
			where,
			`entry ${JSON.stringify(name)} has an absolute path; archive the bundle's files with relative paths`,
		);
	const parts = name.split("/").filter((p) => p !== "" && p !== ".");
	if (parts.includes(".."))
		throw invalid(
			where,
			`entry ${JSON.stringify(name)} leaves the bundle ('..' in its path)`,
		);
	return parts.join("/");
}

/** Counts and hashes what passes, failing as soon as more than `max` bytes arrived. */
async function* counted(
	src: AsyncIterable<Uint8Array>,
	max: number,
	where: string,
	seen: { bytes: number; hash: ReturnType<typeof createHash> },
): AsyncGenerator<Uint8Array> {
	for await (const chunk of src) {
		seen.bytes += chunk.length;
		if (seen.bytes > max)
			throw tooLarge(
				where,
				`the archive is larger than the limit of ${max} bytes`,
			);
		seen.hash.update(chunk);
		yield chunk;
	}
}

/** Passes a plain tar through; un-gzips a gzip stream (told by its magic bytes), at most `max` bytes out. */
async function* decompressed(
	src: AsyncIterable<Uint8Array>,
	max: number,
	where: string,
): AsyncGenerator<Uint8Array> {
	const it = src[Symbol.asyncIterator]();
	let head = Buffer.alloc(0);
	let done = false;
	while (head.length < 2 && !done) {
		const r = await it.next();
		if (r.done) done = true;
		else head = Buffer.concat([head, r.value]);
	}
	async function* all(): AsyncGenerator<Uint8Array> {
		if (head.length > 0) yield head;
		while (!done) {
			const r = await it.next();
			if (r.done) return;
			yield r.value;
		}
	}
	if (head[0] !== 0x1f || head[1] !== 0x8b) {
		yield* all();
		return;
	}
	const gunzip = createGunzip();
	// Settled here so that an early stop (the reader refused an entry) leaves no unhandled rejection behind.
	let feedError: unknown;
	const fed = pipeline(Readable.from(all()), gunzip).catch((err: unknown) => {
		feedError = err;
	});
	let out = 0;
	try {
		for await (const chunk of gunzip as AsyncIterable<Buffer>) {
			out += chunk.length;
			// A gzip bomb: refuse once the tar stream is larger than the files may be plus their headers.
			if (out > max)
				throw tooLarge(where, `the archive un-gzips to more than ${max} bytes`);
			yield chunk;
		}
		await fed;
		if (feedError !== undefined) throw feedError;
	} catch (err) {
		if (err instanceof MlshipError) throw err;
		throw invalid(where, `not a valid gzip stream: ${(err as Error).message}`);
	} finally {
		gunzip.destroy();
	}
}

/** Writes one entry's bytes to `path` (which must not exist yet: a duplicate entry is refused). */
async function writeEntry(
	src: AsyncIterable<Uint8Array>,
	path: string,
): Promise<void> {
	await pipeline(src, createWriteStream(path, { flags: "wx", mode: 0o644 }));
}

/**
 * Extracts a tar (or tar.gz) stream into a new temp dir, calls `use` with the bundle directory in it, and removes
 * the temp dir afterwards whatever happens. Refused (nothing kept): more than `limits.maxBytes` received, more
 * entries or extracted bytes than allowed, an absolute path or `..`, a symlink, hardlink or device, a duplicate
 * entry, a sha256 other than `expectedSha256`, no mlship.yaml. Limits are checked as the bytes arrive.
 * @example await withExtractedArchive(req.raw, { expectedSha256 }, (a) => readBundle(a.dir))
 */
export async function withExtractedArchive<T>(
	body: AsyncIterable<Uint8Array>,
	opts: {
		expectedSha256?: string;
		limits?: Partial<ArchiveLimits>;
		/** Names the archive in errors (default "the archive"). */
		where?: string;
	},
	use: (archive: ExtractedArchive) => Promise<T>,
): Promise<T> {
	const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...opts.limits };
	const where = opts.where ?? "the archive";
	const root = await mkdtemp(join(tmpdir(), "mlship-upload-"));
	try {
		const seen = { bytes: 0, hash: createHash("sha256") };
		let entries = 0;
		let extracted = 0;
		const ex = extract();
		const reading = pipeline(
			counted(body, limits.maxBytes, where, seen),
			// Each entry costs a 512-byte header (more with pax records): allow for them on top of the files.
			(src: AsyncIterable<Uint8Array>) =>
				decompressed(
					src,
					limits.maxExtractedBytes + (limits.maxEntries + 4) * 2048,
					where,
				),
			ex,
		);
		const writing = (async () => {
			for await (const entry of ex) {
				const h = entry.header;
				entries += 1;
				if (entries > limits.maxEntries)
					throw tooLarge(where, `more than ${limits.maxEntries} entries`);
				const rel = safeEntryPath(h.name, where);
				if (h.type === "directory") {
					if (rel !== "") await mkdir(join(root, rel), { recursive: true });
					entry.resume();
					continue;
				}
				if (h.type !== "file" && h.type !== "contiguous-file")
					throw invalid(
						where,
						`entry ${JSON.stringify(h.name)} is a ${h.type}${h.linkname ? ` to ${JSON.stringify(h.linkname)}` : ""}; only regular files and directories are accepted`,
					);
				if (rel === "")
					throw invalid(
						where,
						`entry ${JSON.stringify(h.name)} is a file without a name`,
					);
				extracted += h.size;
				if (extracted > limits.maxExtractedBytes)
					throw tooLarge(
						where,
						`the files extract to more than ${limits.maxExtractedBytes} bytes (at ${JSON.stringify(h.name)})`,
					);
				const dest = resolve(root, rel);
				if (!dest.startsWith(root + sep))
					throw invalid(
						where,
						`entry ${JSON.stringify(h.name)} leaves the bundle`,
					);
				await mkdir(resolve(dest, ".."), { recursive: true });
				try {
					await writeEntry(entry as AsyncIterable<Uint8Array>, dest);
				} catch (err) {
					const code = (err as NodeJS.ErrnoException).code;
					if (code === "EEXIST" || code === "EISDIR")
						throw invalid(
							where,
							`entry ${JSON.stringify(h.name)} appears twice`,
						);
					throw err;
				}
			}
		})();
		try {
			await Promise.all([reading, writing]);
		} catch (err) {
			ex.destroy();
			await Promise.allSettled([reading, writing]);
			if (err instanceof MlshipError) throw err;
			throw invalid(
				where,
				`not a valid tar archive: ${(err as Error).message}`,
			);
		}
		if (entries === 0)
			throw invalid(
				where,
				"the archive is empty; send a tar of the bundle directory",
			);
		const sha256 = seen.hash.digest("hex");
		if (opts.expectedSha256 !== undefined && sha256 !== opts.expectedSha256)
			throw new MlshipError(
				"MLSHIP_INTEGRITY",
				`${where}: sha256 of the ${seen.bytes} bytes received is ${sha256} but the request says ${opts.expectedSha256}; the upload was cut or changed on the way (send it again), or the digest is of another file`,
			);
		const dir = await bundleRoot(root, where);
		return await use({ dir, sha256, bytes: seen.bytes, entries });
	} finally {
		await rm(root, { recursive: true, force: true });
	}
}

/** The directory holding mlship.yaml: the top level, or the archive's only top-level directory. */
async function bundleRoot(root: string, where: string): Promise<string> {
	const has = (d: string) =>
		stat(join(d, MANIFEST_FILE)).then(
			(s) => s.isFile(),
			() => false,
		);
	if (await has(root)) return root;
	const top = await readdir(root, { withFileTypes: true });
	const only = top.length === 1 ? top[0] : undefined;
	if (only?.isDirectory() && (await has(join(root, only.name))))
		return join(root, only.name);
	throw invalid(
		where,
		`no ${MANIFEST_FILE} at the top of the archive (or in its one top-level directory); found: ${
			top
				.map((e) => e.name)
				.slice(0, 8)
				.join(", ") || "nothing"
		}`,
	);
}
