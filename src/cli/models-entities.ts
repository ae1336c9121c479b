// `mlship models register-entities`: many per-entity models of one family in a few transactions.
import { Command } from "commander";
import { readBundle } from "../bundle/bundle.ts";
import { MlshipError } from "../protocol/errors.ts";
import type { ModelVersion } from "../registry/types.ts";
import { action, example, output, Progress, wholeNumber } from "./common.ts";
import {
	type CommonOpts,
	collect,
	common,
	parseMeta,
	withRegistry,
} from "./models-common.ts";

/** One entity's bundle to register in bulk. */
interface EntityItem {
	entity: string;
	path: string;
}

/** Reads `entity,path` lines (CSV with that header, or JSON lines `{"entity", "path"}`), paths relative to the file. */
async function readEntityList(file: string): Promise<EntityItem[]> {
	const { readFile } = await import("node:fs/promises");
	const { dirname, resolve } = await import("node:path");
	const base = dirname(resolve(file));
	const lines = (await readFile(file, "utf8"))
		.split(/\r?\n/)
		.map((l) => l.trim())
		.filter((l) => l !== "");
	const items: EntityItem[] = [];
	const jsonl = lines[0]?.startsWith("{");
	if (!jsonl && lines[0]?.replace(/\s/g, "") !== "entity,path")
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`${file}: expected a CSV header 'entity,path' or JSON lines {"entity": ..., "path": ...}`,
		);
	for (let i = jsonl ? 0 : 1; i < lines.length; i++) {
		const line = lines[i] as string;
		let entity: unknown;
		let path: unknown;
		if (jsonl) {
			try {
				({ entity, path } = JSON.parse(line) as Record<string, unknown>);
			} catch (err) {
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`${file} line ${i + 1}: ${(err as Error).message}`,
				);
			}
		} else {
			const comma = line.lastIndexOf(",");
			entity = line.slice(0, comma);
			path = line.slice(comma + 1);
		}
		if (
			typeof entity !== "string" ||
			typeof path !== "string" ||
			!entity ||
			!path
		)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`${file} line ${i + 1}: expected an entity and a path`,
			);
		items.push({ entity, path: resolve(base, path) });
	}
	return items;
}

export function registerEntitiesCommand(): Command {
	const cmd = common(
		new Command("register-entities")
			.description(
				"Register many per-entity models of one family at once: every sub-directory of --dir (named by its entity), the `entity,path` list of --list, or one bundle for every entity of --entities",
			)
			.argument("<name>", "the family's model name")
			.option(
				"--dir <dir>",
				"a directory of bundles, one per entity, each named by its entity",
			)
			.option(
				"--list <file>",
				"CSV with header entity,path (or JSON lines) naming each entity's bundle",
			)
			.option(
				"--bundle <path>",
				"one bundle registered for every entity of --entities",
			)
			.option(
				"--entities <list>",
				"comma-separated entities (with --bundle), or @file with one entity per line",
			)
			.option(
				"--batch <n>",
				"registrations per transaction",
				wholeNumber(),
				500,
			)
			.option(
				"--meta <key=value>",
				"registration metadata for every version (repeatable)",
				collect,
			)
			.option(
				"--allow-signature-change",
				"accept an entity's inputs, features or labels that differ from its newest version",
			),
	).action(
		action(
			async (
				name: string,
				opts: CommonOpts & {
					dir?: string;
					list?: string;
					bundle?: string;
					entities?: string;
					batch: number;
					meta?: string[];
					allowSignatureChange?: boolean;
				},
			) => {
				const { readdir, readFile } = await import("node:fs/promises");
				const { join } = await import("node:path");
				const sources = [opts.dir, opts.list, opts.bundle].filter(
					(x) => x !== undefined,
				).length;
				if (
					sources !== 1 ||
					(opts.bundle !== undefined) !== (opts.entities !== undefined)
				)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						"give exactly one of --dir DIR, --list FILE, or --bundle PATH with --entities LIST",
					);
				const batch = opts.batch;
				let items: EntityItem[];
				if (opts.dir !== undefined) {
					const dir = opts.dir;
					items = (await readdir(dir, { withFileTypes: true }))
						.filter((d) => d.isDirectory())
						.map((d) => ({ entity: d.name, path: join(dir, d.name) }))
						.sort((a, b) => (a.entity < b.entity ? -1 : 1));
				} else if (opts.list !== undefined)
					items = await readEntityList(opts.list);
				else {
					const text = opts.entities as string;
					const list = text.startsWith("@")
						? (await readFile(text.slice(1), "utf8")).split(/\r?\n/)
						: text.split(",");
					items = list
						.map((e) => e.trim())
						.filter(Boolean)
						.map((entity) => ({ entity, path: opts.bundle as string }));
				}
				if (items.length === 0)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						"no entities to register",
					);
				const metadata = parseMeta(opts.meta ?? []);
				const started = performance.now();
				const progress = new Progress(
					"registering",
					items.length,
					!opts.json && process.stderr.isTTY === true,
				);
				const bundles = new Map<
					string,
					Awaited<ReturnType<typeof readBundle>>
				>();
				const versions: ModelVersion[] = [];
				await withRegistry(opts.registry, async (store) => {
					for (let i = 0; i < items.length; i += batch) {
						const part = items.slice(i, i + batch);
						const toRegister = [];
						for (const it of part) {
							let b = bundles.get(it.path);
							if (!b) {
								b = await readBundle(it.path);
								// One bundle for many entities is read once; distinct bundles are not kept.
								if (opts.bundle !== undefined) bundles.set(it.path, b);
							}
							toRegister.push({
								bundle: b,
								opts: {
									name,
									entity: it.entity,
									metadata,
									allowSignatureChange: opts.allowSignatureChange === true,
								},
							});
						}
						versions.push(...(await store.registerMany(toRegister)));
						progress.update(versions.length, undefined, true);
					}
				});
				progress.done(versions.length);
				const secs = (performance.now() - started) / 1000;
				const result = {
					name,
					registered: versions.length,
					first_version: versions[0]?.version,
					last_version: versions[versions.length - 1]?.version,
					seconds: Number(secs.toFixed(3)),
				};
				output(
					Boolean(opts.json),
					result,
					() =>
						`registered ${result.registered.toLocaleString("en-US")} entity models of '${name}' (versions ${result.first_version}–${result.last_version}) in ${secs.toFixed(1)} s`,
				);
			},
		),
	);
	return example(
		cmd,
		"mlship models register-entities price --dir ./models-by-city",
		"mlship models register-entities price --list entities.csv --json",
		"mlship models register-entities price --bundle ./base --entities berlin,paris,rome",
	);
}
