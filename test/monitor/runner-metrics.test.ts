// RunnerMetrics for workers that follow an alias (batch work --follow, pg worker): series move to the new version.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RunnerMetrics } from "../../src/monitor/metrics.ts";

test("a followed model's move relabels later series with the new version; totals carry on", async () => {
	const m = new RunnerMetrics(false);
	m.bind("churn", 1);
	m.totals(10, 1);
	m.onModelEvent({ type: "update_failed", model: "churn", to: "3" });
	m.totals(15, 1);
	m.onModelEvent({ type: "updated", model: "churn", to: "2" });
	m.totals(22, 2);
	const { body } = await m.exposition();
	assert.match(
		body,
		/mlship_rows_total\{model="churn",version="1",outcome="scored"\} 15/,
	);
	assert.match(
		body,
		/mlship_rows_total\{model="churn",version="2",outcome="scored"\} 7/,
	);
	assert.match(
		body,
		/mlship_rows_total\{model="churn",version="2",outcome="rejected"\} 1/,
	);
	assert.doesNotMatch(body, /version="3"/, "a failed update does not relabel");
});
