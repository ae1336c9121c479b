// Builds dist/ for the published package: compiled JS + .d.ts from src/, plus the runtime assets tsc does not copy.
// Run by `npm run build` and by `prepare` (so `npm pack`, `npm publish` and git installs always ship a fresh dist/).
import { execFileSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

// A stale dist/ could ship files whose sources are gone.
rmSync(`${root}dist`, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, "-p", `${root}tsconfig.build.json`], {
	stdio: "inherit",
});
// The vendored OIP proto, read by @grpc/proto-loader at run time beside proto.js.
cpSync(
	`${root}src/server/grpc/grpc_service.proto`,
	`${root}dist/server/grpc/grpc_service.proto`,
);
// The dashboard's page, script and style, served from beside dist/server/ui/routes.js (plain files, no build step).
cpSync(`${root}src/server/ui/public`, `${root}dist/server/ui/public`, {
	recursive: true,
});
