// The entity-family router: which entry serves a request to a per-entity family (the entity's model, or the default).
import type { Row } from "../codec/table.ts";
import {
	invalidInput,
	MlshipError,
	toMlshipError,
} from "../protocol/errors.ts";
import type { InferenceRequest, Tensor } from "../protocol/types.ts";
import { assertEntity, type ChangeEvent, parseRef } from "../registry/types.ts";
import type { ModelCache } from "./cache.ts";
import {
	type Entry,
	type Family,
	isRegistryRef,
	type ModelSpec,
} from "./entry.ts";

/** A family for a spec with an entity key; its default must be a registry reference. */
export function newFamily(spec: ModelSpec): Family {
	if (!isRegistryRef(spec.source) || parseRef(spec.source).entity !== undefined)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`model '${spec.name}': a per-entity family needs a registry reference as its default (name or name@alias), got '${spec.source}'`,
		);
	return {
		key: spec.entityKey as string,
		registryName: parseRef(spec.source).name,
		fallback: spec.entityFallback ?? true,
		index: undefined,
		indexLoad: undefined,
		members: new Map(),
	};
}

/** Routes requests to family members and keeps each family's entity index current. */
export class EntityRouter {
	readonly #cache: ModelCache;

	constructor(cache: ModelCache) {
		this.#cache = cache;
	}

	/**
	 * `route` without a promise when no registry lookup is needed (a plain model, or a family's default): undefined
	 * when the caller must `route` (an entity of a family). Throws what `route` throws.
	 */
	routeNow(name: string, entity: string | undefined): Entry | undefined {
		const e = this.#cache.entry(name);
		const f = e.family;
		if (!f) {
			if (entity !== undefined)
				throw invalidInput(
					`model '${name}' is not a per-entity family; drop the entity '${entity}' (or serve it with an entity key)`,
				);
			return e;
		}
		if (entity === undefined) {
			if (!f.fallback)
				throw invalidInput(
					`model '${name}' serves one model per ${f.key}: name the entity (header x-mlship-entity, parameter '${f.key}', or a '${f.key}' feature)`,
				);
			return e;
		}
		return undefined;
	}

	/**
	 * Which entry serves a request: the named model; for a per-entity family, the entity's member when the
	 * registry has a model for it, else the family's default (when fallback is on).
	 */
	async route(name: string, entity: string | undefined): Promise<Entry> {
		const now = this.routeNow(name, entity);
		if (now !== undefined) return now;
		const e = this.#cache.entry(name);
		const f = e.family as Family;
		if (entity === undefined) return e; // unreachable: routeNow answers it
		try {
			assertEntity(entity);
		} catch (err) {
			throw invalidInput(`${f.key}: ${(err as Error).message}`);
		}
		const index = await this.index(f);
		if (!index.has(entity)) {
			if (!f.fallback)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${name}' has no model for ${f.key} '${entity}' (and no fallback to its default)`,
				);
			return e;
		}
		let m = f.members.get(entity);
		if (!m) {
			m = {
				spec: { name, source: `${f.registryName}#${entity}` },
				state: "UNLOADED",
				reason: "loads on its first request",
				served: undefined,
				loading: undefined,
				lastUsed: 0,
				entity,
			};
			f.members.set(entity, m);
		}
		return m;
	}

	/** The family's entity index, read from the registry on first use (the change feed keeps it current). */
	async index(f: Family): Promise<Map<string, number>> {
		if (f.index) return f.index;
		f.indexLoad ??= (async () => {
			try {
				const list = await (await this.#cache.store()).entities(f.registryName);
				f.index = new Map(list.map((x) => [x.entity, x.version]));
				return f.index;
			} finally {
				f.indexLoad = undefined;
			}
		})();
		return f.indexLoad;
	}

	/**
	 * Keeps a family's index current for one entity's change; returns the member to refresh when it is loaded
	 * (or loading), after forgetting one that is not (it failed earlier: the next request loads the new version).
	 */
	async entityChanged(
		f: Family,
		entity: string,
		type: ChangeEvent["type"],
		version: number | undefined,
	): Promise<Entry | undefined> {
		if (f.index) {
			if (type === "registered" && version !== undefined)
				f.index.set(entity, Math.max(version, f.index.get(entity) ?? 0));
			else if (
				type === "archived" ||
				type === "deleted" ||
				type === "restored"
			) {
				try {
					const v = await (await this.#cache.store()).get({
						name: f.registryName,
						entity,
					});
					f.index.set(entity, v.version);
				} catch (err) {
					if (toMlshipError(err).code === "MLSHIP_MODEL_NOT_FOUND")
						f.index.delete(entity);
				}
			}
		}
		const m = f.members.get(entity);
		if (!m) return undefined;
		if (m.loading || m.served) return m;
		f.members.delete(entity);
		return undefined;
	}
}

