// axe-core in a dashboard page: the serious and critical accessibility violations (rule, impact, nodes).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Page } from "playwright-core";

const AXE = readFileSync(
	createRequire(import.meta.url).resolve("axe-core/axe.min.js"),
	"utf8",
);

/**
 * Runs axe-core in the page; returns the serious and critical violations (rule id and the nodes' targets).
 * @example assert.deepEqual(await axe(page), []);
 */
export async function axe(page: Page): Promise<string[]> {
	await page.addScriptTag({ content: AXE });
	const found = await page.evaluate(async () => {
		const r = await (
			globalThis as unknown as {
				axe: {
					run(): Promise<{
						violations: {
							id: string;
							impact: string;
							nodes: { target: unknown }[];
						}[];
					}>;
				};
			}
		).axe.run();
		return r.violations.map((v) => ({
			id: v.id,
			impact: v.impact,
			targets: v.nodes.map((n) => JSON.stringify(n.target)),
		}));
	});
	return found
		.filter((v) => v.impact === "serious" || v.impact === "critical")
		.map((v) => `${v.id} (${v.impact}): ${v.targets.join(" ")}`);
}
