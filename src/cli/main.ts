#!/usr/bin/env node
// The `mlship` command: one file per subcommand; only the one invoked is loaded (src/cli/commands.ts).
import { buildProgram } from "./commands.ts";

await (await buildProgram(process.argv.slice(2))).parseAsync(process.argv);
