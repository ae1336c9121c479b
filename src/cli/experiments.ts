// `mlship models route` (traffic policies on aliases) and `mlship experiments list|show` (policies and live figures).
import { Command, Option } from "commander";
import type { ShadowSummary } from "../dataplane/types.ts";
import {
	type BanditAlgorithm,
	parsePairs,
	type StoredRoute,
	type TrafficPolicyInput,
} from "../experiments/policy.ts";
import { MlshipError } from "../protocol/errors.ts";
import { parseRef } from "../registry/types.ts";
import { action, example, output, textTable } from "./common.ts";
import { type CommonOpts, common, withRegistry } from "./models-common.ts";

interface RouteOpts extends CommonOpts {
	split?: string;
	stickyKey?: string;
	stickyFrom: "header" | "param" | "feature";
	shadow?: string;
	bandit?: string;
	arms?: string;
	salt?: string;
	clear?: boolean;
}

function bad(message: string): MlshipError {
	return new MlshipError("MLSHIP_INVALID_ARGUMENT", message);
}

/** `thompson`, `ucb1`, `epsilon` or `epsilon:0.1` as a bandit's algorithm and epsilon. */
function parseBandit(text: string): {
	algorithm: BanditAlgorithm;
	epsilon?: number;
} {
	const m = /^(thompson|ucb1|epsilon)(?::(\d*\.?\d+))?$/.exec(text.trim());
	if (!m || (m[2] !== undefined && m[1] !== "epsilon"))
		throw bad(
			`--bandit expects thompson, ucb1 or epsilon[:E] (e.g. epsilon:0.1), got '${text}'`,
		);
	const out: { algorithm: BanditAlgorithm; epsilon?: number } = {
		algorithm: m[1] as BanditAlgorithm,
	};
	if (m[2] !== undefined) out.epsilon = Number(m[2]);
	return out;
}

/** The policy the flags describe (the registry checks it against the model). */
export function policyFromFlags(o: RouteOpts): TrafficPolicyInput {
	const p: TrafficPolicyInput = {};
	if (o.split !== undefined)
		p.split = parsePairs(o.split, "--split").map((x) => ({
			version: x.version,
			weight: x.value,
		}));
	if (o.shadow !== undefined)
		p.shadow = parsePairs(o.shadow, "--shadow").map((x) => ({
			version: x.version,
			percent: x.value,
		}));
	if (o.bandit !== undefined) {
		if (o.arms === undefined)
			throw bad(
				"--bandit needs --arms with the versions to choose from (e.g. --arms 3,4,5)",
			);
		const arms = o.arms.split(",").map((a) => {
			if (!/^\s*\d+\s*$/.test(a))
				throw bad(
					`--arms expects versions separated by commas (e.g. 3,4,5), got '${o.arms}'`,
				);
			return Number(a);
		});
		p.bandit = { ...parseBandit(o.bandit), arms };
	} else if (o.arms !== undefined) throw bad("--arms is only for --bandit");
	if (o.stickyKey !== undefined)
		p.sticky = { key: o.stickyKey, from: o.stickyFrom };
	if (o.salt !== undefined) p.salt = o.salt;
	return p;
}

/** `3=90,4=10 · sticky customer_id (header) · shadow 5=100%` */
export function describePolicy(r: StoredRoute): string {
	const p = r.policy;
	const parts: string[] = [];
	if (p.split)
		parts.push(
			`split ${p.split.map((a) => `${a.version}=${a.weight}`).join(",")}`,
		);
	if (p.bandit)
		parts.push(
			`bandit ${p.bandit.algorithm}${p.bandit.epsilon !== undefined ? `:${p.bandit.epsilon}` : ""} arms ${p.bandit.arms.join(",")}`,
		);
	if (p.sticky) parts.push(`sticky ${p.sticky.key} (${p.sticky.from})`);
	if (p.shadow)
		parts.push(
			`shadow ${p.shadow.map((s) => `${s.version}=${s.percent}%`).join(",")}`,
		);
	return parts.join(" · ");
}

