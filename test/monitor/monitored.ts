// A data plane serving one model with a drift monitor attached (hook, traffic and feedback), on a fake clock.
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import {
	DriftMonitor,
	type DriftMonitorOptions,
} from "../../src/dataplane/drift-monitor.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";

export interface Monitored {
	dp: DataPlane;
	mon: DriftMonitor;
	close(): Promise<void>;
}

/** Serves `source` as `name`; the monitor's windows are `windowSeconds` on `clock`, judged only by flush(). */
export async function monitoredPlane(o: {
	name: string;
	source: string;
	clock: { t: number };
	windowSeconds: number;
	monitor?: Omit<DriftMonitorOptions, "now" | "timer" | "windowSeconds">;
	/** Keep request ids for feedback (on the same clock). */
	feedback?: boolean;
}): Promise<Monitored> {
	const mon = new DriftMonitor({
		...o.monitor,
		windowSeconds: o.windowSeconds,
		now: () => o.clock.t,
		timer: false,
	});
	const dp = await createDataPlane({
		models: [{ name: o.name, source: o.source }],
		hooks: [mon.hook],
		processMetrics: false,
		...(o.feedback ? { feedback: { now: () => o.clock.t } } : {}),
	});
	mon.attach(dp);
	return {
		dp,
		mon,
		async close() {
			await mon.close();
			await dp.close();
		},
	};
}
