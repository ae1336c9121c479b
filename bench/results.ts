// What every bench shares: the machine line and rewriting its own `## name` section of bench/RESULTS.md.
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { availableParallelism, cpus, totalmem } from "node:os";
import { join } from "node:path";

const RESULTS = join(import.meta.dirname, "RESULTS.md");
const HEADER =
	"# Benchmark results\n\nEach `##` section is written by its own bench (see bench/README.md); re-running a bench replaces only its section.\n";

/** `2 cores (nproc), <cpu>, 23.5 GiB RAM, Node v24…, Linux` plus any `extra` tool versions. */
export function machine(extra = ""): string {
	const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
	return `${availableParallelism()} cores (nproc), ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, Linux${extra ? `, ${extra}` : ""}`;
}

/** Replaces the `## name` section of bench/RESULTS.md with `section` (appended when absent). */
export async function writeSection(
	name: string,
	section: string,
): Promise<void> {
	const text = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : HEADER;
	const start = text.search(new RegExp(`^## ${name}\\s*$`, "m"));
	let next: string;
	if (start < 0) next = `${text.trimEnd()}\n\n${section}`;
	else {
		const after = text.slice(start + 1).search(/^## /m);
		const end = after < 0 ? text.length : start + 1 + after;
		const rest = text.slice(end);
		next = `${text.slice(0, start)}${section.trimEnd()}\n${rest ? `\n${rest}` : ""}`;
	}
	await writeFile(RESULTS, `${next.trimEnd()}\n`);
}
