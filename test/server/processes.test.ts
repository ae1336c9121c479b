// `mlship serve --processes 2`: two server processes answer on one port, /metrics sums both, SIGTERM stops them all.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { bundleDir, CLI, golden } from "../helpers/fixtures.ts";
import { type Served, serve } from "../helpers/serve-process.ts";

/** A request; `agent` keeps a connection for several requests, none opens one of its own. */
function send(
	url: string,
	body?: string,
	agent: Agent | false = false,
): Promise<{ status: number; text: string }> {
	return new Promise((resolve, reject) => {
		const req = request(
			url,
			{
				agent,
				method: body === undefined ? "GET" : "POST",
				headers:
					body === undefined ? {} : { "content-type": "application/json" },
			},
			(res) => {
				let text = "";
				res.setEncoding("utf8");
				res.on("data", (d) => {
					text += d;
				});
				res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
			},
		);
		req.on("error", reject);
		req.end(body);
	});
}

/** On a new connection (the primary hands each to the next process): which process it reached, then `then` on it. */
async function onProcess<T>(
	http: string,
	then: (agent: Agent) => Promise<T>,
): Promise<{ process: number; value: T }> {
	const agent = new Agent({ keepAlive: true, maxSockets: 1 });
	try {
		const r = await send(`${http}/v2/health/ready`, undefined, agent);
		const j = JSON.parse(r.text) as { process: number };
		return { process: j.process, value: await then(agent) };
	} finally {
		agent.destroy();
	}
}

function children(pid: number): number[] {
	return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
		.trim()
		.split(/\s+/)
		.filter(Boolean)
		.map(Number);
}

const ROW = golden("breast-cancer-gbdt").records[0] as Record<string, number>;

describe("mlship serve --processes 2", () => {
	let s: Served;
	before(async () => {
		s = await serve([
			"--model",
			`${bundleDir("breast-cancer-gbdt")}:gbdt`,
			"--processes",
			"2",
			"--log-level",
			"info",
		]);
	});
	after(async () => {
		if (s.proc.exitCode === null) {
			s.proc.kill("SIGKILL");
			await s.exit;
		}
	});

	it("runs two server processes, and both answer on the same port", async () => {
		const seen = new Set<number>();
		// The second process may still be loading when the first reports: ask until both have answered.
		for (let i = 0; i < 200 && seen.size < 2; i++) {
			const r = await send(`${s.http}/v2/health/ready`);
			if (r.status === 200) {
				const j = JSON.parse(r.text) as { process: number; processes: number };
				assert.equal(j.processes, 2);
				seen.add(j.process);
			} else await new Promise((res) => setTimeout(res, 100));
		}
		assert.deepEqual([...seen].sort(), [1, 2]);
		assert.equal(children(s.proc.pid as number).length, 2);
	});

	it("answers golden predictions from either process, and /metrics from either sums both processes' requests", async () => {
		const g = golden("breast-cancer-gbdt");
		const labels = (await readBundle(bundleDir("breast-cancer-gbdt"))).manifest
			.labels as string[];
		const want = labels[Number(g.expected.label?.[0])];
		assert.ok(want);
		const served = new Map<number, number>();
		let n = 0;
		while (n < 40 && (served.size < 2 || n < 12)) {
			const { process: p, value: r } = await onProcess(s.http, (agent) =>
				send(
					`${s.http}/v2/models/gbdt/predict`,
					JSON.stringify({ instances: [ROW] }),
					agent,
				),
			);
			assert.equal(r.status, 200, r.text);
			const body = JSON.parse(r.text) as { predictions: { label: unknown }[] };
			assert.equal(body.predictions[0]?.label, want);
			served.set(p, (served.get(p) ?? 0) + 1);
			n++;
		}
		assert.equal(served.size, 2, "both processes served predictions");
		const metricsBy = new Map<number, string>();
		for (let i = 0; i < 40 && metricsBy.size < 2; i++) {
			const { process: p, value: m } = await onProcess(s.http, (agent) =>
				send(`${s.http}/metrics`, undefined, agent),
			);
			assert.equal(m.status, 200);
			metricsBy.set(p, m.text);
		}
		assert.equal(metricsBy.size, 2, "both processes answered /metrics");
		for (const [p, text] of metricsBy)
			assert.match(
				text,
				new RegExp(
					`mlship_requests_total\\{model="gbdt",version="1",outcome="ok"\\} ${n}\\n`,
				),
				`process ${p} reports both processes' ${n} requests (${[...served].map(([k, v]) => `${v} by process ${k}`).join(", ")})`,
			);
	});

	it("SIGTERM stops every process and the primary exits 0", async () => {
		const workers = children(s.proc.pid as number);
		s.proc.kill("SIGTERM");
		assert.equal(await s.exit, 0);
		for (const pid of workers)
			assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} gone`);
	});
});

describe("mlship serve --processes refuses what each process would keep apart", () => {
	it("--ui, --log-payloads and --monitor-window are named, with what to do instead", () => {
		const r = spawnSync(
			process.execPath,
			[
				CLI,
				"serve",
				"--model",
				bundleDir("iris-logreg"),
				"--processes",
				"2",
				"--ui",
				"--http-port",
				"0",
				"--grpc-port",
				"-1",
			],
			{ encoding: "utf8", timeout: 60_000 },
		);
		assert.notEqual(r.status, 0);
		assert.match(r.stderr, /--processes 2 cannot be combined with --ui/);
		assert.match(r.stderr, /--processes 1/);
	});
});
