// POST /v2/repository/models/{name}/versions: a tar (or tar.gz) bundle upload registered into the server's registry,
// then served by the same server; every hostile archive refused with nothing registered and no temp dir left.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { createDataPlane } from "../../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../../src/dataplane/types.ts";
import { openRegistry } from "../../../src/registry/open.ts";
import type { ModelStore } from "../../../src/registry/types.ts";
import { createRestServer } from "../../../src/server/rest/server.ts";
import { bundleDir, golden } from "../../helpers/fixtures.ts";

interface Entry {
	name: string;
	type?: "file" | "directory" | "symlink" | "link";
	data?: Uint8Array | string;
	linkname?: string;
}

/** A tar of the given entries, made with tar-stream (as hostile as a client may send). */
async function tarOf(entries: Entry[]): Promise<Buffer> {
	const p = pack();
	const chunks: Buffer[] = [];
	const done = (async () => {
		for await (const c of p) chunks.push(Buffer.from(c as Uint8Array));
	})();
	for (const e of entries) {
		const header = {
			name: e.name,
			type: e.type ?? "file",
			...(e.linkname !== undefined && { linkname: e.linkname }),
		};
		if (header.type === "file") p.entry(header, Buffer.from(e.data ?? ""));
		else p.entry(header);
	}
	p.finalize();
	await done;
	return Buffer.concat(chunks);
}

