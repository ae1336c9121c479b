// Server settings: one zod schema (every field documented), read from defaults < config file < MLSHIP_* env < flags.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parseDuration } from "../protocol/duration.ts";
import { MlshipError } from "../protocol/errors.ts";
import { describeIssues, fieldPath } from "../protocol/issues.ts";

const int = (min: number) => z.coerce.number().int().min(min);
/** A list: an array, or one comma-separated string (an env variable); empty by default. */
const stringList = () =>
	z
		.union([z.string(), z.array(z.string())])
		.transform((v) =>
			(Array.isArray(v) ? v : v.split(","))
				.map((x) => x.trim())
				.filter(Boolean),
		)
		.default([]);

/** A switch: a boolean, or true/false/1/0 from an env variable; off by default. */
const flag = () =>
	z
		.union([
			z.boolean(),
			z
				.enum(["true", "false", "1", "0"])
				.transform((v) => v === "true" || v === "1"),
		])
		.default(false);

export const ServerSettingsSchema = z
	.object({
		host: z
			.string()
			.default("0.0.0.0")
			.describe("address to listen on (MLSHIP_HOST)"),
		http_port: int(0)
			.default(8080)
			.describe("REST port; 0 = any free port (MLSHIP_HTTP_PORT)"),
		grpc_port: int(-1)
			.default(8081)
			.describe(
				"gRPC port; 0 = any free port, -1 = no gRPC (MLSHIP_GRPC_PORT)",
			),
		models: z
			.array(
				z
					.object({
						name: z.string().min(1),
						source: z.string().min(1),
						entity_key: z
							.string()
							.min(1)
							.optional()
							.describe(
								"serve a per-entity family: requests name an entity (header x-mlship-entity, parameter entity or this key, or a feature of this name) and get that entity's newest version (source#entity); source is the default",
							),
						entity_fallback: z
							.boolean()
							.optional()
							.describe(
								"serve requests whose entity has no model with source (default true); false answers 404",
							),
					})
					.strict(),
			)
			.default([])
			.describe(
				"models to serve: a bundle directory, .onnx file or registry reference each (MLSHIP_MODELS=src[:name],...)",
			),
		registry: z
			.string()
			.optional()
			.describe("registry URI for registry references (MLSHIP_REGISTRY)"),
		lazy: flag().describe(
			"load models on their first request instead of at start (MLSHIP_LAZY)",
		),
		keep_going: flag().describe(
			"serve the models that loaded when another fails at start (default: exit non-zero, as Triton's --exit-on-error) (MLSHIP_KEEP_GOING)",
		),
		max_loaded_models: int(0)
			.default(0)
			.describe(
				"most models loaded at once; least recently used are unloaded (0 = no limit) (MLSHIP_MAX_LOADED_MODELS)",
			),
		memory_budget: z
			.union([z.number().int().min(0), z.string()])
			.transform((v, ctx) => (typeof v === "number" ? v : parseBytes(v, ctx)))
			.default(0)
			.describe(
				"most estimated memory of loaded models, bytes or with a unit (512MiB, 2GiB); least recently used are unloaded (0 = no limit) (MLSHIP_MEMORY_BUDGET)",
			),
		max_batch_size: int(1)
			.optional()
			.describe(
				"override every model's max_batch_size, rows (MLSHIP_MAX_BATCH_SIZE)",
			),
		max_queue_delay_us: int(0)
			.optional()
			.describe(
				"override every model's max_queue_delay_us (MLSHIP_MAX_QUEUE_DELAY_US)",
			),
		max_queue_size: int(0)
			.optional()
			.describe(
				"override every model's max_queue_size, requests (MLSHIP_MAX_QUEUE_SIZE)",
			),
		timeout_ms: int(0)
			.optional()
			.describe(
				"override every model's per-request timeout (MLSHIP_TIMEOUT_MS)",
			),
		processes: int(1)
			.default(1)
			.describe(
				"server processes sharing the HTTP and gRPC ports (node:cluster), so request parsing uses every core; /metrics sums them; not with log_payloads, monitor_window or ui (MLSHIP_PROCESSES)",
			),
		workers: int(1)
			.optional()
			.describe(
				"model worker threads, shared by every served model (default: cores / intra_op_threads) (MLSHIP_WORKERS)",
			),
		intra_op_threads: int(1)
			.optional()
			.describe(
				"onnxruntime threads per worker (default 1) (MLSHIP_INTRA_OP_THREADS)",
			),
		body_limit_bytes: int(1)
			.default(64 * 1024 * 1024)
			.describe(
				"largest request body; larger gets 413 (MLSHIP_BODY_LIMIT_BYTES)",
			),
		request_timeout_ms: int(0)
			.default(60_000)
			.describe(
				"HTTP request timeout: headers and body must arrive within it (the body read timeout) (MLSHIP_REQUEST_TIMEOUT_MS)",
			),
		shutdown_grace_ms: int(0)
			.default(30_000)
			.describe(
				"on SIGTERM, how long in-flight requests may take (MLSHIP_SHUTDOWN_GRACE_MS)",
			),
		retry_after_seconds: int(0)
			.default(1)
			.describe("Retry-After sent with 503 (MLSHIP_RETRY_AFTER_SECONDS)"),
		log_format: z
			.enum(["auto", "json", "pretty"])
			.default("auto")
			.describe(
				"log format: auto = pretty with a start-up banner on a terminal, JSON lines otherwise (MLSHIP_LOG_FORMAT)",
			),
		access_log: flag().describe(
			"log one line per request: method, path, status, duration, request id, model, version (MLSHIP_ACCESS_LOG)",
		),
		tls_cert: z
			.string()
			.min(1)
			.optional()
			.describe(
				"PEM certificate (chain) for REST and gRPC; with tls_key, both listen with TLS only; reloaded on SIGHUP (MLSHIP_TLS_CERT)",
			),
		tls_key: z
			.string()
			.min(1)
			.optional()
			.describe("PEM private key of tls_cert (MLSHIP_TLS_KEY)"),
		tls_client_ca: z
			.string()
			.min(1)
			.optional()
			.describe(
				"PEM CA bundle: clients must present a certificate it signed (mTLS); others are refused (MLSHIP_TLS_CLIENT_CA)",
			),
		monitor_window: z
			.string()
			.optional()
			.describe(
				"turn drift monitoring on: profile traffic of models with a reference profile in windows of this length (30s, 5m, 1h), stored in the registry so replicas merge; GET /v2/models/{m}/monitor (MLSHIP_MONITOR_WINDOW)",
			),
		monitor_min_rows: int(1)
			.default(50)
			.describe(
				"fewest rows a window needs for a drift verdict; below it the answer is 'not enough data' (MLSHIP_MONITOR_MIN_ROWS)",
			),
		monitor_method: z
			.enum(["default", "psi"])
			.default("default")
			.describe(
				"drift test: default = Evidently's choice by type and size (KS/chi²/Z below 1000 reference rows, Wasserstein/Jensen–Shannon above); psi = PSI for every column (MLSHIP_MONITOR_METHOD)",
			),
		alert_webhook: z
			.string()
			.url()
			.optional()
			.describe(
				"POST drift alerts (JSON) here, with hysteresis: an alert starts when a window drifts and ends below half the threshold or after 3 clean windows (MLSHIP_ALERT_WEBHOOK)",
			),
		feedback_max_ids: int(0)
			.default(100_000)
			.describe(
				"request ids kept so feedback can be joined to the version that served them, about 400 bytes each; oldest dropped first (0 = feedback off) (MLSHIP_FEEDBACK_MAX_IDS)",
			),
		feedback_retention: z
			.union([z.number().positive(), z.string()])
			.default("1h")
			.transform((v, ctx) => {
				try {
					return parseDuration(v, "feedback_retention");
				} catch (err) {
					ctx.addIssue({ code: "custom", message: (err as Error).message });
					return z.NEVER;
				}
			})
			.describe(
				"how long an answer can receive feedback: 30m, 1h, 1d (MLSHIP_FEEDBACK_RETENTION)",
			),
		quality_window: int(1)
			.default(1000)
			.describe(
				"live quality: the window figures cover this many of the newest rows with feedback (MLSHIP_QUALITY_WINDOW)",
			),
		log_level: z
			.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
			.default("info")
			.describe("log level (MLSHIP_LOG_LEVEL)"),
		auth: z
			.enum(["auto", "required", "off"])
			.default("auto")
			.describe(
				"API tokens: auto = required once any token exists in the registry, else predict/read open and admin refused; required = every call but health needs a token; off = no checks (MLSHIP_AUTH)",
			),
		rate_limit: stringList().describe(
			"rate limits per scope, per token (per client address without one): predict=1000/s, read=100/m; over it 429 + Retry-After / RESOURCE_EXHAUSTED (MLSHIP_RATE_LIMIT=a,b)",
		),
		max_connections: int(1)
			.default(10_000)
			.describe(
				"most open HTTP connections; more are closed at once (MLSHIP_MAX_CONNECTIONS)",
			),
		headers_timeout_ms: int(1)
			.default(10_000)
			.describe(
				"a client must send its request headers within this; slower (or idle new) connections are closed (MLSHIP_HEADERS_TIMEOUT_MS)",
			),
		max_header_bytes: int(1024)
			.default(16 * 1024)
			.describe(
				"largest request header block; larger gets 431 (MLSHIP_MAX_HEADER_BYTES)",
			),
		model_root: z
			.string()
			.min(1)
			.optional()
			.describe(
				"load of a model that is not served loads ROOT/NAME (bundle dir) or ROOT/NAME.onnx; no '..', no symlinks out (default: none, served models only) (MLSHIP_MODEL_ROOT)",
			),
		ui: flag().describe(
			"serve the web dashboard under /ui on the HTTP port (MLSHIP_UI)",
		),
		ui_servers: stringList().describe(
			"other mlship serve URLs the dashboard shows, comma-separated (MLSHIP_UI_SERVERS)",
		),
		ui_streams: stringList().describe(
			"stream processors the dashboard shows: their --metrics-port URLs, comma-separated (MLSHIP_UI_STREAMS)",
		),
		allow_open_admin: flag().describe(
			"let load/unload through without a token when no token is asked for (auth off, or auto with no tokens) (MLSHIP_ALLOW_OPEN_ADMIN)",
		),
		log_payloads: z
			.string()
			.min(1)
			.optional()
			.describe(
				"payload log of every prediction (request id, model, version, inputs, outputs, latency): a directory of Parquet files, postgres://USER@HOST/DB?table=T or kafka://HOST:PORT/TOPIC (MLSHIP_LOG_PAYLOADS)",
			),
		log_sample: z.coerce
			.number()
			.min(0)
			.max(1)
			.default(1)
			.describe(
				"share of predictions the payload log keeps, 0..1 (MLSHIP_LOG_SAMPLE)",
			),
		log_queue_size: int(1)
			.default(10_000)
			.describe(
				"payload-log records waiting to be written; past it records are dropped and counted (MLSHIP_LOG_QUEUE_SIZE)",
			),
		log_rotate_size: z
			.union([z.number().int().min(1), z.string()])
			.transform((v, ctx) => (typeof v === "number" ? v : parseBytes(v, ctx)))
			.default(64 * 1024 * 1024)
			.describe(
				"Parquet payload log: start a new file at this size of records, bytes or with a unit (MLSHIP_LOG_ROTATE_SIZE)",
			),
		log_rotate_interval: z
			.string()
			.default("1m")
			.transform((v, ctx) => durationMs(v, ctx))
			.describe(
				"Parquet payload log: start a new file at least this often (30s, 5m, 1h) (MLSHIP_LOG_ROTATE_INTERVAL)",
			),
		log_retention: z
			.string()
			.optional()
			.transform((v, ctx) => (v === undefined ? undefined : durationMs(v, ctx)))
			.describe(
				"Parquet payload log: delete files older than this (7d, 12h); default: keep them (MLSHIP_LOG_RETENTION)",
			),
		otlp_endpoint: z
			.string()
			.url()
			.optional()
			.describe(
				"export OpenTelemetry traces over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318/v1/traces (MLSHIP_OTLP_ENDPOINT)",
			),
	})
	.strict();

