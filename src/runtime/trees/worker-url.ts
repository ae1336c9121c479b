// Where the trees worker entry lives (.ts from sources, .js from dist/), for its WorkerPool.
import { extname } from "node:path";
import { fileURLToPath } from "node:url";

export const WORKER_URL = new URL(
	`./worker${extname(fileURLToPath(import.meta.url))}`,
	import.meta.url,
);