/** The files of a fixture bundle as tar entries (optionally under a top-level directory). */
async function bundleEntries(fixture: string, prefix = ""): Promise<Entry[]> {
	const dir = bundleDir(fixture);
	return [
		{
			name: `${prefix}mlship.yaml`,
			data: await readFile(join(dir, "mlship.yaml")),
		},
		{
			name: `${prefix}model.onnx`,
			data: await readFile(join(dir, "model.onnx")),
		},
	];
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const LIMITS = {
	maxBytes: 1 << 20,
	maxEntries: 20,
	maxExtractedBytes: 1 << 20,
};

describe("bundle upload into the server's registry", () => {
	let dir: string;
	let store: ModelStore;
	let dp: DataPlane;
	let app: ReturnType<typeof createRestServer>;
	let url: string;
	const uploadsLeft = async () =>
		(await readdir(tmpdir())).filter((n) => n.startsWith("mlship-upload-"));
	let before0: string[];

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-upload-test-"));
		const registry = `sqlite:${join(dir, "r.db")}`;
		store = await openRegistry(registry);
		const { readBundle } = await import("../../../src/bundle/bundle.ts");
		await store.register(await readBundle(bundleDir("iris-logreg")), {
			name: "iris",
		});
		dp = await createDataPlane({
			models: [{ name: "iris", source: "iris" }],
			registry,
			processMetrics: false,
		});
		app = createRestServer(dp, { uploadLimits: LIMITS });
		await app.listen({ host: "127.0.0.1", port: 0 });
		url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
		before0 = await uploadsLeft();
	});
	after(async () => {
		await app.close();
		await dp.close();
		await store.close();
		await rm(dir, { recursive: true, force: true });
	});

	const upload = async (
		name: string,
		body: Uint8Array,
		query = "",
		digest: string | null = sha(body),
		headers: Record<string, string> = {},
	) => {
		const res = await fetch(
			`${url}/v2/repository/models/${name}/versions${query}`,
			{
				method: "POST",
				headers: {
					"content-type": "application/x-tar",
					...(digest !== null && { "x-mlship-sha256": digest }),
					...headers,
				},
				body,
			},
		);
		return {
			status: res.status,
			json: (await res.json()) as Record<string, unknown>,
		};
	};
	const versions = async (name: string) =>
		(await store.list({ name, includeArchived: true })).length;

	it("a tar of a bundle becomes the next version, and the same server then serves it", async () => {
		const body = await tarOf(await bundleEntries("iris-logreg"));
		const r = await upload("iris", body, "?alias=production");
		assert.equal(r.status, 201, JSON.stringify(r.json));
		assert.equal(r.json.name, "iris");
		assert.equal(r.json.version, 2);
		assert.deepEqual(r.json.aliases, ["production"]);
		assert.equal(r.json.served, true);
		assert.deepEqual(r.json.archive, { sha256: sha(body), bytes: body.length });
		const [audited] = await store.audit.list({
			action: "model.register",
			limit: 1,
		});
		assert.equal(audited?.target, "iris@2");
		assert.equal(
			audited?.actor,
			"anonymous",
			"the uploader, not the server's OS user",
		);
		assert.equal(audited?.source, "127.0.0.1");
		const v = await store.get("iris@production");
		assert.equal(v.version, 2);
		assert.deepEqual(v.metadata, {
			uploaded: { sha256: sha(body), bytes: body.length },
		});
		// The follower hot-loads version 2; predict answers from it with the library's own labels.
		const g = golden("iris-logreg");
		let answer:
			| { model_version: string; predictions: { label: string }[] }
			| undefined;
		for (let i = 0; i < 600; i++) {
			const res = await fetch(`${url}/v2/models/iris/predict`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ instances: g.records.slice(0, 5) }),
			});
			answer = (await res.json()) as typeof answer;
			if (answer?.model_version === "2") break;
			await new Promise((r) => setTimeout(r, 50));
		}
		assert.equal(answer?.model_version, "2");
		const labels = ["setosa", "versicolor", "virginica"];
		assert.deepEqual(
			answer?.predictions.map((p) => p.label),
			(g.expected.label as number[]).slice(0, 5).map((i) => labels[i]),
		);
	});

	it("a tar.gz whose one top-level directory holds the bundle, for an entity, with the digest in the query", async () => {
		const body = gzipSync(
			await tarOf([
				{ name: "iris-bundle/", type: "directory" },
				...(await bundleEntries("iris-logreg", "iris-bundle/")),
			]),
		);
		const r = await upload(
			"iris",
			body,
			`?entity=berlin&sha256=${sha(body)}`,
			null,
		);
		assert.equal(r.status, 201, JSON.stringify(r.json));
		assert.equal(r.json.entity, "berlin");
		assert.equal((await store.get("iris#berlin")).version, r.json.version);
	});

	it("a different signature under an existing name is refused, unless allow_signature_change=true", async () => {
		const cancer = await tarOf(await bundleEntries("breast-cancer-gbdt"));
		const first = await upload(
			"other",
			await tarOf(await bundleEntries("iris-logreg")),
		);
		assert.equal(first.status, 201);
		const r = await upload("other", cancer);
		assert.equal(r.status, 400);
		assert.match(String(r.json.error), /signature differs from other@1/);
		assert.match(String(r.json.error), /allow_signature_change=true/);
		assert.equal(await versions("other"), 1);
		const bad = await upload("other", cancer, "?allow_signature_change=yes");
		assert.equal(bad.status, 400);
		assert.match(
			String(bad.json.error),
			/allow_signature_change must be true or false/,
		);
		const ok = await upload("other", cancer, "?allow_signature_change=true");
		assert.equal(ok.status, 201, JSON.stringify(ok.json));
		assert.equal(ok.json.version, 2);
		assert.equal(ok.json.served, false);
	});

	it("a wrong or missing sha256 is refused and nothing is registered", async () => {
		const body = await tarOf(await bundleEntries("iris-logreg"));
		const n = await versions("iris");
		const wrong = await upload(
			"iris",
			body,
			"",
			sha(Buffer.from("something else")),
		);
		assert.equal(wrong.status, 422);
		assert.match(
			String(wrong.json.error),
			/sha256 of the \d+ bytes received is [0-9a-f]{64} but the request says/,
		);
		const none = await upload("iris", body, "", null);
		assert.equal(none.status, 400);
		assert.match(String(none.json.error), /x-mlship-sha256/);
		const malformed = await upload("iris", body, "", "abc");
		assert.equal(malformed.status, 400);
		assert.match(String(malformed.json.error), /64 hex digits/);
		assert.equal(await versions("iris"), n);
	});

	const hostile: [string, () => Promise<Buffer>, number, RegExp][] = [
		[
			"a '..' path",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")),
					{ name: "../evil.txt", data: "x" },
				]),
			400,
			/"\.\.\/evil\.txt" leaves the bundle/,
		],
		[
			"a '..' in the middle of a path",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")),
					{ name: "a/../../evil.txt", data: "x" },
				]),
			400,
			/leaves the bundle/,
		],
		[
			"an absolute path",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")),
					{ name: "/tmp/evil.txt", data: "x" },
				]),
			400,
			/absolute path/,
		],
		[
			"a symlink",
			async () =>
				tarOf([
					{ name: "mlship.yaml", type: "symlink", linkname: "/etc/passwd" },
					{ name: "model.onnx", data: "x" },
				]),
			400,
			/"mlship\.yaml" is a symlink to "\/etc\/passwd"; only regular files and directories/,
		],
		[
			"a hardlink",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")),
					{ name: "copy", type: "link", linkname: "mlship.yaml" },
				]),
			400,
			/"copy" is a link to "mlship\.yaml"/,
		],
		[
			"too many entries",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")),
					...Array.from({ length: 30 }, (_, i) => ({
						name: `f${i}`,
						data: "x",
					})),
				]),
			413,
			/more than 20 entries/,
		],
		[
			"files larger than the extract limit (sent gzipped, small on the wire)",
			async () =>
				gzipSync(
					await tarOf([
						...(await bundleEntries("iris-logreg")),
						{ name: "big.bin", data: new Uint8Array(2 << 20) },
					]),
				),
			413,
			/the files extract to more than 1048576 bytes \(at "big\.bin"\)/,
		],
		[
			"a gzip bomb after the end of the tar",
			async () =>
				gzipSync(
					Buffer.concat([
						await tarOf(await bundleEntries("iris-logreg")),
						new Uint8Array(8 << 20),
					]),
				),
			413,
			/un-gzips to more than/,
		],
		[
			"a duplicate entry",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")),
					{ name: "./mlship.yaml", data: "x" },
				]),
			400,
			/"\.\/mlship\.yaml" appears twice/,
		],
		[
			"not a tar",
			async () => Buffer.from("this is not a tar archive at all".repeat(40)),
			400,
			/not a valid tar archive/,
		],
		[
			"a broken gzip",
			async () => Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]),
			400,
			/not a valid gzip stream/,
		],
		[
			"no mlship.yaml",
			async () => tarOf([{ name: "model.onnx", data: "x" }]),
			400,
			/no mlship\.yaml at the top of the archive.*found: model\.onnx/,
		],
		[
			"a manifest whose artifact digest is wrong",
			async () =>
				tarOf([
					...(await bundleEntries("iris-logreg")).filter(
						(e) => e.name !== "model.onnx",
					),
					{ name: "model.onnx", data: "not the model" },
				]),
			422,
			/upload of 'iris': sha256 of 'model\.onnx' is/,
		],
	];
	for (const [what, make, status, message] of hostile)
		it(`refuses ${what}: ${status}, nothing registered, no file left`, async () => {
			const n = await versions("iris");
			const r = await upload("iris", await make());
			assert.equal(r.status, status, JSON.stringify(r.json));
			assert.match(String(r.json.error), message);
			assert.doesNotMatch(String(r.json.error), /mlship-upload-/);
			assert.equal(await versions("iris"), n);
			assert.deepEqual(await uploadsLeft(), before0);
			assert.equal(existsSync(join(tmpdir(), "evil.txt")), false);
		});

	it("refuses a body over the limit by its Content-Length, before reading it", async () => {
		const n = await versions("iris");
		const r = await upload("iris", new Uint8Array((1 << 20) + 1));
		assert.equal(r.status, 413);
		assert.match(
			String(r.json.error),
			/more than the upload limit of 1048576 bytes/,
		);
		assert.equal(await versions("iris"), n);
	});

	it("refuses a streamed body (no Content-Length) once it passes the limit", async () => {
		const n = await versions("iris");
		const chunk = new Uint8Array(64 * 1024);
		let sent = 0;
		const body = new ReadableStream<Uint8Array>({
			pull(c) {
				// 4 MiB in all, well past the 1 MiB limit; the server answers before the end.
				if (sent >= 4 << 20) c.close();
				else {
					sent += chunk.length;
					c.enqueue(chunk);
				}
			},
		});
		const res = await fetch(`${url}/v2/repository/models/iris/versions`, {
			method: "POST",
			headers: {
				"content-type": "application/x-tar",
				"x-mlship-sha256": "0".repeat(64),
			},
			body,
			duplex: "half",
		} as RequestInit);
		assert.equal(res.status, 413);
		assert.match(
			((await res.json()) as { error: string }).error,
			/larger than the limit of 1048576 bytes/,
		);
		assert.equal(await versions("iris"), n);
		assert.deepEqual(await uploadsLeft(), before0);
	});
});

describe("bundle upload to a server without a registry", () => {
	it("is refused with a 400 that says how to serve from a registry", async () => {
		const dp = await createDataPlane({
			models: [{ name: "iris", source: bundleDir("iris-logreg") }],
			processMetrics: false,
		});
		const app = createRestServer(dp);
		try {
			const body = await tarOf(await bundleEntries("iris-logreg"));
			const r = await app.inject({
				method: "POST",
				url: "/v2/repository/models/iris/versions",
				headers: {
					"content-type": "application/x-tar",
					"x-mlship-sha256": sha(body),
				},
				payload: body,
			});
			assert.equal(r.statusCode, 400);
			assert.match(r.json().error, /not from a registry.*--registry/);
		} finally {
			await app.close();
			await dp.close();
		}
	});
});
