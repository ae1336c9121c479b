// Test helper: the Python of tools/clients/.venv, where scripts/setup installs Triton's client (tritonclient).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./fixtures.ts";

export const TRITON_PYTHON = join(REPO, "tools/clients/.venv/bin/python");

/** Fails (never skips) when tritonclient is not installed: scripts/setup installs it. */
export function assertTritonclient(): void {
	const check = spawnSync(TRITON_PYTHON, [
		"-c",
		"import tritonclient.http, tritonclient.grpc",
	]);
	assert.equal(
		check.status,
		0,
		`tritonclient is not installed in tools/clients/.venv: run scripts/setup (${check.stderr})`,
	);
}
