// Test helper for the package tests: the Node binaries to test under, npm's own CLI, and child processes with a
// clean environment (no npm_* variables of the `npm test` that runs us, this Node first on PATH).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { SUPPORTED } from "../../bin/node-version.js";
import { REPO } from "../helpers/fixtures.ts";

export interface NodeBinary {
	version: string;
	major: number;
	path: string;
}

/** Where scripts/setup puts the Node binaries of test/package/node-versions.txt. */
const NODE_DIR =
	process.env.MLSHIP_NODE_DIR || join(homedir(), ".cache", "mlship", "node");

/** The Node binary of `version` that scripts/setup installed (one clear error when it is missing). */
function installedNode(version: string): NodeBinary {
	const path = join(NODE_DIR, version, "node_modules", ".bin", "node");
	if (!existsSync(path))
		throw new Error(
			`Node ${version} is not installed at ${path}: run scripts/setup (npm test runs it first)`,
		);
	return { version, major: Number(version.split(".")[0]), path };
}

const pinned = readFileSync(
	join(REPO, "test", "package", "node-versions.txt"),
	"utf8",
)
	.split("\n")
	.map((l) => l.trim())
	.filter(Boolean);

/** One Node per supported major: this process's own (the pinned dev Node) for its major, else one from setup. */
export function supportedNodes(): NodeBinary[] {
	return SUPPORTED.map(([major]) => {
		if (major === Number(process.versions.node.split(".")[0]))
			return { version: process.versions.node, major, path: process.execPath };
		const version = pinned.find((v) => Number(v.split(".")[0]) === major);
		if (!version)
			throw new Error(
				`no Node ${major}.x in test/package/node-versions.txt to test the supported major ${major} under`,
			);
		return installedNode(version);
	});
}

/** A Node older than every supported one, to check the CLI refuses it. */
export function unsupportedNode(): NodeBinary {
	const oldest = SUPPORTED[0]?.[0] ?? 0;
	const version = pinned.find((v) => Number(v.split(".")[0]) < oldest);
	if (!version)
		throw new Error(
			`no Node older than ${oldest} in test/package/node-versions.txt`,
		);
	return installedNode(version);
}

/** npm's own CLI script (run with a chosen Node): the one `npm test` runs under, else the `npm` on PATH. */
export function npmCli(): string {
	const fromNpm = process.env.npm_execpath;
	if (fromNpm?.endsWith("npm-cli.js")) return fromNpm;
	const onPath = execFileSync("sh", ["-c", "command -v npm"], {
		encoding: "utf8",
	}).trim();
	return join(dirname(realpathSync(onPath)), "npm-cli.js");
}

/** The environment a user's shell would give: no npm_* variables from our own `npm test`, `node` on PATH first. */
export function cleanEnv(
	node: NodeBinary,
	extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {};
	for (const [k, v] of Object.entries(process.env))
		if (!/^npm_/i.test(k) && k !== "NODE_OPTIONS") env[k] = v;
	const path = (process.env.PATH ?? "")
		.split(delimiter)
		.filter((p) => !p.endsWith(join("node_modules", ".bin")));
	env.PATH = [dirname(node.path), ...path].join(delimiter);
	return { ...env, ...extra };
}

export interface Run {
	code: number | null;
	stdout: string;
	stderr: string;
}

/** Runs a program to its end (killed after `timeoutMs`) and collects its output. */
export function run(
	file: string,
	args: string[],
	opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Run> {
	return new Promise((resolve, reject) => {
		const p = spawn(file, args, {
			cwd: opts.cwd,
			env: opts.env,
			stdio: ["ignore", "pipe", "pipe"],
		});
		let stdout = "";
		let stderr = "";
		p.stdout.on("data", (d) => {
			stdout += d;
		});
		p.stderr.on("data", (d) => {
			stderr += d;
		});
		const timer = setTimeout(
			() => p.kill("SIGKILL"),
			opts.timeoutMs ?? 120_000,
		);
		p.on("error", reject);
		p.on("close", (code) => {
			clearTimeout(timer);
			resolve({ code, stdout, stderr });
		});
	});
}
