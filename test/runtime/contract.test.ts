// The ONNX runtime runs the runtime contract in every execution mode: inline, pool, shared pool and blocking.

import { runtime } from "../../src/runtime/registry.ts";
import type { LoadOptions, SharedExecutor } from "../../src/runtime/types.ts";
import { FIXTURES } from "../helpers/fixtures.ts";
import { runRuntimeContract } from "./contract.ts";

const onnx = () => runtime("onnx");

runRuntimeContract(
	{ name: "onnx inline", runtime: onnx, options: () => ({ mode: "inline" }) },
	FIXTURES,
);

runRuntimeContract(
	{
		name: "onnx pool",
		runtime: onnx,
		options: () => ({ mode: "pool", workers: 2 }),
	},
	FIXTURES,
);

let shared: SharedExecutor | undefined;
runRuntimeContract(
	{
		name: "onnx shared pool",
		runtime: onnx,
		setup: async () => {
			const rt = await onnx();
			shared = await rt.startShared?.(2);
		},
		options: (): LoadOptions => ({
			mode: "pool",
			shared: shared as SharedExecutor,
		}),
		teardown: async () => {
			await shared?.close();
		},
	},
	FIXTURES,
);

runRuntimeContract(
	{
		name: "onnx auto (inline small batches, pool when busy)",
		runtime: onnx,
		options: () => ({ mode: "auto", workers: 1 }),
	},
	FIXTURES,
);

runRuntimeContract(
	{
		name: "onnx blocking",
		runtime: onnx,
		options: () => ({ mode: "blocking" }),
		sync: true,
	},
	FIXTURES,
);
