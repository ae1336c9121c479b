// openRegistry: URI forms, the default location, directory creation, and PostgreSQL URIs (on a real server).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { defaultRegistryUri, openRegistry } from "../../src/registry/open.ts";
import { PostgresStore } from "../../src/registry/store/postgres/store.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
} from "../harness/postgres.ts";
import { rejectsWith } from "./store.contract.ts";

const IRIS = join(
	import.meta.dirname,
	"..",
	"fixtures",
	"models",
	"iris-logreg",
);

describe("openRegistry", () => {
	let dir: string;
	const saved = process.env.MLSHIP_REGISTRY;
	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "mlship-open-"));
	});
	after(async () => {
		if (saved === undefined) delete process.env.MLSHIP_REGISTRY;
		else process.env.MLSHIP_REGISTRY = saved;
		await rm(dir, { recursive: true, force: true });
	});

	it("defaults to MLSHIP_REGISTRY, else sqlite:.mlship/registry.db", () => {
		delete process.env.MLSHIP_REGISTRY;
		assert.equal(defaultRegistryUri(), "sqlite:.mlship/registry.db");
		process.env.MLSHIP_REGISTRY = "sqlite:/elsewhere/r.db";
		assert.equal(defaultRegistryUri(), "sqlite:/elsewhere/r.db");
	});

	it("opens sqlite:PATH (creating directories), sqlite://PATH and plain .db/.sqlite paths", async () => {
		const iris = await readBundle(IRIS);
		const nested = join(dir, "a", "b", "registry.db");
		const s1 = await openRegistry(`sqlite:${nested}`);
		await s1.register(iris);
		await s1.close();
		assert.ok(existsSync(nested), "database file created with its directories");
		for (const uri of [
			`sqlite://${nested}`,
			nested,
			relative(process.cwd(), nested),
		]) {
			const s = await openRegistry(uri);
			assert.equal((await s.get("iris-logreg")).version, 1, uri);
			await s.close();
		}
		const plain = await openRegistry(join(dir, "other.sqlite"));
		assert.deepEqual(await plain.list(), []);
		await plain.close();
		const mem = await openRegistry("sqlite::memory:");
		assert.equal((await mem.register(iris)).version, 1);
		await mem.close();
	});

	it("uses MLSHIP_REGISTRY when no URI is given", async () => {
		const path = join(dir, "env", "r.db");
		process.env.MLSHIP_REGISTRY = `sqlite:${path}`;
		const s = await openRegistry();
		await s.close();
		assert.ok(existsSync(path));
	});

	it("opens postgres:// and postgresql:// URIs as a PostgresStore on that database", async () => {
		const pgs: PostgresServer = await startPostgres();
		try {
			const iris = await readBundle(IRIS);
			const url = await createDatabase(pgs.url, "open_test");
			const a = await openRegistry(url);
			try {
				assert.ok(a instanceof PostgresStore);
				assert.equal((await a.register(iris)).version, 1);
			} finally {
				await a.close();
			}
			const b = await openRegistry(url.replace(/^postgres:/, "postgresql:"));
			try {
				assert.ok(b instanceof PostgresStore);
				assert.equal(
					(await b.get("iris-logreg")).version,
					1,
					"same database, other scheme",
				);
			} finally {
				await b.close();
			}
			await rejectsWith(
				openRegistry(`${pgs.url.replace(/\/postgres$/, "/missing")}`),
				"MLSHIP_INVALID_ARGUMENT",
				/database "missing" does not exist/,
			);
		} finally {
			await pgs.stop();
		}
	});

	it("reports an unreachable PostgreSQL as MLSHIP_UNAVAILABLE, hiding the password", async () => {
		await assert.rejects(
			openRegistry("postgres://u:secret@127.0.0.1:1/db"),
			(err: Error & { code?: string }) => {
				assert.equal(err.code, "MLSHIP_UNAVAILABLE");
				assert.match(err.message, /postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/);
				assert.doesNotMatch(err.message, /secret/);
				return true;
			},
		);
	});

	it("rejects malformed and unknown URIs with MLSHIP_INVALID_ARGUMENT", async () => {
		await rejectsWith(
			openRegistry("postgresql://[bad"),
			"MLSHIP_INVALID_ARGUMENT",
			/cannot open registry/,
		);
		await rejectsWith(
			openRegistry("mysql://localhost/db"),
			"MLSHIP_INVALID_ARGUMENT",
			/unknown registry/,
		);
		await rejectsWith(
			openRegistry("registry.txt"),
			"MLSHIP_INVALID_ARGUMENT",
			/unknown registry/,
		);
		await rejectsWith(
			openRegistry("sqlite:"),
			"MLSHIP_INVALID_ARGUMENT",
			/unknown registry/,
		);
	});
});
