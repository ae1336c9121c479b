// bench/lifecycle: thousands of per-entity models in a PostgreSQL registry, served by real `mlship serve` processes.
// Measures bulk registration, cold-load latency (first request of an entity) against warm requests, memory per
// loaded model, request latency during hot swaps against steady state, and how soon a second replica serves a new
// version. Results go to stdout and to the "## lifecycle" section of bench/RESULTS.md.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Client as PgClient } from "pg";
import { readBundle } from "../../src/bundle/bundle.ts";
import { openRegistry } from "../../src/registry/open.ts";
import {
	binDir,
	createDatabase,
	startPostgres,
	uniqueDatabaseName,
} from "../../test/harness/postgres.ts";
import { bundleDir, golden } from "../../test/helpers/fixtures.ts";
import { type Served, serve } from "../../test/helpers/serve-process.ts";
import { machine, writeResults } from "../common.ts";
import { cpuSeconds, PgCost } from "./pg-cost.ts";

const { values: args } = parseArgs({
	options: {
		entities: { type: "string", default: "100000" },
		"max-loaded": { type: "string", default: "10000" },
		"memory-budget": { type: "string", default: "4GiB" },
		cold: { type: "string", default: "12000" },
		clients: { type: "string", default: "8" },
		seconds: { type: "string", default: "6" },
		swaps: { type: "string", default: "20" },
		trials: { type: "string", default: "10" },
		"no-results": { type: "boolean", default: false },
		/** Run one phase only and print its figures (no RESULTS.md): "register" (bulk registration and what it costs
		 * PostgreSQL and the client), or "cold" (registration, then the cold loads). */
		only: { type: "string" },
		/** Load pg_stat_statements into the server and print the statements that took its time during registration. */
		"pg-statements": { type: "boolean", default: false },
	},
});
const ONLY = args.only;
if (ONLY !== undefined && ONLY !== "register" && ONLY !== "cold")
	throw new Error(`--only must be 'register' or 'cold', got '${ONLY}'`);
const ENTITIES = Number(args.entities);
const MAX_LOADED = Number(args["max-loaded"]);
const COLD = Math.min(Number(args.cold), ENTITIES);
const CLIENTS = Number(args.clients);
const SECONDS = Number(args.seconds);
const SWAPS = Number(args.swaps);
const TRIALS = Number(args.trials);
const FIXTURE = "iris-logreg";

const entity = (i: number) => `e${String(i).padStart(6, "0")}`;
const body = JSON.stringify({ instances: golden(FIXTURE).records.slice(0, 1) });
const log = (s: string) => process.stderr.write(`lifecycle: ${s}\n`);

function pct(xs: number[], p: number): number {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const ms = (x: number) => x.toFixed(2);
const rssMiB = (pid: number) =>
	Number(
		/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1],
	) / 1024;

/** One predict request for `city` (or to the named `model`); latency (ms) and the version that answered. */
async function ask(
	r: Served,
	city: string,
	model = "price",
): Promise<{ ms: number; version: string; fallback: boolean }> {
	const t0 = performance.now();
	const res = await fetch(`${r.http}/v2/models/${model}/predict`, {
		method: "POST",
		headers: {
			"content-type": "application/json",
			...(model === "price" ? { "x-mlship-entity": city } : {}),
		},
		body,
	});
	const j = (await res.json()) as {
		error?: string;
		predictions?: { model_version: string; entity_fallback: boolean }[];
	};
	if (res.status !== 200) throw new Error(`${city}: ${res.status} ${j.error}`);
	const p = j.predictions?.[0] as {
		model_version: string;
		entity_fallback: boolean;
	};
	return {
		ms: performance.now() - t0,
		version: p.model_version,
		fallback: p.entity_fallback,
	};
}

/** `CLIENTS` loops over `hot` entities (or one named `model`) for `seconds`; every latency and the error count. */
async function load(
	r: Served,
	hot: string[],
	seconds: number,
	during?: () => Promise<void>,
	model = "price",
) {
	const lat: number[] = [];
	let errors = 0;
	let stop = false;
	const loops = Array.from({ length: CLIENTS }, async (_, c) => {
		let i = c;
		while (!stop) {
			try {
				lat.push((await ask(r, hot[i++ % hot.length] as string, model)).ms);
			} catch {
				errors++;
			}
		}
	});
	const t0 = performance.now();
	await Promise.all([
		during?.(),
		new Promise((res) => setTimeout(res, seconds * 1000)),
	]);
	stop = true;
	await Promise.all(loops);
	return { lat, errors, rps: lat.length / ((performance.now() - t0) / 1000) };
}

