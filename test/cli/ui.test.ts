// `mlship ui` as a real process: --help with examples, a bad --server refused (exit 2), and a start that prints its
// URL, serves the page and stops on SIGTERM.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");

function run(
	args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, [MAIN, ...args], (err, stdout, stderr) => {
			const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
			resolve({ code, stdout, stderr });
		});
	});
}

describe("mlship ui", () => {
	let dir: string;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-cli-ui-"));
	});
	after(async () => {
		await rm(dir, { recursive: true, force: true });
	});

	it("--help shows the options and an example", async () => {
		const r = await run(["ui", "--help"]);
		assert.equal(r.code, 0);
		assert.match(r.stdout, /--server <url>/);
		assert.match(r.stdout, /--stream <url>/);
		const serve = await run(["serve", "--help"]);
		assert.match(serve.stdout, /--ui-stream <url>/);
		assert.match(
			r.stdout,
			/mlship ui --registry \S+ --stream http:\/\/127\.0\.0\.1:9464/,
		);
		assert.match(r.stdout, /Examples:\n\s+\$ mlship ui --registry/);
	});

	it("refuses a --server that is not an http(s) URL, or carries credentials (exit 2)", async () => {
		const reg = `sqlite:${join(dir, "r.db")}`;
		const ftp = await run(["ui", "--registry", reg, "--server", "ftp://x"]);
		assert.equal(ftp.code, 2);
		assert.match(ftp.stderr, /--server must be an http:\/\/ or https:\/\/ URL/);
		const cred = await run([
			"ui",
			"--registry",
			reg,
			"--server",
			"http://u:secret@127.0.0.1:1",
		]);
		assert.equal(cred.code, 2);
		assert.doesNotMatch(cred.stderr, /secret/);
		assert.match(cred.stderr, /must not carry credentials/);
		const stream = await run([
			"ui",
			"--registry",
			reg,
			"--stream",
			"http://u:secret@127.0.0.1:1",
		]);
		assert.equal(stream.code, 2);
		assert.doesNotMatch(stream.stderr, /secret/);
		assert.match(stream.stderr, /--stream must not carry credentials/);
	});

	it("starts on a free port, prints the URL, serves the page and an empty model list, stops on SIGTERM", async () => {
		const child = spawn(
			process.execPath,
			[MAIN, "ui", "--registry", `sqlite:${join(dir, "r.db")}`, "--port", "0"],
			{ stdio: ["ignore", "ignore", "pipe"] },
		);
		let stderr = "";
		const url = await new Promise<string>((resolve, reject) => {
			child.stderr.on("data", (b: Buffer) => {
				stderr += b.toString();
				const m = /(http:\/\/127\.0\.0\.1:\d+\/ui\/)/.exec(stderr);
				if (m) resolve(m[1] as string);
			});
			child.once("exit", (code) =>
				reject(new Error(`exited ${code}: ${stderr}`)),
			);
		});
		const page = await fetch(url);
		assert.equal(page.status, 200);
		await page.arrayBuffer();
		const models = (await (await fetch(new URL("api/models", url))).json()) as {
			registry: boolean;
			models: unknown[];
		};
		assert.deepEqual(models, { registry: true, models: [], servers: [] });
		const exited = new Promise<number | null>((r) => child.once("exit", r));
		child.kill("SIGTERM");
		assert.equal(await exited, 0);
	});
});
