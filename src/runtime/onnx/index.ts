// The ONNX runtime: onnxruntime-node sessions, inline on the calling thread or on a worker-thread pool.
import { createHash } from "node:crypto";
import { artifactBytes, type Bundle } from "../../bundle/types.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature, Tensor } from "../../protocol/types.ts";
import {
	calibrateInline,
	DEFAULT_INLINE_MAX_US,
	IDLE_INLINE_FACTOR,
	type InlineCost,
	InlinePolicy,
} from "../inline.ts";
import { defaultWorkers, WorkerPool } from "../pool.ts";
import type {
	LoadedModel,
	LoadOptions,
	Runtime,
	SharedBytes,
	SharedExecutor,
} from "../types.ts";
import { BlockingSession, checkGraph } from "./blocking.ts";
import { checkSignature } from "./check.ts";
import { readOnnxCategories } from "./graph.ts";
import {
	createSession,
	type OrtSession,
	readOnnxSignature,
	runSession,
	sessionSignature,
} from "./session.ts";
import { type PoolSlot, SharedOnnxPool } from "./shared-pool.ts";
import { SyncSession } from "./sync.ts";
import { WORKER_URL } from "./worker-url.ts";

export { checkSignature };

/** The sessions of one artifact: an inline session, a pool slot, or both. */
interface Sessions {
	inline: OrtSession | undefined;
	pool: PoolSlot | undefined;
	/** The graph's signature, read once. */
	graph: Signature;
	/** The inline session's measured cost (executor.inline auto, with a pool beside it). */
	cost: InlineCost | undefined;
}

async function releaseSessions(s: Sessions): Promise<void> {
	await Promise.all([s.inline?.release(), s.pool?.close()]);
}

class OnnxModel implements LoadedModel {
	readonly signature: Signature;
	readonly concurrency: number;
	readonly bytes: number;
	readonly shared: SharedBytes | undefined;
	readonly #inline: OrtSession | undefined;
	readonly #pool: PoolSlot | undefined;
	readonly #inlinePolicy: InlinePolicy;
	readonly #release: () => Promise<void>;
	#closed = false;

	constructor(
		signature: Signature,
		sessions: Sessions,
		release: () => Promise<void>,
		inlinePolicy: InlinePolicy,
		concurrency: number,
		bytes: number,
		shared: SharedBytes | undefined,
	) {
		this.signature = signature;
		this.concurrency = concurrency;
		this.bytes = bytes;
		this.shared = shared;
		this.#inline = sessions.inline;
		this.#pool = sessions.pool;
		this.#release = release;
		this.#inlinePolicy = inlinePolicy;
	}

	/** Where batches run: the policy and the cost it was measured at (tests, `mlship tune`). */
	get inlinePolicy(): InlinePolicy {
		return this.#inlinePolicy;
	}

