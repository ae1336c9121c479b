// PostgreSQL goes away under load: loaded models keep answering, readiness detail and metrics say the registry is
// unavailable, and the server follows the registry again by itself once it is back.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { ModelStore } from "../../src/registry/types.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { resolveSettings } from "../../src/server/settings.ts";
import {
	createDatabase,
	type PostgresServer,
	startPostgres,
	uniqueDatabaseName,
} from "../harness/postgres.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

let pg: PostgresServer;
let store: ModelStore;
let server: RunningServer;
let url: string;

before(async () => {
	pg = await startPostgres();
	url = await createDatabase(pg.url, uniqueDatabaseName("resilience"));
	store = await openRegistry(url);
	const b = await readBundle(bundleDir("iris-logreg"));
	await store.register(b, { aliases: ["production"] });
	await store.register(b);
	server = await startServer(
		resolveSettings(
			{
				host: "127.0.0.1",
				http_port: 0,
				grpc_port: -1,
				log_level: "silent",
				registry: url,
				models: [{ name: "prod", source: "iris-logreg@production" }],
			},
			undefined,
			{},
		),
	);
});
after(async () => {
	await server?.close();
	await store?.close();
	await pg?.stop();
});

const base = () => `http://127.0.0.1:${server.httpPort}`;
const readiness = async () => {
	const r = await fetch(`${base()}/v2/health/ready`);
	return {
		status: r.status,
		body: (await r.json()) as {
			ready: boolean;
			registry?: { available: boolean; reason?: string };
		},
	};
};
async function until(
	what: string,
	cond: () => Promise<boolean>,
	ms = 10_000,
): Promise<void> {
	const t0 = performance.now();
	while (performance.now() - t0 < ms) {
		if (await cond()) return;
		await new Promise((r) => setTimeout(r, 20));
	}
	assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

it("PostgreSQL restarted during load: no failed request, the outage is reported, the server recovers by itself", async () => {
	await until(
		"the change feed to connect",
		async () => (await readiness()).body.registry?.available === true,
	);
	assert.deepEqual((await readiness()).body, {
		ready: true,
		registry: { available: true },
	});
	const body = JSON.stringify({
		instances: golden("iris-logreg").records.slice(0, 2),
	});
	let stop = false;
	let ok = 0;
	const failures: string[] = [];
	const client = async () => {
		while (!stop) {
			const r = await fetch(`${base()}/v2/models/prod/predict`, {
				method: "POST",
				body,
			});
			if (r.status === 200) ok++;
			else failures.push(`${r.status} ${await r.text()}`);
			await r.arrayBuffer().catch(() => {});
		}
	};
	const clients = [client(), client()];
	const restarting = pg.restart({ downtimeMs: 2000 });
	let sawOutage: { status: number; body: unknown } | undefined;
	await until("readiness to report the registry unavailable", async () => {
		const r = await readiness();
		if (r.body.registry?.available === false) sawOutage = r;
		return sawOutage !== undefined;
	});
	assert.equal(
		sawOutage?.status,
		200,
		"the server stays ready: its loaded models still serve",
	);
	assert.match(
		await (await fetch(`${base()}/metrics`)).text(),
		/mlship_registry_available 0/,
	);
	await restarting;
	await until(
		"the registry to be available again",
		async () => (await readiness()).body.registry?.available === true,
	);
	assert.match(
		await (await fetch(`${base()}/metrics`)).text(),
		/mlship_registry_available 1/,
	);
	// Following the registry works again without a restart of mlship.
	await store.setAlias("iris-logreg", "production", 2);
	await until("the moved alias to be served", async () => {
		const m = (await (await fetch(`${base()}/v2/models/prod`)).json()) as {
			versions: string[];
		};
		return m.versions[0] === "2";
	});
	stop = true;
	await Promise.all(clients);
	assert.deepEqual(failures, []);
	assert.ok(ok > 50, `only ${ok} requests answered`);
});
