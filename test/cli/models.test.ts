// `mlship models` as a real process: register, list, show, alias, rm, --json, exit codes and messages.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha256Hex } from "../../src/bundle/bundle.ts";

const MAIN = join(import.meta.dirname, "..", "..", "src", "cli", "main.ts");
const FIXTURES = join(import.meta.dirname, "..", "fixtures", "models");
const IRIS = join(FIXTURES, "iris-logreg");
const GBDT = join(FIXTURES, "breast-cancer-gbdt");

let dir: string;
let registry: string;

interface Run {
	code: number;
	stdout: string;
	stderr: string;
}

/** Runs `mlship models ...args` in the temp dir; `--registry` is added unless `withRegistry` is false. */
function models(args: string[], withRegistry = true): Promise<Run> {
	const env = { ...process.env };
	delete env.MLSHIP_REGISTRY;
	const argv = [
		MAIN,
		"models",
		...args,
		...(withRegistry ? ["--registry", registry] : []),
	];
	return new Promise((resolve) => {
		execFile(
			process.execPath,
			argv,
			{ cwd: dir, env },
			(err, stdout, stderr) => {
				const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
				resolve({ code, stdout, stderr });
			},
		);
	});
}

async function ok(args: string[]): Promise<string> {
	const r = await models(args);
	assert.equal(
		r.code,
		0,
		`mlship models ${args.join(" ")} failed: ${r.stderr}${r.stdout}`,
	);
	return r.stdout;
}

async function okJsonAt(
	reg: string,
	args: string[],
): Promise<Record<string, unknown>> {
	const r = await models([...args, "--registry", reg, "--json"], false);
	assert.equal(
		r.code,
		0,
		`mlship models ${args.join(" ")}: ${r.stderr}${r.stdout}`,
	);
	return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function okJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
	return JSON.parse(await ok([...args, "--json"])) as T;
}

before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-models-cli-"));
	registry = `sqlite:${join(dir, "r.db")}`;
});
after(() => rm(dir, { recursive: true, force: true }));

