// `mlship models`: register bundles in the registry, list and show versions, move aliases, archive and delete.
import { Command } from "commander";
import { readBundle } from "../bundle/bundle.ts";
import { MlshipError } from "../protocol/errors.ts";
import { defaultRegistryUri, openRegistry } from "../registry/open.ts";
import {
	type ModelStore,
	type ModelVersion,
	parseRef,
} from "../registry/types.ts";
import {
	action,
	example,
	output,
	Progress,
	textTable,
	wholeNumber,
} from "./common.ts";

interface CommonOpts {
	registry: string;
	json?: boolean;
}

/** Adds --registry and --json to a subcommand. */
function common(cmd: Command): Command {
	return cmd
		.option(
			"--registry <uri>",
			"registry: sqlite:PATH, a .db file or postgres://USER@HOST/DB (env MLSHIP_REGISTRY)",
			defaultRegistryUri(),
		)
		.option("--json", "print machine-readable JSON");
}

/** Opens the registry, runs `fn`, always closes it. */
async function withRegistry<T>(
	uri: string,
	fn: (store: ModelStore) => Promise<T>,
): Promise<T> {
	const store = await openRegistry(uri);
	try {
		return await fn(store);
	} finally {
		await store.close();
	}
}

const collect = (value: string, previous: string[] = []): string[] => [
	...previous,
	value,
];

/** `key=value` is a string; `key:=json` is a JSON value (number, boolean, object…), as in HTTPie. */
export function parseMeta(pairs: string[]): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const pair of pairs) {
		const m = /^([^=:]+)(:?=)(.*)$/s.exec(pair);
		if (!m)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`--meta '${pair}': expected key=value (a string) or key:=json (e.g. accuracy:=0.95)`,
			);
		const [, key = "", op, value = ""] = m;
		if (op === "=") out[key] = value;
		else
			try {
				out[key] = JSON.parse(value);
			} catch {
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`--meta '${pair}': '${value}' is not valid JSON`,
				);
			}
	}
	return out;
}

