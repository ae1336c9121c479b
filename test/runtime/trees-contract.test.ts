// The trees runtime runs the runtime contract in every execution mode, on its native-format fixtures (XGBoost
// JSON, LightGBM text, PMML) and on the ONNX tree/linear fixtures it reads, against the original libraries' goldens.
import { runtime } from "../../src/runtime/registry.ts";
import { TREE_FIXTURES } from "../helpers/fixtures.ts";
import { runRuntimeContract } from "./contract.ts";

const trees = () => runtime("trees");
/** ONNX fixtures holding one tree ensemble or linear model (digits-mlp is a neural network: not a trees model). */
const ONNX_TREES = [
	"breast-cancer-gbdt",
	"diabetes-cats-ridge",
	"diabetes-lgbm",
	"diabetes-rf",
	"diabetes-sex-ridge",
	"iris-logreg",
	"wine-xgb",
];
const ALL = [...TREE_FIXTURES, ...ONNX_TREES];

runRuntimeContract(
	{ name: "trees inline", runtime: trees, options: () => ({ mode: "inline" }) },
	ALL,
);
runRuntimeContract(
	{
		name: "trees pool",
		runtime: trees,
		options: () => ({ mode: "pool", workers: 2 }),
	},
	ALL,
);
runRuntimeContract(
	{
		name: "trees auto (inline small batches, pool when busy)",
		runtime: trees,
		options: () => ({ mode: "auto", workers: 1 }),
	},
	ALL,
);
runRuntimeContract(
	{
		name: "trees blocking",
		runtime: trees,
		options: () => ({ mode: "blocking" }),
		sync: true,
	},
	ALL,
);
