// The in-memory bundle shape, apart from reading it, so runtimes depend on it without depending on bundle I/O.
import type { Manifest } from "./manifest.ts";

/** A bundle in memory: its manifest and the bytes of every file it names, verified. */
export interface Bundle {
	manifest: Manifest;
	/** Files by bundle-relative path (the artifact, and the reference data when present). */
	files: Map<string, Uint8Array>;
	/** Where it was read from, for messages. */
	source: string;
}

/** The model artifact's bytes. */
export function artifactBytes(b: Bundle): Uint8Array {
	return b.files.get(b.manifest.artifact.path) as Uint8Array;
}
