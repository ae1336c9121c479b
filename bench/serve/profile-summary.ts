// Summarises V8 .cpuprofile files (from `--cpu-prof`, e.g. bench/serve/run.ts --profile): self time by function and
// by area (the package or source folder a function lives in), per thread profile, largest first. Idle and GC
// are listed on their own lines, and shares are of the profile's non-idle samples.
//
//   node bench/serve/profile-summary.ts bench/out/serve/prof/CPU.*.cpuprofile [--top 40]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface CallFrame {
	functionName: string;
	url: string;
	lineNumber: number;
}
interface ProfileNode {
	id: number;
	callFrame: CallFrame;
	children?: number[];
}
interface Profile {
	nodes: ProfileNode[];
	samples: number[];
	timeDeltas: number[];
	startTime: number;
	endTime: number;
}

const { values, positionals } = parseArgs({
	allowPositionals: true,
	options: { top: { type: "string", default: "40" } },
});
const TOP = Number(values.top);
if (positionals.length === 0) {
	process.stderr.write(
		"usage: node bench/serve/profile-summary.ts FILE.cpuprofile... [--top 40]\n",
	);
	process.exit(2);
}

/** Where a frame's code lives: node:internal module, a package, or a source folder of this repository. */
function area(url: string, name: string): string {
	if (name === "(garbage collector)") return "(gc)";
	if (name === "(idle)" || name === "(program)" || name === "(root)")
		return name;
	if (url === "") return "(native)";
	const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
	if (nm) return nm[1] as string;
	if (url.startsWith("node:")) {
		const m = /^node:(?:internal\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
		return `node:${m?.[1] ?? url}`;
	}
	const src = /\/(src|bench)\/(.+)$/.exec(url);
	if (src)
		return `${src[1]}/${(src[2] as string).split("/").slice(0, -1).join("/") || "."}`;
	return url;
}

for (const file of positionals) {
	const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
	const byId = new Map(p.nodes.map((n) => [n.id, n]));
	const selfUs = new Map<number, number>();
	for (let i = 0; i < p.samples.length; i++) {
		const id = p.samples[i] as number;
		// timeDeltas[i] is the time before sample i; attribute the next delta to this sample (V8's convention).
		const dt = p.timeDeltas[i + 1] ?? 0;
		selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
	}
	const fn = new Map<string, number>();
	const areas = new Map<string, number>();
	let total = 0;
	let idle = 0;
	for (const [id, us] of selfUs) {
		const n = byId.get(id);
		if (!n) continue;
		const f = n.callFrame;
		if (f.functionName === "(idle)") {
			idle += us;
			continue;
		}
		total += us;
		const where = f.url
			? `${f.url.replace(/^.*\/(node_modules|src|bench)\//, "$1/")}:${f.lineNumber + 1}`
			: "";
		const key = `${f.functionName || "(anonymous)"} ${where}`.trim();
		fn.set(key, (fn.get(key) ?? 0) + us);
		const a = area(f.url, f.functionName);
		areas.set(a, (areas.get(a) ?? 0) + us);
	}
	const wall = (p.endTime - p.startTime) / 1e6;
	process.stdout.write(
		`\n${file}: ${wall.toFixed(1)} s profiled, ${(total / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle\n`,
	);
	const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
	process.stdout.write("  by area:\n");
	for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 20))
		process.stdout.write(`    ${pct(us)}  ${a}\n`);
	process.stdout.write(`  top ${TOP} functions (self time):\n`);
	for (const [k, us] of [...fn].sort((x, y) => y[1] - x[1]).slice(0, TOP))
		process.stdout.write(`    ${pct(us)}  ${k}\n`);
}