function parseVersion(s: string): number {
	if (!/^[0-9]+$/.test(s) || Number(s) < 1)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid version '${s}': versions are whole numbers from 1`,
		);
	return Number(s);
}

const short = (sha: string) => sha.slice(0, 12);
const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
const ref = (v: ModelVersion) =>
	`${v.name}@${v.version}${v.entity !== undefined ? ` (entity ${v.entity})` : ""}`;

function summary(v: ModelVersion) {
	return {
		name: v.name,
		version: v.version,
		aliases: v.aliases,
		status: v.status,
		createdAt: v.createdAt,
		task: v.manifest.task ?? null,
		sha256: v.sha256,
		entity: v.entity ?? null,
	};
}

function details(v: ModelVersion): string {
	const m = v.manifest;
	const tensor = (t: { name: string; datatype: string; shape: number[] }) =>
		`    ${t.name}  ${t.datatype}  [${t.shape.join(", ")}]`;
	const json = (o: Record<string, unknown>) =>
		Object.entries(o).map(
			([k, val]) =>
				`    ${k}: ${typeof val === "string" ? val : JSON.stringify(val)}`,
		);
	const lines = [
		`${ref(v)}${v.status === "archived" ? " (archived)" : ""}`,
		...(v.description ? [`  ${v.description}`] : []),
		`  runtime:  ${m.runtime}${m.task ? ` · ${m.task}` : ""}`,
		`  sha256:   ${v.sha256}`,
		`  created:  ${when(v.createdAt)} UTC`,
		`  aliases:  ${v.aliases.join(", ") || "none"}`,
		"  inputs:",
		...m.signature.inputs.map(tensor),
		"  outputs:",
		...m.signature.outputs.map(tensor),
		`  features: ${m.features ? `${m.features.length} (${m.features.map((f) => f.name).join(", ")})` : "none (feed tensors by input name)"}`,
	];
	if (m.labels) lines.push(`  labels:   ${m.labels.join(", ")}`);
	if (Object.keys(v.metadata).length > 0)
		lines.push("  registration metadata:", ...json(v.metadata));
	if (m.metadata && Object.keys(m.metadata).length > 0)
		lines.push("  bundle metadata:", ...json(m.metadata));
	return lines.join("\n");
}

function registerCommand(): Command {
	const cmd = common(
		new Command("register")
			.description(
				"Store a bundle directory (with mlship.yaml) or a bare .onnx file as the next version of a model",
			)
			.argument("<path>", "bundle directory, mlship.yaml or .onnx file")
			.option(
				"--name <name>",
				"register under this name instead of the manifest's",
			)
			.option(
				"--alias <alias>",
				"point this alias at the new version (repeatable)",
				collect,
			)
			.option(
				"--meta <key=value>",
				"registration metadata; key:=json for numbers/objects (repeatable)",
				collect,
			)
			.option(
				"--entity <entity>",
				"register as this entity's model in a per-entity family (served for requests naming it)",
			),
	).action(
		action(
			async (
				path: string,
				opts: CommonOpts & {
					name?: string;
					alias?: string[];
					meta?: string[];
					entity?: string;
				},
			) => {
				const bundle = await readBundle(path);
				const metadata = parseMeta(opts.meta ?? []);
				const v = await withRegistry(opts.registry, (store) =>
					store.register(bundle, {
						...(opts.name !== undefined && { name: opts.name }),
						...(opts.entity !== undefined && { entity: opts.entity }),
						aliases: opts.alias ?? [],
						metadata,
					}),
				);
				output(
					Boolean(opts.json),
					v,
					() =>
						`registered ${ref(v)} (sha256 ${short(v.sha256)})${v.aliases.length ? ` as ${v.aliases.map((a) => `${v.name}@${a}`).join(", ")}` : ""}`,
				);
			},
		),
	);
	return example(
		cmd,
		"mlship models register ./iris-bundle",
		"mlship models register model.onnx --name churn --alias production",
		"mlship models register ./bundle --meta owner=ana --meta accuracy:=0.95",
		"mlship models register ./price-berlin --name price --entity berlin",
	);
}

function listCommand(): Command {
	const cmd = common(
		new Command("list")
			.alias("ls")
			.description("List registered model versions (archived ones with --all)")
			.argument("[name]", "only this model")
			.option("--all", "include archived versions")
			.option("--entity <entity>", "only the versions of this entity"),
	).action(
		action(
			async (
				name: string | undefined,
				opts: CommonOpts & { all?: boolean; entity?: string },
			) => {
				const versions = await withRegistry(opts.registry, (store) =>
					store.list({
						...(name !== undefined && { name }),
						...(opts.entity !== undefined && { entity: opts.entity }),
						includeArchived: Boolean(opts.all),
					}),
				);
				output(Boolean(opts.json), versions.map(summary), () => {
					if (versions.length === 0)
						return name
							? `no versions of '${name}'${opts.all ? "" : " (archived ones show with --all)"}`
							: "no models registered yet (add one: mlship models register ./my-bundle)";
					return textTable(
						[
							"NAME",
							"VERSION",
							"ENTITY",
							"ALIASES",
							"STATUS",
							"CREATED",
							"TASK",
							"SHA256",
						],
						versions.map((v) => [
							v.name,
							String(v.version),
							v.entity ?? "-",
							v.aliases.join(",") || "-",
							v.status,
							when(v.createdAt),
							v.manifest.task ?? "-",
							short(v.sha256),
						]),
					);
				});
			},
		),
	);
	return example(
		cmd,
		"mlship models list",
		"mlship models list churn --all",
		"mlship models list --json",
	);
}

function entitiesCommand(): Command {
	const cmd = common(
		new Command("entities")
			.description(
				"List the entities of a per-entity family with the version serving each (newest active)",
			)
			.argument("<name>", "the family's model name"),
	).action(
		action(async (name: string, opts: CommonOpts) => {
			const list = await withRegistry(opts.registry, (store) =>
				store.entities(name),
			);
			output(Boolean(opts.json), list, () =>
				list.length === 0
					? `model '${name}' has no entity versions (register one: mlship models register ./bundle --name ${name} --entity ENTITY)`
					: `${textTable(
							["ENTITY", "VERSION"],
							list.map((e) => [e.entity, String(e.version)]),
						)}\n${list.length.toLocaleString("en-US")} entities`,
			);
		}),
	);
	return example(
		cmd,
		"mlship models entities price",
		"mlship models entities price --json | jq length",
	);
}

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

function registerEntitiesCommand(): Command {
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
								opts: { name, entity: it.entity, metadata },
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

function showCommand(): Command {
	const cmd = common(
		new Command("show")
			.description(
				"Show one version: signature, features, labels, aliases, metadata",
			)
			.argument(
				"<ref>",
				"name (newest active version), name@version or name@alias",
			),
	).action(
		action(async (r: string, opts: CommonOpts) => {
			const v = await withRegistry(opts.registry, (store) => store.get(r));
			output(Boolean(opts.json), v, () => details(v));
		}),
	);
	return example(
		cmd,
		"mlship models show iris-logreg",
		"mlship models show churn@production --json",
	);
}

function aliasCommand(): Command {
	const cmd = common(
		new Command("alias")
			.description(
				"Point an alias (e.g. production) at a version, or delete it with --delete",
			)
			.argument("<name>", "model name")
			.argument(
				"<alias>",
				"alias (letters, digits, '.', '_', '-'; not only digits)",
			)
			.argument("[version]", "version to point at")
			.option("--delete", "delete the alias"),
	).action(
		action(
			async (
				name: string,
				alias: string,
				version: string | undefined,
				opts: CommonOpts & { delete?: boolean },
			) => {
				if (opts.delete && version !== undefined)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						"give either a version or --delete, not both",
					);
				if (!opts.delete && version === undefined)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`give the version '${name}@${alias}' should point at (e.g. mlship models alias ${name} ${alias} 3), or --delete`,
					);
				await withRegistry(opts.registry, async (store) => {
					if (opts.delete) {
						await store.deleteAlias(name, alias);
						output(
							Boolean(opts.json),
							{ name, alias, deleted: true },
							() => `deleted alias ${name}@${alias}`,
						);
						return;
					}
					const v = parseVersion(version as string);
					await store.setAlias(name, alias, v);
					output(
						Boolean(opts.json),
						{ name, alias, version: v },
						() => `${name}@${alias} → ${name}@${v}`,
					);
				});
			},
		),
	);
	return example(
		cmd,
		"mlship models alias churn production 3",
		"mlship models alias churn canary --delete",
	);
}

function rmCommand(): Command {
	const cmd = common(
		new Command("rm")
			.description(
				"Delete a version (or archive it with --archive); every version of a name with --all-versions",
			)
			.argument("<ref>", "name@version, or a name with --all-versions")
			.option(
				"--archive",
				"archive instead of delete: hidden from 'name' lookups and lists, still loadable as name@version",
			)
			.option("--all-versions", "delete every version and alias of the name"),
	).action(
		action(
			async (
				r: string,
				opts: CommonOpts & { archive?: boolean; allVersions?: boolean },
			) => {
				const { name, version, alias } = parseRef(r);
				if (alias !== undefined)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`'${r}' is an alias; give the version to remove (see 'mlship models show ${r}')`,
					);
				if (version !== undefined && opts.allVersions)
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						`--all-versions takes a bare name ('${name}'), not '${r}'`,
					);
				if (version === undefined && (!opts.allVersions || opts.archive))
					throw new MlshipError(
						"MLSHIP_INVALID_ARGUMENT",
						opts.archive
							? `--archive needs a version: mlship models rm ${name}@<version> --archive`
							: `give a version (mlship models rm ${name}@<version>), or --all-versions to delete every version of '${name}'`,
					);
				await withRegistry(opts.registry, async (store) => {
					if (version === undefined) {
						await store.delete(name);
						output(
							Boolean(opts.json),
							{ name, deleted: true },
							() => `deleted ${name} (every version and alias)`,
						);
					} else if (opts.archive) {
						await store.archive(name, version);
						output(
							Boolean(opts.json),
							{ name, version, archived: true },
							() => `archived ${name}@${version}`,
						);
					} else {
						await store.delete(name, version);
						output(
							Boolean(opts.json),
							{ name, version, deleted: true },
							() => `deleted ${name}@${version}`,
						);
					}
				});
			},
		),
	);
	return example(
		cmd,
		"mlship models rm churn@2",
		"mlship models rm churn@1 --archive",
		"mlship models rm churn --all-versions",
	);
}

/** The `mlship models` command group. */
export function modelsCommand(): Command {
	const cmd = new Command("models")
		.description("Manage the model registry: register, list, show, alias, rm")
		.addCommand(registerCommand())
		.addCommand(listCommand())
		.addCommand(entitiesCommand())
		.addCommand(registerEntitiesCommand())
		.addCommand(showCommand())
		.addCommand(aliasCommand())
		.addCommand(rmCommand());
	return example(
		cmd,
		"mlship models register ./my-bundle --alias production",
		"mlship models list",
		"mlship models show my-model@production",
		"mlship models alias my-model production 2",
	);
}