describe("mlship models", () => {
	it("registers a bundle directory, with aliases and metadata", async () => {
		const out = await ok([
			"register",
			IRIS,
			"--alias",
			"production",
			"--meta",
			"owner=ana",
			"--meta",
			"accuracy:=0.95",
		]);
		assert.match(
			out,
			/^registered iris-logreg@1 \(sha256 [0-9a-f]{12}\) as iris-logreg@production\n$/,
		);
		const again = await ok(["register", IRIS]);
		assert.match(again, /^registered iris-logreg@2 /);
	});

	it("registers a bare .onnx under a chosen name, with --json", async () => {
		const v = await okJson<{
			name: string;
			version: number;
			sha256: string;
			aliases: string[];
		}>(["register", join(GBDT, "model.onnx"), "--name", "cancer"]);
		assert.equal(v.name, "cancer");
		assert.equal(v.version, 1);
		assert.equal(
			v.sha256,
			sha256Hex(new Uint8Array(await readFile(join(GBDT, "model.onnx")))),
		);
		assert.deepEqual(v.aliases, []);
	});

	it("lists versions as a table and as JSON", async () => {
		const out = await ok(["list"]);
		const lines = out.trimEnd().split("\n");
		assert.match(
			lines[0] ?? "",
			/^NAME\s+VERSION\s+ENTITY\s+ALIASES\s+STATUS\s+CREATED\s+TASK\s+SHA256$/,
		);
		assert.equal(lines.length, 4, out);
		assert.match(
			lines[2] ?? "",
			/^iris-logreg\s+1\s+-\s+production\s+active\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+classification\s+[0-9a-f]{12}$/,
		);
		assert.match(lines[3] ?? "", /^iris-logreg\s+2\s+-\s+-\s+active/);
		const rows = await okJson<
			{ name: string; version: number; aliases: string[] }[]
		>(["list"]);
		assert.deepEqual(
			rows.map((r) => `${r.name}@${r.version}:${r.aliases.join(",")}`),
			["cancer@1:", "iris-logreg@1:production", "iris-logreg@2:"],
		);
		const only = await okJson<{ name: string }[]>(["list", "cancer"]);
		assert.deepEqual(
			only.map((r) => r.name),
			["cancer"],
		);
	});

	it("shows a version's signature, features, labels, aliases and metadata", async () => {
		const out = await ok(["show", "iris-logreg@production"]);
		assert.match(out, /^iris-logreg@1\n/);
		assert.match(out, /aliases: {2}production/);
		assert.match(out, /float_input {2}FP32 {2}\[-1, 4\]/);
		assert.match(
			out,
			/features: 4 \(sepal_length, sepal_width, petal_length, petal_width\)/,
		);
		assert.match(out, /labels: {3}setosa, versicolor, virginica/);
		assert.match(
			out,
			/registration metadata:\n {4}owner: ana\n {4}accuracy: 0\.95/,
		);
		const v = await okJson<{
			version: number;
			metadata: unknown;
			manifest: { features: unknown[] };
		}>(["show", "iris-logreg@production"]);
		assert.equal(v.version, 1);
		assert.deepEqual(v.metadata, { owner: "ana", accuracy: 0.95 });
		assert.equal(v.manifest.features.length, 4);
		assert.equal(
			(await okJson<{ version: number }>(["show", "iris-logreg"])).version,
			2,
			"bare name = newest",
		);
	});

	it("moves and deletes aliases", async () => {
		assert.match(
			await ok(["alias", "iris-logreg", "production", "2"]),
			/iris-logreg@production → iris-logreg@2/,
		);
		assert.equal(
			(await okJson<{ version: number }>(["show", "iris-logreg@production"]))
				.version,
			2,
		);
		assert.deepEqual(await okJson(["alias", "iris-logreg", "staging", "1"]), {
			name: "iris-logreg",
			alias: "staging",
			version: 1,
		});
		assert.match(
			await ok(["alias", "iris-logreg", "staging", "--delete"]),
			/deleted alias iris-logreg@staging/,
		);
		const gone = await models(["show", "iris-logreg@staging"]);
		assert.equal(gone.code, 3);
		assert.match(gone.stderr, /no alias 'staging'/);
		const missing = await models(["alias", "iris-logreg", "staging"]);
		assert.equal(missing.code, 2);
		assert.match(missing.stderr, /give the version/);
	});

	it("archives and deletes versions; a bare name needs --all-versions", async () => {
		const refused = await models(["rm", "iris-logreg@2", "--archive"]);
		assert.equal(refused.code, 2, "archiving an aliased version is refused");
		assert.match(refused.stderr, /alias 'production' points at it/);
		assert.match(
			await ok(["rm", "iris-logreg@1", "--archive"]),
			/^archived iris-logreg@1$/m,
		);
		const active = await okJson<{ version: number }[]>(["list", "iris-logreg"]);
		assert.deepEqual(
			active.map((r) => r.version),
			[2],
		);
		const all = await okJson<{ version: number; status: string }[]>([
			"list",
			"iris-logreg",
			"--all",
		]);
		assert.deepEqual(
			all.map((r) => `${r.version}:${r.status}`),
			["1:archived", "2:active"],
		);
		const bare = await models(["rm", "iris-logreg"]);
		assert.equal(bare.code, 2);
		assert.match(bare.stderr, /--all-versions/);
		assert.match(await ok(["rm", "cancer@1"]), /^deleted cancer@1$/m);
		assert.deepEqual(await okJson(["rm", "iris-logreg", "--all-versions"]), {
			name: "iris-logreg",
			deleted: true,
		});
		assert.deepEqual(await okJson(["list", "--all"]), []);
		assert.match(await ok(["list"]), /no models registered yet/);
	});

	it("refuses to delete an aliased version without --force, restores an archived one, refuses a changed signature without --allow-signature-change", async () => {
		const reg = `sqlite:${join(dir, "guards.db")}`;
		const at = (args: string[]) => models([...args, "--registry", reg], false);
		await okJsonAt(reg, ["register", IRIS, "--alias", "production"]);
		await okJsonAt(reg, ["register", IRIS]);
		const refused = await at(["rm", "iris-logreg@1"]);
		assert.equal(refused.code, 2, refused.stderr);
		assert.match(
			refused.stderr,
			/^error: cannot delete iris-logreg@1: alias 'production' points at it; .*--force/,
		);
		assert.equal((await okJsonAt(reg, ["show", "iris-logreg@1"])).version, 1);
		assert.deepEqual(await okJsonAt(reg, ["rm", "iris-logreg@1", "--force"]), {
			name: "iris-logreg",
			version: 1,
			deleted: true,
		});
		assert.equal((await at(["show", "iris-logreg@production"])).code, 3);

		await okJsonAt(reg, ["rm", "iris-logreg@2", "--archive"]);
		assert.match(
			(await at(["show", "iris-logreg"])).stderr,
			/every version of model 'iris-logreg' is archived/,
		);
		assert.deepEqual(await okJsonAt(reg, ["restore", "iris-logreg@2"]), {
			name: "iris-logreg",
			version: 2,
			status: "active",
		});
		assert.equal((await okJsonAt(reg, ["show", "iris-logreg"])).version, 2);
		const text = await at(["restore", "iris-logreg@2"]);
		assert.match(text.stdout, /^restored iris-logreg@2 \(active\)$/m);
		const bare = await at(["restore", "iris-logreg"]);
		assert.equal(bare.code, 2);
		assert.match(bare.stderr, /give the version to restore/);
		assert.equal((await at(["restore", "iris-logreg@7"])).code, 3);

		const changed = await at(["register", GBDT, "--name", "iris-logreg"]);
		assert.equal(changed.code, 2, changed.stderr);
		assert.match(
			changed.stderr,
			/signature differs from iris-logreg@2:\n {2}- inputs changed: float_input: FP32 \[-1, 4\] → FP32 \[-1, 30\]\n {2}- features removed \(4\): sepal_length[\s\S]*labels: setosa, versicolor, virginica → malignant, benign[\s\S]*--allow-signature-change/,
		);
		const allowed = await okJsonAt(reg, [
			"register",
			GBDT,
			"--name",
			"iris-logreg",
			"--allow-signature-change",
		]);
		assert.equal(allowed.version, 3);
	});

	it("reports an unknown model with exit code 3 and a clear message (also as JSON)", async () => {
		const r = await models(["show", "nope"]);
		assert.equal(r.code, 3);
		assert.equal(r.stdout, "");
		assert.match(
			r.stderr,
			/^error: model 'nope' is not registered in sqlite:.*r\.db \(see 'mlship models list'\)\n$/,
		);
		const j = await models(["show", "nope", "--json"]);
		assert.equal(j.code, 3);
		assert.deepEqual(JSON.parse(j.stdout), {
			error: JSON.parse(j.stdout).error,
			code: "MLSHIP_MODEL_NOT_FOUND",
		});
		assert.match(JSON.parse(j.stdout).error, /'nope'/);
		const rmMissing = await models(["rm", "nope@1"]);
		assert.equal(rmMissing.code, 3);
	});

	it("reports bad arguments with exit code 2", async () => {
		for (const args of [
			["show", "iris@"],
			["register", IRIS, "--alias", "123"],
			["register", IRIS, "--meta", "novalue"],
			["register", IRIS, "--meta", "x:={bad"],
			["alias", "iris-logreg", "production", "zero"],
			["rm", "iris-logreg@production"],
		]) {
			const r = await models(args);
			assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
			assert.match(r.stderr, /^error: /, args.join(" "));
		}
		const wrongRegistry = await models(
			["list", "--registry", "mysql://localhost/x"],
			false,
		);
		assert.equal(wrongRegistry.code, 2);
		assert.match(
			wrongRegistry.stderr,
			/unknown registry 'mysql:\/\/localhost\/x'/,
		);
		// A PostgreSQL registry that is not there is "unavailable" (exit 6), not a usage error.
		const down = await models(
			["list", "--registry", "postgres://mlship@127.0.0.1:1/x"],
			false,
		);
		assert.equal(down.code, 6);
		assert.match(
			down.stderr,
			/registry postgres:\/\/mlship@127\.0\.0\.1:1\/x is unavailable/,
		);
	});

	it("uses .mlship/registry.db in the working directory by default", async () => {
		const r = await models(["register", IRIS], false);
		assert.equal(r.code, 0, r.stderr);
		assert.ok(existsSync(join(dir, ".mlship", "registry.db")));
		const list = await models(["list", "--json"], false);
		assert.deepEqual(
			(JSON.parse(list.stdout) as { name: string }[]).map((v) => v.name),
			["iris-logreg"],
		);
	});

	it("has examples in every subcommand's --help", async () => {
		for (const sub of [
			"register",
			"list",
			"show",
			"alias",
			"rm",
			"entities",
			"register-entities",
			"restore",
		]) {
			const r = await models([sub, "--help"], false);
			assert.equal(r.code, 0);
			assert.match(r.stdout, /Examples:\n {2}\$ mlship models /, sub);
			assert.match(r.stdout, /--registry <uri>/, sub);
			assert.match(r.stdout, /--json/, sub);
		}
	});

	it("registers per-entity models one by one and in bulk (--dir, --list, --bundle with --entities), and lists them", async () => {
		const reg = `sqlite:${join(dir, "ent.db")}`;
		const run = (args: string[]) => okJsonAt(reg, args);
		await run(["register", IRIS, "--name", "price"]);
		const one = await run([
			"register",
			IRIS,
			"--name",
			"price",
			"--entity",
			"berlin",
		]);
		assert.equal(one.entity, "berlin");
		// --dir: one sub-directory per entity
		const byCity = join(dir, "by-city");
		await mkdir(byCity);
		for (const c of ["lisbon", "madrid"])
			await cp(IRIS, join(byCity, c), { recursive: true });
		const d = await run(["register-entities", "price", "--dir", byCity]);
		assert.deepEqual(
			[d.registered, d.first_version, d.last_version],
			[2, 3, 4],
		);
		// --list: entity,path relative to the list
		await writeFile(
			join(dir, "list.csv"),
			`entity,path\nparis,${IRIS}\nrome,by-city/lisbon\n`,
		);
		const l = await run([
			"register-entities",
			"price",
			"--list",
			join(dir, "list.csv"),
		]);
		assert.equal(l.registered, 2);
		// --bundle for 1,200 entities from a file, in transactions of 500
		const many = Array.from({ length: 1200 }, (_, i) => `shop-${i}`);
		await writeFile(join(dir, "shops.txt"), many.join("\n"));
		const b = await run([
			"register-entities",
			"price",
			"--bundle",
			GBDT,
			"--entities",
			`@${join(dir, "shops.txt")}`,
			"--batch",
			"500",
		]);
		assert.deepEqual(
			[b.registered, b.first_version, b.last_version],
			[1200, 7, 1206],
		);
		const ents = (await run(["entities", "price"])) as unknown as {
			entity: string;
			version: number;
		}[];
		assert.equal(ents.length, 1205);
		assert.deepEqual(
			ents.find((e) => e.entity === "rome"),
			{ entity: "rome", version: 6 },
		);
		const berlin = (await run([
			"list",
			"price",
			"--entity",
			"berlin",
		])) as unknown as { version: number; entity: string }[];
		assert.deepEqual(
			berlin.map((v) => [v.version, v.entity]),
			[[2, "berlin"]],
		);
		const text = await models(["entities", "price", "--registry", reg], false);
		assert.match(text.stdout, /^ENTITY +VERSION\nberlin +2\n/);
		assert.match(text.stdout, /1,205 entities\n$/);
		const bad = await models(
			[
				"register-entities",
				"price",
				"--dir",
				byCity,
				"--bundle",
				IRIS,
				"--registry",
				reg,
			],
			false,
		);
		assert.equal(bad.code, 2);
		assert.match(bad.stderr, /exactly one of --dir/);
	});
});
