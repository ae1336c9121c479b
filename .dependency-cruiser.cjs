// Layer rules of mlship (docs/architecture.md), checked by `npm run lint:deps` as part of `npm test`.
/** Adapters: each turns one pattern's input into calls on the core. */
const ADAPTERS = "^src/(server|stream|batch|sql|cli)/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
	forbidden: [
		{
			name: "no-circular",
			severity: "error",
			comment:
				"Imports never run in a circle (type-only imports included): a cycle makes load order matter and layers meaningless.",
			from: {},
			to: { circular: true },
		},
		{
			name: "adapters-not-runtimes",
			severity: "error",
			comment:
				"Adapters run models through the model instance (dataplane/instance.ts, model.ts) or the data plane, never through a runtime; only the Runtime types may be named.",
			from: { path: ADAPTERS },
			to: { path: "^src/runtime/", pathNot: "^src/runtime/types\\.ts$" },
		},
		{
			name: "lower-layers-not-upward",
			severity: "error",
			comment:
				"runtime, codec, protocol, registry, bundle, monitor, experiments (policy shapes) and trees (the tree/linear representation) sit below the data plane and the adapters and never import them (nor the top-level APIs).",
			from: {
				path: "^src/(runtime|codec|protocol|registry|bundle|monitor|experiments|trees)/",
			},
			to: {
				path: [
					"^src/(dataplane|server|stream|batch|sql|cli)/",
					"^src/(model|index)\\.ts$",
				],
			},
		},
		{
			name: "dataplane-not-adapters",
			severity: "error",
			comment:
				"The data plane (model instance, cache, router, follower) knows no adapter and not the embedded API built on it.",
			from: { path: "^src/dataplane/" },
			to: {
				path: [
					"^src/(server|stream|batch|sql|cli)/",
					"^src/(model|index)\\.ts$",
				],
			},
		},
		{
			name: "only-onnx-runtime-imports-onnxruntime",
			severity: "error",
			comment:
				"onnxruntime-node is an implementation detail of the ONNX runtime: everything else reaches it through the runtime registry.",
			from: { pathNot: "^src/runtime/onnx/" },
			to: { path: "(^|/)node_modules/onnxruntime-(node|common)/" },
		},
		{
			name: "core-not-onnx",
			severity: "error",
			comment:
				"Nothing outside src/runtime/onnx/ imports the ONNX runtime's code, except the runtime registry, which imports it lazily on first use.",
			from: { path: "^src/", pathNot: "^src/runtime/(onnx/|registry\\.ts$)" },
			to: { path: "^src/runtime/onnx/" },
		},
		{
			name: "trees-below-runtime",
			severity: "error",
			comment:
				"The tree/linear representation (src/trees/) is plain data and functions on it: runtimes and a SQL compiler walk it, it imports no runtime.",
			from: { path: "^src/trees/" },
			to: { path: "^src/runtime/" },
		},
	],
	options: {
		doNotFollow: { path: "node_modules" },
		tsPreCompilationDeps: true,
		tsConfig: { fileName: "tsconfig.json" },
		exclude: { path: "^src/server/grpc/proto/" },
	},
};
