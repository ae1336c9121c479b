// Live-profile windows, merged across replicas and compared with the reference: what the monitor endpoint and the
// HTML report show.
import { type DriftOptions, type WindowDrift, windowDrift } from "./drift.ts";
import { mergeProfiles } from "./profile/build.ts";
import { type Profile, parseProfile } from "./profile/format.ts";
import {
	LATENCY_BOUNDS_MS,
	mergeStatsRows,
	type StatsRow,
	type StatsWindowReport,
} from "./stats.ts";

/**
 * One replica's live profile of one model version over one time window, as the registry stores it. Rows of several
 * replicas for the same window are merged when read; a replica rewrites its own row as the window fills.
 */
export interface WindowRow {
	model: string;
	/** Registry version; 1 for a model served from a bundle directory (as the server reports it). */
	version: number;
	/** Window start, epoch milliseconds (a multiple of the window length). */
	start: number;
	seconds: number;
	/** Which process observed it (host:pid:random), so replicas do not overwrite each other. */
	replica: string;
	rows: number;
	/** The profile as JSON (src/monitor/profile/format.ts). */
	profile: string;
}

/** One window of one version, every replica merged, with its drift. */
export interface MonitorWindow extends WindowDrift {
	version: number;
	start: string;
	end: string;
	rows: number;
	replicas: number;
	/** Whether the window is still filling (its end is in the future). */
	open: boolean;
}

/** Everything known about a model's drift over a period. */
export interface MonitorReport {
	model: string;
	since: string;
	min_rows: number;
	/** Versions seen, with their reference's size (null: the version has no reference profile). */
	versions: { version: number; reference_rows: number | null }[];
	windows: MonitorWindow[];
	/** The newest closed window with a verdict per version (what the gauges show). */
	latest: MonitorWindow[];
	/** Merged live profiles per version (over the whole period), for the report's histograms. */
	current: Record<string, Profile>;
	references: Record<string, Profile>;
	/** Upper bounds (ms) of the latency buckets in `stats` (then +Inf). */
	latency_bounds_ms: number[];
	/** Traffic, latency and feedback quality per window per version, every replica merged (with or without a reference). */
	stats: StatsWindowReport[];
	/** Stored rows left out because they could not be read, each naming the row and why (empty when none). */
	warnings: string[];
}

/** Merges rows of the same (version, window) from several replicas. */
export function mergeWindowRows(rows: readonly WindowRow[]): {
	version: number;
	start: number;
	seconds: number;
	replicas: number;
	profile: Profile;
}[] {
	const by = new Map<
		string,
		{
			version: number;
			start: number;
			seconds: number;
			replicas: number;
			profile: Profile;
		}
	>();
	for (const r of rows) {
		const key = `${r.version}\u0000${r.start}`;
		const p = parseProfile(
			r.profile,
			`monitor window ${r.model}@${r.version} ${new Date(r.start).toISOString()} (${r.replica})`,
		);
		const have = by.get(key);
		if (have) {
			have.profile = mergeProfiles(have.profile, p);
			have.replicas++;
		} else
			by.set(key, {
				version: r.version,
				start: r.start,
				seconds: r.seconds,
				replicas: 1,
				profile: p,
			});
	}
	return [...by.values()].sort(
		(a, b) => a.start - b.start || a.version - b.version,
	);
}

/**
 * Builds the report of a model's windows. `reference(version)` gives a version's reference profile (undefined:
 * none, its windows are listed without drift).
 */
export function monitorReport(
	model: string,
	since: number,
	rows: readonly WindowRow[],
	reference: (version: number) => Profile | undefined,
	opts: DriftOptions = {},
	now: number = Date.now(),
	statsRows: readonly StatsRow[] = [],
): MonitorReport {
	const windows: MonitorWindow[] = [];
	const current: Record<string, Profile> = {};
	const references: Record<string, Profile> = {};
	const versions = new Map<number, number | null>();
	for (const w of mergeWindowRows(rows)) {
		const ref = reference(w.version);
		versions.set(w.version, ref ? ref.rows : null);
		const v = String(w.version);
		if (ref) references[v] = ref;
		try {
			current[v] = current[v]
				? mergeProfiles(current[v], w.profile)
				: w.profile;
		} catch {
			// a window on other bin edges (the reference changed under the same version): left out of the total
		}
		const drift: WindowDrift = ref
			? windowDrift(ref, w.profile, opts)
			: {
					features: {},
					outputs: {},
					dataset: {
						columns: 0,
						drifted: 0,
						share: null,
						drift_share: opts.driftShare ?? 0.5,
						drifted_dataset: null,
					},
					prediction_drift: null,
				};
		const end = w.start + w.seconds * 1000;
		windows.push({
			version: w.version,
			start: new Date(w.start).toISOString(),
			end: new Date(end).toISOString(),
			rows: w.profile.rows,
			replicas: w.replicas,
			open: end > now,
			...drift,
		});
	}
	const warnings: string[] = [];
	const stats = mergeStatsRows(statsRows, now, warnings);
	for (const w of stats)
		if (!versions.has(w.version))
			versions.set(w.version, reference(w.version)?.rows ?? null);
	const latest: MonitorWindow[] = [];
	for (const version of versions.keys()) {
		const mine = windows.filter(
			(w) => w.version === version && !w.open && w.dataset.share !== null,
		);
		const last = mine[mine.length - 1];
		if (last) latest.push(last);
	}
	return {
		model,
		since: new Date(since).toISOString(),
		min_rows: opts.minRows ?? 50,
		versions: [...versions].map(([version, reference_rows]) => ({
			version,
			reference_rows,
		})),
		windows,
		latest,
		current,
		references,
		latency_bounds_ms: [...LATENCY_BOUNDS_MS],
		stats,
		warnings,
	};
}
