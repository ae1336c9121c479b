// A fixture bundle copied with a reference profile of given rows (as `bundle init --reference` adds one).
import { createHash } from "node:crypto";
import {
	cpSync,
	mkdtempSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { referenceProfile } from "../../src/monitor/profile/build.ts";
import { stringifyProfile } from "../../src/monitor/profile/format.ts";
import { bundleDir } from "./fixtures.ts";

const dirs: string[] = [];
after(() => {
	for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temporary copy of the fixture bundle `fixture` (removed after the test file). */
export function fixtureCopy(fixture: string): string {
	const dir = mkdtempSync(join(tmpdir(), "mlship-reference-"));
	dirs.push(dir);
	cpSync(bundleDir(fixture), dir, { recursive: true });
	return dir;
}

/** A temporary copy of `fixture` whose mlship.yaml names a reference profile of `rows` (numeric columns). */
export function withReference(
	fixture: string,
	rows: Record<string, unknown>[],
): string {
	const dir = fixtureCopy(fixture);
	const names = Object.keys(rows[0] as object);
	const text = stringifyProfile(
		referenceProfile(
			rows.length,
			names.map((name) => ({
				name,
				kind: "numeric",
				values: rows.map((r) => r[name]),
			})),
			[],
		),
	);
	writeFileSync(join(dir, "reference.json"), text);
	const sha = createHash("sha256").update(text).digest("hex");
	const yaml = readFileSync(join(dir, "mlship.yaml"), "utf8");
	writeFileSync(
		join(dir, "mlship.yaml"),
		`${yaml}profile: { path: reference.json, sha256: ${sha} }\n`,
	);
	return dir;
}
