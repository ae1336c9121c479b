// `mlship tokens`: create, list and revoke the API tokens `mlship serve` checks (scopes predict, read, admin).
import { Command } from "commander";
import type { TokenInfo } from "../registry/access.ts";
import { checkPatterns, checkScopes } from "../registry/core/tokens.ts";
import { action, example, output } from "./common.ts";
import { timeArg } from "./duration.ts";
import {
	type CommonOpts,
	collect,
	common,
	withRegistry,
} from "./models-common.ts";

function describe(t: TokenInfo): string {
	const parts = [
		t.id.padEnd(17),
		t.scopes.join(",").padEnd(20),
		(t.models.length > 0 ? t.models.join(",") : "*").padEnd(16),
		`created ${t.createdAt.slice(0, 19)}Z by ${t.createdBy}`,
	];
	if (t.expiresAt) parts.push(`expires ${t.expiresAt.slice(0, 19)}Z`);
	if (t.revokedAt) parts.push(`REVOKED ${t.revokedAt.slice(0, 19)}Z`);
	if (t.lastUsedAt) parts.push(`last used ${t.lastUsedAt.slice(0, 19)}Z`);
	if (t.description) parts.push(`— ${t.description}`);
	return parts.join("  ");
}

function createCommand(): Command {
	const cmd = common(
		new Command("create")
			.description(
				"Create an API token and print it once (only its SHA-256 is stored): scopes predict, read, admin",
			)
			.requiredOption(
				"--scope <scopes>",
				"what the token may do: predict, read, admin (comma-separated or repeated)",
				collect,
			)
			.option(
				"--models <patterns>",
				"only these models: names or globs like 'churn*' (comma-separated or repeated; default every model)",
				collect,
			)
			.option(
				"--expires <when>",
				"expiry: a duration (90d, 12h) or an ISO date",
			)
			.option(
				"--description <text>",
				"what the token is for (shown by tokens list)",
			),
	).action(
		action(
			async (
				opts: CommonOpts & {
					scope: string[];
					models?: string[];
					expires?: string;
					description?: string;
				},
			) => {
				const split = (v: string[]) =>
					v
						.flatMap((s) => s.split(","))
						.map((s) => s.trim())
						.filter(Boolean);
				const scopes = checkScopes(split(opts.scope));
				const models = checkPatterns(split(opts.models ?? []));
				const created = await withRegistry(opts.registry, (store) =>
					store.tokens.create({
						scopes,
						models,
						...(opts.expires !== undefined && {
							expiresAt: timeArg(opts.expires, "--expires", 1),
						}),
						...(opts.description !== undefined && {
							description: opts.description,
						}),
					}),
				);
				output(
					Boolean(opts.json),
					{ ...created.info, token: created.token },
					() =>
						`${created.token}\n\ntoken ${created.info.id} (${scopes.join(", ")}${models.length ? `; models ${models.join(", ")}` : ""}${created.info.expiresAt ? `; expires ${created.info.expiresAt}` : ""})\nThis is the only time the token is shown: store it in a secret manager. Clients send it as 'Authorization: Bearer TOKEN'.`,
				);
			},
		),
	);
	return example(
		cmd,
		"mlship tokens create --scope predict --models 'churn*' --expires 90d",
		"mlship tokens create --scope predict,read --description 'checkout service'",
		"mlship tokens create --scope admin --expires 12h --json | jq -r .token",
	);
}

function listCommand(): Command {
	const cmd = common(
		new Command("list")
			.alias("ls")
			.description(
				"List API tokens (never their secrets); revoked ones with --all",
			)
			.option("--all", "include revoked tokens"),
	).action(
		action(async (opts: CommonOpts & { all?: boolean }) => {
			const list = await withRegistry(opts.registry, (store) =>
				store.tokens.list({ includeRevoked: Boolean(opts.all) }),
			);
			output(Boolean(opts.json), list, () =>
				list.length === 0
					? `no tokens${opts.all ? "" : " (revoked ones show with --all)"}: create one with mlship tokens create --scope predict`
					: list.map(describe).join("\n"),
			);
		}),
	);
	return example(cmd, "mlship tokens list", "mlship tokens list --all --json");
}

function revokeCommand(): Command {
	const cmd = common(
		new Command("revoke")
			.description(
				"Revoke an API token: every server sharing the registry refuses it within a second",
			)
			.argument("<id>", "the token's id (tok_…, from tokens list)"),
	).action(
		action(async (id: string, opts: CommonOpts) => {
			const info = await withRegistry(opts.registry, (store) =>
				store.tokens.revoke(id),
			);
			output(Boolean(opts.json), info, () => `revoked ${info.id}`);
		}),
	);
	return example(cmd, "mlship tokens revoke tok_0123456789ab");
}

/** The `mlship tokens` command group. */
export function tokensCommand(): Command {
	const cmd = new Command("tokens")
		.description(
			"API tokens for mlship serve: create (shown once), list, revoke; scopes predict, read, admin",
		)
		.addCommand(createCommand())
		.addCommand(listCommand())
		.addCommand(revokeCommand());
	return example(
		cmd,
		"mlship tokens create --scope predict --models 'churn*' --expires 90d",
		"mlship tokens list",
		"mlship tokens revoke tok_0123456789ab",
	);
}