/** Rows of records grouped by entity (the `key` column, else `fallback`), in first-seen order, as row indices. */
export function groupByEntity(
	rows: readonly Row[],
	key: string,
	fallback: string | undefined,
): Map<string | undefined, number[]> {
	const groups = new Map<string | undefined, number[]>();
	for (let i = 0; i < rows.length; i++) {
		const v = (rows[i] as Row)[key];
		let entity = fallback;
		if (v !== undefined && v !== null) {
			if (typeof v !== "string" && typeof v !== "number")
				throw invalidInput(
					`row ${i + 1}, column '${key}': the entity must be a string or number, got ${typeof v}`,
				);
			entity = String(v);
		}
		const g = groups.get(entity);
		if (g) g.push(i);
		else groups.set(entity, [i]);
	}
	return groups;
}

/**
 * The entity of an OIP request to a family: the transport's (header), else `parameters.entity` or
 * `parameters[key]`, else an input tensor named `key` that the model does not read (one value for the whole
 * request; it is removed from the inputs).
 */
export function entityOfRequest(
	key: string,
	request: InferenceRequest,
	fromTransport: string | undefined,
): { entity: string | undefined; inputs: Tensor[] } {
	let entity = fromTransport;
	const p = request.parameters;
	for (const k of ["entity", key]) {
		const v = p?.[k];
		if (entity === undefined && v !== undefined && v !== null) {
			if (typeof v !== "string" && typeof v !== "number")
				throw invalidInput(
					`parameters.${k}: the entity must be a string or number`,
				);
			entity = String(v);
		}
	}
	const t = request.inputs.find((x) => x.name === key);
	if (!t) return { entity, inputs: request.inputs };
	const values = Array.from(t.data as ArrayLike<unknown>, (v) =>
		v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v),
	);
	const first = values[0];
	if (first === undefined || values.some((v) => v !== first))
		throw invalidInput(
			`input '${key}': one infer request is served by one entity's model, but it holds ${new Set(values).size} different entities; send one request per entity, or records to the predict route (grouped by '${key}')`,
		);
	if (entity !== undefined && entity !== first)
		throw invalidInput(
			`input '${key}' says entity '${first}' but the request names '${entity}'`,
		);
	return { entity: first, inputs: request.inputs.filter((x) => x !== t) };
}

/** Columns (`{col: [v…]}`) as records. */
export function columnsToRows(cols: Record<string, unknown[]>): Row[] {
	if (cols === null || typeof cols !== "object")
		throw invalidInput("expected records (a list of objects) or columns");
	const names = Object.keys(cols);
	const n = Math.max(
		0,
		...names.map((c) => {
			const v: unknown = cols[c];
			// A typed array is a column too (the stream's decode thread hands numbers over as Float64Array views).
			return Array.isArray(v) ||
				(ArrayBuffer.isView(v) && !(v instanceof DataView))
				? (v as ArrayLike<unknown>).length
				: 0;
		}),
	);
	const rows: Row[] = [];
	for (let i = 0; i < n; i++) {
		const r: Row = {};
		for (const c of names) r[c] = (cols[c] as unknown[])[i];
		rows.push(r);
	}
	return rows;
}
