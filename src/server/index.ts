// "mlship/server": `mlship serve` in your process — Open Inference Protocol v2 over REST and gRPC.

export type { DataPlane } from "../dataplane/types.ts";
export { type RunningServer, startServer } from "./server.ts";
export {
	resolveSettings,
	type ServerSettings,
	type ServerSettingsInput,
} from "./settings.ts";
