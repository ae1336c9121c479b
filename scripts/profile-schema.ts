// Writes docs/profile.schema.json, the published JSON Schema of the profile format, from its zod schema.
import { writeFileSync } from "node:fs";
import { profileJsonSchema } from "../src/monitor/profile/format.ts";

writeFileSync(
	new URL("../docs/profile.schema.json", import.meta.url),
	`${JSON.stringify(profileJsonSchema(), null, "\t")}\n`,
);