	async predict(
		inputs: Tensor[],
		outputs?: readonly string[],
		busy = false,
	): Promise<Tensor[]> {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		// Inputs and output names were checked against the signature by the caller (the model instance).
		const rows = inputs[0]?.shape[0] ?? 0;
		const wanted =
			outputs && outputs.length > 0
				? outputs
				: this.signature.outputs.map((o) => o.name);
		// A batch cheaper than a hand-off to a worker runs inline (executor.inline auto: by the cost measured at
		// load, busy or not); a dearer one goes to the pool, keeping the calling thread free to parse and answer.
		if (this.#inline && (!this.#pool || this.#inlinePolicy.inline(rows, busy)))
			return runSession(this.#inline, inputs, wanted);
		return (this.#pool as PoolSlot).call<Tensor[]>({
			inputs,
			outputs: wanted,
		});
	}

	async unload(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		await this.#release();
	}
}

/** Sessions loaded on a shared pool, by artifact sha256 and session options, with the number of models using them. */
interface Held {
	sessions: Promise<Sessions>;
	users: number;
}
const heldByPool = new WeakMap<SharedOnnxPool, Map<string, Held>>();

/**
 * The sessions of `bytes` on a shared pool: byte-identical artifacts (per-entity families of identical retrains)
 * loaded with the same options share one inline session and one pool slot, counted by users; the last `release`
 * unloads them. Concurrent loads of the same artifact wait for one load.
 */
function shareSessions(
	pool: SharedOnnxPool,
	key: string,
	open: () => Promise<Sessions>,
): { sessions: Promise<Sessions>; release: () => Promise<void> } {
	let held = heldByPool.get(pool);
	if (!held) {
		held = new Map();
		heldByPool.set(pool, held);
	}
	const map = held;
	let h = map.get(key);
	if (!h) {
		const entry: Held = { sessions: open(), users: 0 };
		// A failed load is forgotten, so the next load of the artifact tries again.
		entry.sessions.catch(() => {
			if (map.get(key) === entry) map.delete(key);
		});
		map.set(key, entry);
		h = entry;
	}
	const mine = h;
	mine.users++;
	let released = false;
	return {
		sessions: mine.sessions,
		release: async () => {
			if (released) return;
			released = true;
			if (--mine.users > 0) return;
			if (map.get(key) === mine) map.delete(key);
			await releaseSessions(await mine.sessions);
		},
	};
}

/**
 * Models whose sessions are shared with byte-identical artifacts on `pool`, and how many distinct session sets hold
 * them (for tests and metrics).
 * @example sharedSessions(pool) // { sets: 1, users: 2 }
 */
export function sharedSessions(pool: SharedExecutor): {
	sets: number;
	users: number;
} {
	const map = pool instanceof SharedOnnxPool ? heldByPool.get(pool) : undefined;
	let users = 0;
	for (const h of map?.values() ?? []) users += h.users;
	return { sets: map?.size ?? 0, users };
}

/**
 * A model the caller runs synchronously (SQL functions): on the calling thread through the native session
 * (SyncSession), or, where this onnxruntime-node has none, on one worker thread the caller waits for.
 */
class BlockingOnnxModel implements LoadedModel {
	readonly signature: Signature;
	readonly concurrency = 1;
	readonly bytes: number;
	readonly #session: BlockingSession | SyncSession;

	constructor(
		signature: Signature,
		session: BlockingSession | SyncSession,
		bytes: number,
	) {
		this.signature = signature;
		this.#session = session;
		this.bytes = bytes;
	}

	predictSync(inputs: Tensor[], outputs: readonly string[]): Tensor[] {
		return this.#session.run(inputs, outputs);
	}

	async predict(
		inputs: Tensor[],
		outputs?: readonly string[],
	): Promise<Tensor[]> {
		return this.#session.run(
			inputs,
			outputs && outputs.length > 0
				? outputs
				: this.signature.outputs.map((o) => o.name),
		);
	}

	unload(): Promise<void> {
		return this.#session.close();
	}
}

/**
 * Estimated memory of a loaded model: ~16 KiB of its own (instance, scheduler, entry, metrics children) plus, per
 * onnxruntime session (inline and one per worker), ~143 KiB + 5.6 × the artifact's bytes. The per-session part's
 * slope is fitted to RSS growth over 200 loads of each fixture (linear, GBDT, random forest, MLP). The split between
 * the two comes from bench/lifecycle: 10,000 family members of one artifact (sessions shared) grew the server's RSS
 * by 19.5 KiB each (the model's own part), and 1,000 members with sessions of their own by 459 KiB each for the
 * 532-byte iris model (own part + 3 sessions), so an estimate matches RSS whether sessions are shared or not. The
 * own part was refitted after a cold load stopped walking every member and stat'ing the disk: 10,000 members grew
 * RSS by 15 KiB each on a quiet machine and 17.6 KiB on a loaded one (bench/lifecycle, 2026-11-28).
 */
function estimateBytes(sessions: number, artifact: number): number {
	return MODEL_BASE_BYTES + estimateSessionBytes(sessions, artifact);
}

/** The per-model part of estimateBytes (never shared). */
const MODEL_BASE_BYTES = 16 * 1024;

/** The sessions' part of estimateBytes (shared by byte-identical artifacts on a shared pool). */
function estimateSessionBytes(sessions: number, artifact: number): number {
	return sessions * (143 * 1024 + 5.6 * artifact);
}

/** What onnxruntime says of bytes that are no ONNX model at all (not protobuf, empty, or protobuf without a graph). */
const NOT_ONNX =
	/protobuf parsing failed|Model data pointer is null|No graph was found/i;