/** `mlship models route <name> <alias> ...` */
export function routeCommand(): Command {
	const cmd = common(
		new Command("route")
			.description(
				"Set the traffic policy of an alias: a weighted split (optionally sticky by a key), shadow versions, or a bandit; --clear removes it. Every replica follows within a second.",
			)
			.argument("<name>", "model name")
			.argument("<alias>", "alias the policy belongs to (it must exist)")
			.option(
				"--split <pairs>",
				"version=weight pairs summing to 100, e.g. 3=90,4=10",
			)
			.option(
				"--sticky-key <key>",
				"with --split: hash this key (and the experiment's salt) to pick the version, so a key always gets the same one",
			)
			.addOption(
				new Option("--sticky-from <where>", "where the sticky key is read")
					.choices(["header", "param", "feature"])
					.default("header"),
			)
			.option(
				"--shadow <pairs>",
				"version=percent pairs: score a copy of that percent of requests with the version (compared, never returned)",
			)
			.option(
				"--bandit <algorithm>",
				"thompson, ucb1 or epsilon[:E] (exclusive with --split)",
			)
			.option(
				"--arms <versions>",
				"with --bandit: the versions to choose from, e.g. 3,4,5",
			)
			.option(
				"--salt <salt>",
				"the experiment's salt (default: keep the current one, or make one); a new salt reshuffles sticky keys",
			)
			.option("--clear", "remove the alias's traffic policy"),
	).action(
		action(
			async (name: string, alias: string, opts: RouteOpts, self: Command) => {
				if (
					self.getOptionValueSource("stickyFrom") === "cli" &&
					opts.stickyKey === undefined
				)
					throw bad("--sticky-from needs --sticky-key (the key to hash)");
				const policy = policyFromFlags(opts);
				const given = Object.keys(policy).length > 0;
				if (opts.clear && given)
					throw bad(
						"give either a policy (--split, --shadow, --bandit) or --clear, not both",
					);
				if (!opts.clear && !policy.split && !policy.shadow && !policy.bandit)
					throw bad(
						`give --split, --shadow or --bandit for ${name}@${alias} (e.g. mlship models route ${name} ${alias} --split 3=90,4=10), or --clear`,
					);
				await withRegistry(opts.registry, async (store) => {
					if (opts.clear) {
						await store.clearRoute(name, alias);
						output(
							Boolean(opts.json),
							{ name, alias, cleared: true },
							() => `cleared the traffic policy of ${name}@${alias}`,
						);
						return;
					}
					const r = await store.setRoute(name, alias, policy, process.env.USER);
					output(
						Boolean(opts.json),
						r,
						() =>
							`${name}@${alias}: ${describePolicy(r)} (salt ${r.policy.salt})`,
					);
				});
			},
		),
	);
	return example(
		cmd,
		"mlship models route churn production --split 3=90,4=10",
		"mlship models route churn production --split 3=50,4=50 --sticky-key customer_id --sticky-from feature",
		"mlship models route churn production --shadow 5=100",
		"mlship models route churn production --bandit thompson --arms 3,4,5",
		"mlship models route churn production --clear",
	);
}

interface ShowOpts extends CommonOpts {
	server?: string;
	model?: string;
}

/** GET {server}/v2/models/{model}/experiment, with errors that say what to check. */
async function live(server: string, model: string): Promise<unknown> {
	let url: URL;
	try {
		url = new URL(`/v2/models/${encodeURIComponent(model)}/experiment`, server);
	} catch {
		throw bad(
			`--server must be a URL like http://127.0.0.1:8080, got '${server}'`,
		);
	}
	let res: Response;
	try {
		res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_UNAVAILABLE",
			`cannot reach ${url.origin}: ${(err as Error).message} (is 'mlship serve' running there?)`,
		);
	}
	const body = (await res.json().catch(() => ({}))) as { error?: string };
	if (!res.ok)
		throw new MlshipError(
			res.status === 404 ? "MLSHIP_MODEL_NOT_FOUND" : "MLSHIP_UNAVAILABLE",
			`${url.origin} answered ${res.status}: ${body.error ?? "no details"}${res.status === 404 ? " (name the served model with --model)" : ""}`,
		);
	return body;
}

