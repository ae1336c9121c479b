// `mlship models`: register bundles in the registry, list and show versions, move aliases, archive and delete.
import { Command } from "commander";
import { readBundle } from "../bundle/bundle.ts";
import { MlshipError } from "../protocol/errors.ts";
import { type ModelVersion, parseRef } from "../registry/types.ts";
import { action, example, output, textTable } from "./common.ts";
import { routeCommand } from "./experiments.ts";
import {
	type CommonOpts,
	collect,
	common,
	parseMeta,
	parseVersion,
	withRegistry,
} from "./models-common.ts";
import { registerEntitiesCommand } from "./models-entities.ts";

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
			)
			.option(
				"--allow-signature-change",
				"accept inputs, features or labels that differ from the name's newest version (refused by default, showing the difference)",
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
					allowSignatureChange?: boolean;
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
						allowSignatureChange: opts.allowSignatureChange === true,
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
		"mlship models register ./retrained --name churn --allow-signature-change",
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
			.option("--all-versions", "delete every version and alias of the name")
			.option(
				"--force",
				"delete a version even though aliases point at it (the aliases are deleted too)",
			),
	).action(
		action(
			async (
				r: string,
				opts: CommonOpts & {
					archive?: boolean;
					allVersions?: boolean;
					force?: boolean;
				},
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
						await store.delete(name, version, { force: opts.force === true });
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
		"mlship models rm churn@3 --force",
		"mlship models rm churn --all-versions",
	);
}

function restoreCommand(): Command {
	const cmd = common(
		new Command("restore")
			.description(
				"Undo 'rm --archive': the version is active again, so 'name' lookups and lists see it",
			)
			.argument("<ref>", "name@version of an archived version"),
	).action(
		action(async (r: string, opts: CommonOpts) => {
			const { name, version } = parseRef(r);
			if (version === undefined)
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`give the version to restore: mlship models restore ${name}@<version> (archived ones: mlship models list ${name} --all)`,
				);
			const v = await withRegistry(opts.registry, async (store) => {
				await store.restore(name, version);
				return store.get({ name, version });
			});
			output(
				Boolean(opts.json),
				{ name, version, status: v.status },
				() => `restored ${name}@${version} (active)`,
			);
		}),
	);
	return example(
		cmd,
		"mlship models restore churn@1",
		"mlship models restore churn@1 --json",
	);
}

/** The `mlship models` command group. */
export function modelsCommand(): Command {
	const cmd = new Command("models")
		.description(
			"Manage the model registry: register, list, show, alias, route, rm, restore",
		)
		.addCommand(registerCommand())
		.addCommand(listCommand())
		.addCommand(entitiesCommand())
		.addCommand(registerEntitiesCommand())
		.addCommand(showCommand())
		.addCommand(aliasCommand())
		.addCommand(routeCommand())
		.addCommand(rmCommand())
		.addCommand(restoreCommand());
	return example(
		cmd,
		"mlship models register ./my-bundle --alias production",
		"mlship models list",
		"mlship models show my-model@production",
		"mlship models alias my-model production 2",
		"mlship models route my-model production --split 2=90,3=10",
	);
}