export type ServerSettings = z.infer<typeof ServerSettingsSchema>;
export type ServerSettingsInput = z.input<typeof ServerSettingsSchema>;

/** Parses a byte size: `1048576`, `512MiB`, `2GiB`, `1.5GB`, `800k` (k/M/G = 1000s, KiB/MiB/GiB = 1024s). */
export function parseBytes(text: string, ctx?: z.RefinementCtx): number {
	const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$/i.exec(text);
	if (!m) {
		const msg = `expected a size such as 512MiB, 2GiB or a number of bytes, got '${text}'`;
		if (ctx) {
			ctx.addIssue({ code: "custom", message: msg });
			return z.NEVER;
		}
		throw new MlshipError("MLSHIP_INVALID_ARGUMENT", msg);
	}
	const power = " kmgt".indexOf((m[2] || " ").toLowerCase());
	const base = m[3] ? 1024 : 1000;
	return Math.round(Number(m[1]) * base ** power);
}

function durationMs(v: string, ctx: z.RefinementCtx): number {
	try {
		return parseDuration(v, "duration");
	} catch (err) {
		ctx.addIssue({ code: "custom", message: (err as Error).message });
		return z.NEVER;
	}
}

/** Parses `src[:name],src[:name]` (MLSHIP_MODELS, --model). A name after the last ':' is used when given. */
export function parseModelArg(arg: string): { source: string; name?: string } {
	const m = /^(.+):([A-Za-z0-9][A-Za-z0-9._-]*)$/.exec(arg);
	return m ? { source: m[1] as string, name: m[2] as string } : { source: arg };
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const key of Object.keys(ServerSettingsSchema.shape)) {
		const v = env[`MLSHIP_${key.toUpperCase()}`];
		if (v === undefined || v === "") continue;
		out[key] =
			key === "models"
				? v
						.split(",")
						.map((s) => s.trim())
						.filter(Boolean)
						.map(parseModelArg)
				: v;
	}
	return out;
}

