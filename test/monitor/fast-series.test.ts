// Fast series updaters: the same /metrics text as prom-client's own calls, also across reset() and remove().
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import {
	counterSeries,
	gaugeSeries,
	histogramSeries,
} from "../../src/monitor/fast-series.ts";

function metrics() {
	const registry = new Registry();
	const labelNames = ["model", "version"] as const;
	return {
		registry,
		h: new Histogram({
			name: "t_seconds",
			help: "h",
			labelNames,
			buckets: [0.001, 0.01, 0.1],
			registers: [registry],
		}),
		c: new Counter({
			name: "t_total",
			help: "c",
			labelNames: [...labelNames, "outcome"] as const,
			registers: [registry],
		}),
		g: new Gauge({
			name: "t_depth",
			help: "g",
			labelNames,
			registers: [registry],
		}),
	};
}

const L = { model: "iris", version: "1" };
const VALUES = [0.0005, 0.001, 0.002, 0.05, 0.5, 3, 0];

describe("fast series", () => {
	it("write the same exposition as prom-client's observe, inc and set", async () => {
		const slow = metrics();
		const fast = metrics();
		const observe = histogramSeries(fast.h, L);
		const inc = counterSeries(fast.c, { ...L, outcome: "ok" });
		const set = gaugeSeries(fast.g, L);
		// Series exist (at zero) as soon as the updaters do, as a labelled child's first call would make them.
		slow.h.zero(L);
		slow.c.inc({ ...L, outcome: "ok" }, 0);
		slow.g.set(L, 0);
		assert.equal(await fast.registry.metrics(), await slow.registry.metrics());
		for (const v of VALUES) {
			slow.h.observe(L, v);
			observe(v);
			slow.c.inc({ ...L, outcome: "ok" });
			inc();
			slow.g.set(L, v * 10);
			set(v * 10);
		}
		slow.c.inc({ ...L, outcome: "ok" }, 5);
		inc(5);
		assert.equal(await fast.registry.metrics(), await slow.registry.metrics());
		assert.match(
			await fast.registry.metrics(),
			/t_seconds_count\{model="iris",version="1"\} 7/,
		);
	});

	it("keep counting after the metric is reset or the series removed", async () => {
		const slow = metrics();
		const fast = metrics();
		const observe = histogramSeries(fast.h, L);
		const inc = counterSeries(fast.c, { ...L, outcome: "ok" });
		const set = gaugeSeries(fast.g, L);
		observe(0.002);
		inc();
		set(3);
		for (const m of [fast, slow]) {
			m.h.reset();
			m.c.reset();
			m.g.remove(L);
		}
		for (const v of [0.02, 0.2]) {
			slow.h.observe(L, v);
			observe(v);
			slow.c.inc({ ...L, outcome: "ok" });
			inc();
		}
		slow.g.set(L, 4);
		set(4);
		assert.equal(await fast.registry.metrics(), await slow.registry.metrics());
	});

	it("refuse what prom-client refuses (a NaN observation, a negative increment)", () => {
		const m = metrics();
		assert.throws(
			() => histogramSeries(m.h, L)(Number.NaN),
			/not a valid number/,
		);
		assert.throws(
			() => counterSeries(m.c, { ...L, outcome: "ok" })(-1),
			/not possible to decrease/,
		);
	});
});