const pct = (x: number | undefined) =>
	x === undefined ? "-" : `${(x * 100).toFixed(2)}%`;
const num = (x: number | undefined) =>
	x === undefined ? "-" : x.toPrecision(4);

/** `mlship experiments` */
export function experimentsCommand(): Command {
	const list = common(
		new Command("list")
			.alias("ls")
			.description("List the aliases that have a traffic policy")
			.option("--name <name>", "only this model's"),
	).action(
		action(async (opts: CommonOpts & { name?: string }) => {
			await withRegistry(opts.registry, async (store) => {
				const routes = await store.routes(opts.name);
				output(Boolean(opts.json), routes, () =>
					routes.length === 0
						? "no traffic policies (set one with 'mlship models route NAME ALIAS --split ...')"
						: textTable(
								["MODEL", "POLICY", "UPDATED"],
								routes.map((r) => [
									`${r.name}@${r.alias}`,
									describePolicy(r),
									r.updatedAt.slice(0, 19).replace("T", " "),
								]),
							),
				);
			});
		}),
	);
	example(list, "mlship experiments list", "mlship experiments list --json");
	const show = common(
		new Command("show")
			.description(
				"Show an alias's traffic policy and, with --server, the live figures of a server: versions loaded and, per shadow version, label agreement, score differences, latency, errors",
			)
			.argument("<ref>", "name@alias")
			.option(
				"--server <url>",
				"a running 'mlship serve' to read live figures from",
			)
			.option(
				"--model <name>",
				"the model's name on that server (default: the registry name)",
			),
	).action(
		action(async (ref: string, opts: ShowOpts) => {
			const r = parseRef(ref);
			if (r.alias === undefined)
				throw bad(`give name@alias (e.g. churn@production), got '${ref}'`);
			const alias = r.alias;
			const route = await withRegistry(opts.registry, async (store) => {
				const got = await store.route(r.name, alias);
				if (!got)
					throw new MlshipError(
						"MLSHIP_MODEL_NOT_FOUND",
						`${ref} has no traffic policy (see 'mlship experiments list')`,
					);
				return got;
			});
			const figures =
				opts.server === undefined
					? undefined
					: ((await live(opts.server, opts.model ?? r.name)) as {
							versions?: string[];
							shadows?: ShadowSummary[];
						});
			output(
				Boolean(opts.json),
				figures ? { route, live: figures } : { route },
				() => {
					const lines = [
						`${ref}: ${describePolicy(route)}`,
						`  salt ${route.policy.salt}, updated ${route.updatedAt}${route.actor ? ` by ${route.actor}` : ""}`,
					];
					if (figures) {
						lines.push(
							`  serving versions: ${figures.versions?.join(", ") ?? "-"}`,
						);
						const sh = figures.shadows ?? [];
						if (sh.length > 0)
							lines.push(
								textTable(
									[
										"SHADOW",
										"COMPARED",
										"AGREEMENT",
										"MEAN|DIFF|",
										"MAX|DIFF|",
										"PRIMARY ms",
										"SHADOW ms",
										"ERRORS",
										"DROPPED",
									],
									sh.map((s) => [
										s.version,
										String(s.compared),
										pct(s.agreement),
										num(s.meanAbsDiff),
										num(s.maxAbsDiff),
										num(s.primaryMs),
										num(s.shadowMs),
										String(s.errors),
										String(s.dropped),
									]),
								)
									.split("\n")
									.map((l) => `  ${l}`)
									.join("\n"),
							);
					}
					return lines.join("\n");
				},
			);
		}),
	);
	example(
		show,
		"mlship experiments show churn@production",
		"mlship experiments show churn@production --server http://127.0.0.1:8080 --json",
	);
	const cmd = new Command("experiments")
		.description(
			"Experiments on aliases: list traffic policies, show one with live shadow comparison figures",
		)
		.addCommand(list)
		.addCommand(show);
	return example(
		cmd,
		"mlship experiments list",
		"mlship experiments show churn@production --server http://127.0.0.1:8080",
	);
}
