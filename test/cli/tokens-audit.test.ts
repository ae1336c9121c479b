// `mlship tokens` and `mlship audit` as real processes: create prints the secret once, list never shows it, revoke;
// the audit log shows who did what, with --since, --action and --json.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { hashToken } from "../../src/registry/core/tokens.ts";

const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");

let dir: string;
let registry: string;

interface Run {
	code: number;
	stdout: string;
	stderr: string;
}

/** Runs `mlship ...args` against the temp registry. */
function mlship(args: string[], reg = registry): Promise<Run> {
	const env = { ...process.env };
	delete env.MLSHIP_REGISTRY;
	return new Promise((resolve) => {
		execFile(
			process.execPath,
			[MAIN, ...args, "--registry", reg],
			{ cwd: dir, env },
			(err, stdout, stderr) => {
				const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
				resolve({ code, stdout, stderr });
			},
		);
	});
}

describe("mlship tokens", () => {
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-tokens-"));
		registry = `sqlite:${join(dir, "registry.db")}`;
	});
	after(() => rm(dir, { recursive: true, force: true }));

	it("create prints the token once; list and the database never hold it; revoke marks it", async () => {
		const c = await mlship([
			"tokens",
			"create",
			"--scope",
			"predict,read",
			"--models",
			"churn*",
			"--expires",
			"90d",
			"--description",
			"checkout",
			"--json",
		]);
		assert.equal(c.code, 0, c.stderr);
		const created = JSON.parse(c.stdout) as {
			token: string;
			id: string;
			scopes: string[];
			models: string[];
			expiresAt: string;
			createdBy: string;
		};
		assert.match(created.token, /^mls_[A-Za-z0-9_-]{43}$/);
		assert.match(created.id, /^tok_[0-9a-f]{12}$/);
		assert.deepEqual(created.scopes, ["predict", "read"]);
		assert.deepEqual(created.models, ["churn*"]);
		assert.match(created.createdBy, /^local:/);
		const days = (Date.parse(created.expiresAt) - Date.now()) / 86_400_000;
		assert.ok(days > 89.9 && days <= 90, `expires in ${days} days`);

		const human = await mlship(["tokens", "create", "--scope", "admin"]);
		assert.equal(human.code, 0, human.stderr);
		assert.match(human.stdout, /^mls_\S{43}\n/);
		assert.match(human.stdout, /only time the token is shown/);

		for (const args of [
			["tokens", "list"],
			["tokens", "list", "--json"],
		]) {
			const l = await mlship(args);
			assert.equal(l.code, 0, l.stderr);
			assert.ok(l.stdout.includes(created.id));
			assert.ok(!l.stdout.includes(created.token), "list shows the secret");
			assert.ok(
				!l.stdout.includes(hashToken(created.token)),
				"list shows the hash",
			);
		}
		// The database holds the hash, never the secret.
		const db = await readFile(join(dir, "registry.db"));
		assert.equal(db.includes(created.token), false);

		const r = await mlship(["tokens", "revoke", created.id]);
		assert.equal(r.code, 0, r.stderr);
		assert.match(r.stdout, new RegExp(`revoked ${created.id}`));
		const active = await mlship(["tokens", "list", "--json"]);
		assert.ok(!active.stdout.includes(created.id));
		const all = JSON.parse(
			(await mlship(["tokens", "list", "--all", "--json"])).stdout,
		) as {
			id: string;
			revokedAt?: string;
		}[];
		assert.ok(all.find((t) => t.id === created.id)?.revokedAt);
		const again = await mlship(["tokens", "revoke", created.id]);
		assert.equal(again.code, 4);
		assert.match(again.stderr, /already revoked/);
	});

	it("refuses unknown scopes, bad patterns, bad expiries and unknown ids with what to do", async () => {
		const cases: [string[], RegExp][] = [
			[
				["tokens", "create", "--scope", "write"],
				/unknown scope 'write': expected predict, read, admin/,
			],
			[
				["tokens", "create", "--scope", "read", "--models", "a;b"],
				/invalid model pattern 'a;b'/,
			],
			[
				["tokens", "create", "--scope", "read", "--expires", "soon"],
				/--expires expects a duration \(90d, 12h, 30m\) or an ISO date/,
			],
			[
				["tokens", "revoke", "tok_000000000000"],
				/no token 'tok_000000000000' \(see mlship tokens list\)/,
			],
			[["tokens", "revoke", "'; DROP TABLE auth_tokens"], /invalid token id/],
		];
		for (const [args, message] of cases) {
			const r = await mlship(args);
			assert.notEqual(r.code, 0, args.join(" "));
			assert.match(r.stderr, message);
		}
	});

	it("--help shows examples", async () => {
		for (const sub of ["create", "list", "revoke"]) {
			const r = await mlship(["tokens", sub, "--help"]);
			assert.match(r.stdout, /Examples:\n\s+\$ mlship tokens/);
		}
	});
});

describe("mlship audit", () => {
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-audit-"));
		registry = `sqlite:${join(dir, "registry.db")}`;
	});
	after(() => rm(dir, { recursive: true, force: true }));

	it("shows registry changes and token changes, newest first, filtered by --action and --since", async () => {
		const iris = join(
			import.meta.dirname,
			"..",
			"fixtures",
			"models",
			"iris-logreg",
		);
		assert.equal(
			(await mlship(["models", "register", iris, "--name", "churn"])).code,
			0,
		);
		assert.equal(
			(await mlship(["models", "alias", "churn", "production", "1"])).code,
			0,
		);
		const t = JSON.parse(
			(await mlship(["tokens", "create", "--scope", "admin", "--json"])).stdout,
		) as { id: string };
		const json = await mlship(["audit", "--json"]);
		assert.equal(json.code, 0, json.stderr);
		const events = JSON.parse(json.stdout) as {
			action: string;
			target: string;
			actor: string;
			source: string;
		}[];
		assert.deepEqual(
			events.map((e) => [e.action, e.target, e.source]),
			[
				["token.create", t.id, "cli"],
				["alias.set", "churn@production", "cli"],
				["model.register", "churn@1", "cli"],
			],
		);
		assert.ok(events.every((e) => /^local:/.test(e.actor)));
		const human = await mlship(["audit", "--since", "1h", "--action", "alias"]);
		assert.equal(human.code, 0, human.stderr);
		assert.match(
			human.stdout,
			/local:\S+\s+cli\s+alias\.set\s+churn@production/,
		);
		assert.doesNotMatch(human.stdout, /model\.register/);
		const future = await mlship(["audit", "--since", "2999-01-01"]);
		assert.match(future.stdout, /no audit events since 2999-01-01/);
		const bad = await mlship(["audit", "--since", "yesterday"]);
		assert.equal(bad.code, 2);
		assert.match(bad.stderr, /--since expects a duration/);
		const help = await mlship(["audit", "--help"]);
		assert.match(help.stdout, /Examples:\n\s+\$ mlship audit --since 7d/);
	});
});