/** Runs ONNX models (including ONNX-ML tree, linear and string ops) with onnxruntime-node. */
export const onnxRuntime: Runtime = {
	name: "onnx",
	platform: "onnx_onnxv1",
	startShared(workers?: number, intraOpThreads = 1) {
		return SharedOnnxPool.start(workers, intraOpThreads);
	},
	async describe(bytes: Uint8Array, source: string) {
		try {
			const { signature, skipped } = await readOnnxSignature(bytes);
			return { signature, skipped, categories: readOnnxCategories(bytes) };
		} catch (err) {
			if (bytes.length === 0 || NOT_ONNX.test((err as Error).message))
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`not an ONNX model: ${source}${bytes.length === 0 ? " (the file is empty)" : ""}; give the .onnx file your converter wrote (e.g. skl2onnx, tf2onnx, torch.onnx.export)`,
					{ cause: err },
				);
			throw err;
		}
	},
	async load(bundle: Bundle, opts: LoadOptions = {}): Promise<LoadedModel> {
		const ex = bundle.manifest.executor ?? {};
		const mode = opts.mode ?? ex.mode ?? "auto";
		const threads = opts.intraOpThreads ?? ex.intra_op_threads ?? 1;
		const bytes = artifactBytes(bundle);
		if (mode === "blocking") {
			await checkGraph(bundle, bytes);
			return new BlockingOnnxModel(
				bundle.manifest.signature,
				SyncSession.open(bytes, threads) ??
					(await BlockingSession.start(bundle, { intraOpThreads: threads })),
				estimateBytes(1, bytes.length),
			);
		}
		if (opts.shared && !(opts.shared instanceof SharedOnnxPool))
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				"LoadOptions.shared must come from the onnx runtime's startShared()",
			);
		const shared = opts.shared;
		const inlineSetting = opts.inline ?? ex.inline ?? "auto";
		const inlineMaxUs =
			opts.inlineMaxUs ?? ex.inline_max_us ?? DEFAULT_INLINE_MAX_US;
		const workers =
			shared?.workers ?? opts.workers ?? ex.workers ?? defaultWorkers(threads);
		const open = async (): Promise<Sessions> => {
			const session = await createSession(bytes, threads);
			const graph = sessionSignature(session).signature;
			let pool: PoolSlot | undefined;
			if (mode !== "inline") {
				try {
					pool = shared
						? await shared.add(bytes, threads)
						: await WorkerPool.start(
								WORKER_URL,
								{ bytes, intraOpThreads: threads },
								workers,
							);
				} catch (err) {
					await session.release();
					throw err;
				}
			}
			if (mode === "pool") {
				await session.release();
				return { inline: undefined, pool, graph, cost: undefined };
			}
			// Timed once per session set (byte-identical artifacts on a shared pool share it): only auto with a
			// pool beside the inline session has a choice to make.
			const cost =
				pool && inlineSetting === "auto"
					? await calibrateInline(
							graph,
							(inputs) =>
								runSession(
									session,
									inputs,
									graph.outputs.map((o) => o.name),
								),
							IDLE_INLINE_FACTOR * inlineMaxUs,
						)
					: undefined;
			return { inline: session, pool, graph, cost };
		};
		// On a shared pool (serving many models) byte-identical artifacts share their sessions.
		const key = shared
			? `onnx:${createHash("sha256").update(bytes).digest("hex")}:${threads}:${mode}:${inlineSetting}`
			: undefined;
		const share =
			shared && key !== undefined
				? shareSessions(shared, key, open)
				: undefined;
		let sessions: Sessions;
		try {
			sessions = await (share?.sessions ?? open());
		} catch (err) {
			await share?.release();
			throw err;
		}
		const release = share?.release ?? (() => releaseSessions(sessions));
		try {
			checkSignature(bundle.manifest.signature, sessions.graph, bundle.source);
		} catch (err) {
			await release();
			throw err;
		}
		const count = (sessions.inline ? 1 : 0) + (sessions.pool ? workers : 0);
		const sessionBytes = estimateSessionBytes(count, bytes.length);
		return new OnnxModel(
			bundle.manifest.signature,
			sessions,
			release,
			new InlinePolicy(
				inlineSetting,
				opts.inlineMaxRows ?? ex.inline_max_rows ?? 64,
				inlineMaxUs,
				sessions.cost,
			),
			// Only an explicit inline load runs one batch at a time (as before: a bundle's mode does not).
			opts.mode === "inline" ? 1 : workers,
			MODEL_BASE_BYTES + sessionBytes,
			key !== undefined ? { key, bytes: sessionBytes } : undefined,
		);
	},
};
