// Bundle paths cannot leave the bundle: '..', absolute paths and symlinks out of the directory are refused when a
// bundle is read, verified or registered, and stored manifests with such paths are refused when opened.
import assert from "node:assert/strict";
import {
	cp,
	mkdir,
	mkdtemp,
	readFile,
	rm,
	symlink,
	writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
	bundleFromParts,
	readBundle,
	sha256Hex,
} from "../src/bundle/bundle.ts";
import { parseManifest } from "../src/bundle/manifest.ts";
import { MlshipError } from "../src/protocol/errors.ts";
import { mlship } from "./helpers/files.ts";
import { bundleDir } from "./helpers/fixtures.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-bundle-paths-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A copy of the iris bundle whose manifest names `path` (with sha256 `digest`) as its artifact. */
async function bundleWith(path: string, digest?: string): Promise<string> {
	const to = join(dir, `b-${Math.random().toString(36).slice(2)}`);
	await cp(bundleDir("iris-logreg"), to, { recursive: true });
	const yaml = await readFile(join(to, "mlship.yaml"), "utf8");
	let next = yaml.replace(/path: model\.onnx/, `path: ${JSON.stringify(path)}`);
	if (digest) next = next.replace(/sha256: [0-9a-f]{64}/, `sha256: ${digest}`);
	await writeFile(join(to, "mlship.yaml"), next);
	return to;
}

function invalidBundle(pattern: RegExp) {
	return (err: unknown) => {
		assert.ok(err instanceof MlshipError, String(err));
		assert.equal(err.code, "MLSHIP_INVALID_BUNDLE", err.message);
		assert.match(err.message, pattern);
		return true;
	};
}

const PASSWD_SHA = sha256Hex(new Uint8Array(await readFile("/etc/passwd")));

describe("bundle paths", () => {
	it("an artifact that is a symlink out of the bundle is refused, even with the right sha256", async () => {
		const b = await bundleWith("stolen.onnx", PASSWD_SHA);
		await symlink("/etc/passwd", join(b, "stolen.onnx"));
		await assert.rejects(
			readBundle(b),
			invalidBundle(
				/'stolen.onnx' is a symlink .* leads out of the bundle, to \/etc\/passwd/,
			),
		);
		// `bundle verify` and `models register` read bundles the same way.
		const verify = await mlship(["bundle", "verify", b]);
		assert.equal(verify.code, 2);
		assert.match(verify.stderr, /leads out of the bundle/);
		const reg = await mlship([
			"models",
			"register",
			b,
			"--registry",
			`sqlite:${join(dir, "r.db")}`,
		]);
		assert.equal(reg.code, 2);
		assert.match(reg.stderr, /leads out of the bundle/);
	});

	it("a file under a symlinked directory that leads out is refused", async () => {
		const b = await bundleWith("etc/passwd", PASSWD_SHA);
		await symlink("/etc", join(b, "etc"));
		await assert.rejects(
			readBundle(b),
			invalidBundle(
				/'etc\/passwd' is a symlink \(or under one\) that leads out of the bundle/,
			),
		);
	});

	it("a symlink that stays inside the bundle is fine", async () => {
		const b = await bundleWith("models/current.onnx");
		await mkdir(join(b, "models"));
		await symlink("../model.onnx", join(b, "models", "current.onnx"));
		const bundle = await readBundle(b);
		assert.equal(
			bundle.files.get("models/current.onnx")?.length,
			(await readFile(join(b, "model.onnx"))).length,
		);
	});

	it("manifest paths that are absolute or leave the bundle are refused by the schema, from a directory or a registry row", async () => {
		const hostile: [string, RegExp][] = [
			["../model.onnx", /leaves the bundle/],
			["sub/../../model.onnx", /leaves the bundle/],
			["/etc/passwd", /is absolute/],
			["C:/Windows/win.ini", /is absolute/],
			["..\\model.onnx", /backslash/],
			["./model.onnx", /empty or '.' segment/],
			["a//model.onnx", /empty or '.' segment/],
			["model.onnx\u0000.txt", /control character/],
		];
		for (const [path, why] of hostile) {
			const b = await bundleWith(path);
			await assert.rejects(readBundle(b), (err: unknown) => {
				assert.ok(err instanceof MlshipError);
				assert.equal(
					err.code,
					"MLSHIP_INVALID_BUNDLE",
					`${path}: ${err.message}`,
				);
				assert.match(err.message, why, path);
				return true;
			});
			const text = await readFile(join(b, "mlship.yaml"), "utf8");
			assert.throws(() => parseManifest(text, "m"), why, path);
			assert.throws(
				() =>
					bundleFromParts(
						text,
						new Map([[path, new Uint8Array(1)]]),
						"registry:x@1",
					),
				why,
				path,
			);
		}
	});
});