async function main(): Promise<void> {
	const pg = await startPostgres();
	if (args["pg-statements"]) {
		const c = new PgClient({ connectionString: pg.url });
		await c.connect();
		await c.query(
			"ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
		);
		await c.end();
		await pg.restart();
	}
	const url = await createDatabase(pg.url, uniqueDatabaseName("lifecycle"));
	const store = await openRegistry(url);
	const replicas: Served[] = [];
	try {
		const bundle = await readBundle(bundleDir(FIXTURE));
		await store.register(bundle, { name: "price" }); // the family's default
		await store.register(bundle, { name: "solo", aliases: ["production"] }); // a named model for alias moves
		await store.register(bundle, { name: "solo" });
		log(`registering ${ENTITIES} entity models in batches of 1000`);
		const cost = await PgCost.open(url);
		await cost.start();
		const cpu0 = process.cpuUsage();
		const r0 = performance.now();
		for (let i = 0; i < ENTITIES; i += 1000)
			await store.registerMany(
				Array.from({ length: Math.min(1000, ENTITIES - i) }, (_, j) => ({
					bundle,
					opts: { name: "price", entity: entity(i + j) },
				})),
			);
		const registerS = (performance.now() - r0) / 1000;
		const clientCpu = process.cpuUsage(cpu0);
		const server = await cost.stop();
		await cost.close();
		const per = (x: number) => (x / ENTITIES).toFixed(0);
		const registration = {
			clientUs: per(clientCpu.user + clientCpu.system),
			serverUs: per(server.cpuS * 1e6),
			walBytes: per(server.walBytes),
			growthBytes: per(server.growthBytes),
		};
		log(
			`registered in ${registerS.toFixed(1)} s (${Math.round(ENTITIES / registerS)}/s); per registration: client CPU ${registration.clientUs} µs, PostgreSQL CPU ${registration.serverUs} µs, WAL ${registration.walBytes} B, database growth ${registration.growthBytes} B`,
		);
		for (const st of server.statements)
			log(`  ${st.ms.toFixed(0)} ms in ${st.calls} calls: ${st.query}`);
		if (ONLY === "register") return;

		const flags = [
			"--registry",
			url,
			"-m",
			"price",
			"-m",
			"solo@production:solo",
			"--entity-key",
			"price=city",
			"--lazy",
			"--max-loaded-models",
			String(MAX_LOADED),
			"--memory-budget",
			args["memory-budget"] as string,
			"--log-level",
			"info",
		];
		const a = await serve(flags);
		replicas.push(a);
		await ask(a, "no-such-entity"); // loads the default: not an entity cold load
		const rssBefore = rssMiB(a.proc.pid as number);

		log(`${COLD} cold first requests, one at a time`);
		const cold: number[] = [];
		const serverPid = a.proc.pid as number;
		const coldCpu0 = cpuSeconds(serverPid);
		for (let i = 0; i < COLD; i++) {
			const r = await ask(a, entity(i));
			if (r.fallback) throw new Error(`${entity(i)} was served by the default`);
			cold.push(r.ms);
		}
		const coldCpuUs = ((cpuSeconds(serverPid) - coldCpu0) * 1e6) / COLD;
		log(
			`cold loads: p50 ${ms(pct(cold, 50))} / p99 ${ms(pct(cold, 99))} ms, server CPU ${coldCpuUs.toFixed(0)} µs per cold load (all threads)`,
		);
		const metrics = await (await fetch(`${a.http}/metrics`)).text();
		const loaded = Number(/^mlship_models_loaded (\d+)/m.exec(metrics)?.[1]);
		const estimated = Number(
			/^mlship_models_loaded_bytes (\d+)/m.exec(metrics)?.[1],
		);
		const evictions = Number(
			/^mlship_model_evictions_total\{model="price"\} (\d+)/m.exec(
				metrics,
			)?.[1] ?? 0,
		);
		const rssAfter = rssMiB(a.proc.pid as number);
		const perModelKiB = ((rssAfter - rssBefore) * 1024) / (loaded - 1);
		log(
			`loaded ${loaded} (limit ${MAX_LOADED}), evictions ${evictions}, RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB`,
		);

		if (ONLY === "cold") return;
		const warm: number[] = [];
		for (let i = COLD - Math.min(MAX_LOADED - 1, COLD); i < COLD; i++)
			warm.push((await ask(a, entity(i))).ms);

		const hot = Array.from({ length: 50 }, (_, i) => entity(COLD - 1 - i));
		log(
			`steady state: ${CLIENTS} clients on 50 loaded entities for ${SECONDS} s`,
		);
		const steady = await load(a, hot, SECONDS);
		const priceUpdates = () =>
			a
				.logs()
				.filter(
					(l) =>
						l.msg === "model updated" && String(l.model).startsWith("price#"),
				).length;
		const updatesBefore = priceUpdates();
		log(
			`the same load during ${SWAPS} hot swaps (new versions of served entities)`,
		);
		const swapping = await load(a, hot, SECONDS, async () => {
			for (let k = 0; k < SWAPS; k++) {
				await new Promise((res) =>
					setTimeout(res, (SECONDS * 1000 * 0.8) / SWAPS),
				);
				await store.register(bundle, {
					name: "price",
					entity: hot[k % hot.length] as string,
				});
			}
		});
		await new Promise((res) => setTimeout(res, 500));
		const swapsApplied = priceUpdates() - updatesBefore;

		log(
			`a named model: steady state, then ${SWAPS} alias moves (each swap loads the new version's sessions on the shared worker threads)`,
		);
		await ask(a, "", "solo");
		const soloSteady = await load(a, [""], SECONDS, undefined, "solo");
		const soloUpdates = () =>
			a.logs().filter((l) => l.msg === "model updated" && l.model === "solo")
				.length;
		const soloBefore = soloUpdates();
		const soloSwapping = await load(
			a,
			[""],
			SECONDS,
			async () => {
				for (let k = 0; k < SWAPS; k++) {
					await new Promise((res) =>
						setTimeout(res, (SECONDS * 1000 * 0.8) / SWAPS),
					);
					await store.setAlias("solo", "production", k % 2 === 0 ? 2 : 1);
				}
			},
			"solo",
		);
		await new Promise((res) => setTimeout(res, 500));
		const soloApplied = soloUpdates() - soloBefore;

		log(
			`second replica: ${TRIALS} new versions of a loaded entity, and ${TRIALS} new entities`,
		);
		const b = await serve(flags);
		replicas.push(b);
		const untilServed = async (
			city: string,
			pred: (r: Awaited<ReturnType<typeof ask>>) => boolean,
		) => {
			const t0 = performance.now();
			for (;;) {
				if (pred(await ask(b, city))) return performance.now() - t0;
				if (performance.now() - t0 > 10_000)
					throw new Error(`replica never served ${city}`);
				await new Promise((res) => setTimeout(res, 2));
			}
		};
		const newVersion: number[] = [];
		const newEntity: number[] = [];
		for (let t = 0; t < TRIALS; t++) {
			const city = entity(t);
			await ask(b, city);
			const v = await store.register(bundle, { name: "price", entity: city });
			newVersion.push(
				await untilServed(city, (r) => r.version === String(v.version)),
			);
			const fresh = `new-${t}`;
			await store.register(bundle, { name: "price", entity: fresh });
			newEntity.push(await untilServed(fresh, (r) => !r.fallback));
		}

		const p99Ratio = pct(swapping.lat, 99) / pct(steady.lat, 99);
		const soloRatio = pct(soloSwapping.lat, 99) / pct(soloSteady.lat, 99);
		const errors =
			steady.errors + swapping.errors + soloSteady.errors + soloSwapping.errors;
		const rows = [
			[
				"bulk registration (PostgreSQL, registerMany, 1000 per transaction, multi-row INSERTs, files stored once per sha256; target ≥ 5,000/s)",
				`${ENTITIES.toLocaleString("en-US")} models in ${registerS.toFixed(1)} s (${Math.round(ENTITIES / registerS).toLocaleString("en-US")}/s)`,
			],
			[
				"CPU per registration: client (mlship) / PostgreSQL (every server process); WAL written, database growth",
				`${registration.clientUs} / ${registration.serverUs} µs; ${registration.walBytes} B, ${registration.growthBytes} B`,
			],
			[
				"cold-load latency, first request of an entity (p50 / p99; target p99 ≤ 20 ms)",
				`${ms(pct(cold, 50))} / ${ms(pct(cold, 99))} ms (${COLD} entities, one at a time)`,
			],
			[
				"server CPU per cold load (every thread: registry read, sha256, sessions, warm-up, the request)",
				`${coldCpuUs.toFixed(0)} µs`,
			],
			[
				"warm request latency, same entities loaded (p50 / p99)",
				`${ms(pct(warm, 50))} / ${ms(pct(warm, 99))} ms (${warm.length} requests)`,
			],
			[
				"models loaded at the end / evictions",
				`${loaded} (limit ${MAX_LOADED}, incl. the default) / ${evictions}`,
			],
			[
				"memory per loaded model (server RSS growth ÷ models)",
				`${perModelKiB.toFixed(0)} KiB (RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB); mlship's estimate ${(estimated / loaded / 1024).toFixed(0)} KiB`,
			],
			[
				"server RSS growth ÷ mlship's estimate of the loaded models (target within 10%)",
				`${((rssAfter - rssBefore) / (estimated / 1024 / 1024)).toFixed(2)}× (${(rssAfter - rssBefore).toFixed(0)} MiB grown, ${(estimated / 1024 / 1024).toFixed(0)} MiB estimated)`,
			],
			[
				"steady state: p50 / p99, req/s",
				`${ms(pct(steady.lat, 50))} / ${ms(pct(steady.lat, 99))} ms, ${Math.round(steady.rps)} req/s, ${steady.errors} errors`,
			],
			[
				`during ${SWAPS} hot swaps (${swapsApplied} applied): p50 / p99, req/s`,
				`${ms(pct(swapping.lat, 50))} / ${ms(pct(swapping.lat, 99))} ms, ${Math.round(swapping.rps)} req/s, ${swapping.errors} errors`,
			],
			[
				"family members: p99 during swaps ÷ steady p99 (target ≤ 2×)",
				`${p99Ratio.toFixed(2)}×`,
			],
			[
				"named model (alias moved): steady p50 / p99, req/s",
				`${ms(pct(soloSteady.lat, 50))} / ${ms(pct(soloSteady.lat, 99))} ms, ${Math.round(soloSteady.rps)} req/s, ${soloSteady.errors} errors`,
			],
			[
				`named model during ${SWAPS} alias moves (${soloApplied} swaps applied): p50 / p99, req/s`,
				`${ms(pct(soloSwapping.lat, 50))} / ${ms(pct(soloSwapping.lat, 99))} ms, ${Math.round(soloSwapping.rps)} req/s, ${soloSwapping.errors} errors`,
			],
			[
				"named model: p99 during swaps ÷ steady p99 (target ≤ 2×)",
				`${soloRatio.toFixed(2)}×`,
			],
			[
				"new version of a loaded entity served by a second replica (p50 / max)",
				`${ms(pct(newVersion, 50))} / ${ms(Math.max(...newVersion))} ms after register() returned (${TRIALS} trials)`,
			],
			[
				"new entity served by its own model on a second replica (p50 / max)",
				`${ms(pct(newEntity, 50))} / ${ms(Math.max(...newEntity))} ms (${TRIALS} trials)`,
			],
		];
		const table = [
			"| measure | result |",
			"|---|---|",
			...rows.map(([k, v]) => `| ${k} | ${v} |`),
		].join("\n");
		process.stdout.write(`${table}\n`);
		if (errors > 0) process.exitCode = 1;
		if (args["no-results"]) return;
		const cmd = `node bench/lifecycle/run.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`;
		await writeResults(
			"lifecycle",
			[
				"## lifecycle",
				"",
				`${ENTITIES.toLocaleString("en-US")} per-entity models (the iris logistic regression fixture, one version per entity of the family \`price\`) in a PostgreSQL registry started by the test harness, served by real \`mlship serve --entity-key price=city --lazy --max-loaded-models ${MAX_LOADED} --memory-budget ${args["memory-budget"]}\` processes. Requests are one-row \`POST /v2/models/price/predict\` with \`x-mlship-entity\`, from the bench process on the same 2 cores (keep-alive fetch). Cold = the entity's first request (registry read, sha256 check, session on the main thread and on each shared worker, warm-up row). Hot swaps are new versions registered for entities under load, and 20 alias moves of a named model (\`-m solo@production:solo\`, two versions) under load on it; every swap loads sessions onto the server's shared worker threads. The second replica is a fresh server; the time is from \`register()\` returning to the first answer from the new model (polled every 2 ms).`,
				"",
				`- date: ${new Date().toISOString().slice(0, 10)}`,
				`- machine: ${machine(`PostgreSQL ${binDir().split("/").at(-2)}`)}`,
				`- command: \`${cmd}\``,
				"",
				table,
				"",
				`At ten times the scale (issue 17): registration ${Math.round(ENTITIES / registerS).toLocaleString("en-US")}/s (target ≥ 5,000/s: ${ENTITIES / registerS >= 5000 ? "met" : "missed"}), cold-load p99 ${ms(pct(cold, 99))} ms (target ≤ 20 ms: ${pct(cold, 99) <= 20 ? "met" : "missed"}), ${loaded.toLocaleString("en-US")} models loaded, server RSS growth ${((rssAfter - rssBefore) / (estimated / 1024 / 1024)).toFixed(2)}× mlship's estimate (target within 10%: ${Math.abs((rssAfter - rssBefore) / (estimated / 1024 / 1024) - 1) <= 0.1 ? "met" : "missed"}).`,
				"",
				`Conclusion: p99 during hot swaps is ${p99Ratio.toFixed(2)}× steady state for family members and ${soloRatio.toFixed(2)}× for a named model whose alias moves (target ≤ 2×: ${p99Ratio <= 2 && soloRatio <= 2 ? "met" : "missed"}), with ${errors} failed requests; a second replica serves a new version within ${ms(Math.max(...newVersion))} ms in every trial.`,
				"",
			].join("\n"),
		);
		log("wrote the ## lifecycle section of bench/RESULTS.md");
	} finally {
		for (const r of replicas) {
			r.proc.kill("SIGTERM");
			await r.exit;
		}
		await store.close();
		await pg.stop();
	}
}

await main();