/**
 * Resolves settings: defaults, then the config file (YAML/JSON), then MLSHIP_* env, then `flags`.
 * Errors name the field and where it came from.
 */
export function resolveSettings(
	flags: Record<string, unknown>,
	configPath?: string,
	env = process.env,
): ServerSettings {
	let file: Record<string, unknown> = {};
	if (configPath) {
		try {
			file = (parseYaml(readFileSync(configPath, "utf8")) ?? {}) as Record<
				string,
				unknown
			>;
		} catch (err) {
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`cannot read config ${configPath}: ${(err as Error).message}`,
			);
		}
	}
	const merged: Record<string, unknown> = { ...file, ...fromEnv(env) };
	for (const [k, v] of Object.entries(flags))
		if (v !== undefined) merged[k] = v;
	const r = ServerSettingsSchema.safeParse(merged);
	if (!r.success) {
		// Each field is named where its value came from: a flag, an env variable, or the config file.
		const env2 = fromEnv(env);
		const name = (path: readonly PropertyKey[]) => {
			const k = String(path[0]);
			const rest = fieldPath([0, ...path.slice(1)]).slice(3);
			if (flags[k] !== undefined && path.length === 1)
				return `--${k.replaceAll("_", "-")}`;
			if (env2[k] !== undefined) return `MLSHIP_${k.toUpperCase()}${rest}`;
			return configPath
				? `${fieldPath(path)} (${configPath})`
				: fieldPath(path);
		};
		const expects = { http_port: "a port number", grpc_port: "a port number" };
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`invalid server settings:\n  ${describeIssues(r.error, merged, { name, expects }).join("\n  ")}`,
		);
	}
	return r.data;
}
