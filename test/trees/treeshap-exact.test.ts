// TreeSHAP (path-dependent) equals the Shapley values of the path-dependent expectation computed from their
// definition, over every subset of features (Lundberg et al. 2018, Algorithm 1), on seeded random trees that are
// deep, split on the same feature many times, send NaN either way and hold several targets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rawScores } from "../../src/trees/eval.ts";
import { explainTree, MAX_EXPLAIN_DEPTH } from "../../src/trees/explain.ts";
import {
	goesLeft,
	LE,
	LT,
	type Tree,
	TreeBuilder,
	type TreeModel,
} from "../../src/trees/ir.ts";

/** A 32-bit LCG in [0, 1): the same trees every run. */
function rng(seed: number): () => number {
	let s = seed >>> 0;
	return () => {
		s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
		return s / 2 ** 32;
	};
}

/** A random tree over `nf` features down to `depth`, every node's cover the sum of its children's. */
function randomTree(
	rand: () => number,
	nf: number,
	depth: number,
	T: number,
	only: number,
	spine = false,
): Tree {
	const b = new TreeBuilder(T);
	// spine: one child of every split is a leaf, the path splits on feature d at depth d (long unique paths).
	const grow = (d: number, leaf = false): [number, number] => {
		const id = b.node();
		if (leaf || d === depth || (!spine && d > 1 && rand() < 0.15)) {
			for (let t = 0; t < T; t++)
				if (only < 0 || t === only) b.addValue(id, t, rand() * 4 - 2);
			const cover = 1 + Math.floor(rand() * 50);
			b.setCover(id, cover);
			return [id, cover];
		}
		const stop = spine ? (rand() < 0.5 ? 0 : 1) : -1;
		const [l, cl] = grow(d + 1, stop === 0);
		const [r, cr] = grow(d + 1, stop === 1);
		b.split(
			id,
			spine ? d % nf : Math.floor(rand() * nf),
			rand() < 0.5 ? LT : LE,
			Math.round(rand() * 8) / 4,
			l,
			r,
			rand() < 0.5,
		);
		b.setCover(id, cl + cr);
		return [id, cl + cr];
	};
	grow(0);
	return b.build("random");
}

function model(
	trees: Tree[],
	nf: number,
	T: number,
	aggregate: "sum" | "average",
): TreeModel {
	return {
		format: "test",
		features: Array.from({ length: nf }, (_, j) => ({
			name: `f${j}`,
			input: 0,
			column: j,
		})),
		targets: T,
		body: { kind: "ensemble", trees, aggregate },
		base: Float64Array.from({ length: T }, (_, t) => t * 0.5),
		link: "identity",
		head: { kind: "regression" },
		signature: {
			inputs: [{ name: "x", datatype: "FP64", shape: [-1, nf] }],
			outputs: [{ name: "variable", datatype: "FP64", shape: [-1, T] }],
		},
	};
}

/** Algorithm 1: E[f(x) | x_S] of one tree, following x at features in S and the covers elsewhere. */
function expValue(
	tree: Tree,
	x: Float64Array,
	inS: (f: number) => boolean,
	t: number,
	T: number,
): number {
	const g = (n: number): number => {
		const f = tree.feature[n] as number;
		if (f < 0) return tree.value[n * T + t] as number;
		const l = tree.left[n] as number;
		const r = tree.right[n] as number;
		if (inS(f)) return g(goesLeft(tree, n, x[f] as number) ? l : r);
		return (
			(g(l) * (tree.cover[l] as number) + g(r) * (tree.cover[r] as number)) /
			(tree.cover[n] as number)
		);
	};
	return g(0);
}

/** Shapley values from their definition: Σ_S |S|!(M−|S|−1)!/M! (v(S ∪ i) − v(S)), summed over the trees. */
function bruteForce(m: TreeModel, x: Float64Array): Float64Array {
	const body = m.body;
	if (body.kind !== "ensemble") throw new Error("ensemble");
	const M = m.features.length;
	const T = m.targets;
	const fact = [1];
	for (let k = 1; k <= M; k++) fact[k] = (fact[k - 1] as number) * k;
	const scale = body.aggregate === "average" ? 1 / body.trees.length : 1;
	const phi = new Float64Array(T * M);
	for (let t = 0; t < T; t++)
		for (const tree of body.trees)
			for (let mask = 0; mask < 1 << M; mask++) {
				const size = popcount(mask);
				const v = expValue(tree, x, (f) => ((mask >> f) & 1) === 1, t, T);
				for (let i = 0; i < M; i++) {
					if ((mask >> i) & 1) continue;
					const with_ = expValue(
						tree,
						x,
						(f) => f === i || ((mask >> f) & 1) === 1,
						t,
						T,
					);
					const w =
						((fact[size] as number) * (fact[M - size - 1] as number)) /
						(fact[M] as number);
					phi[t * M + i] = (phi[t * M + i] as number) + w * (with_ - v) * scale;
				}
			}
	return phi;
}

function popcount(n: number): number {
	let c = 0;
	for (let v = n; v; v &= v - 1) c++;
	return c;
}

/** base + Σ values = the raw score, for every row and target. */
function assertAdds(
	m: TreeModel,
	X: Float64Array,
	rows: number,
	e: ReturnType<typeof explainTree>,
): void {
	const raw = rawScores(m, X, rows);
	const nf = m.features.length;
	for (let r = 0; r < rows; r++)
		for (let t = 0; t < m.targets; t++) {
			let sum = e.base[t] as number;
			for (let j = 0; j < nf; j++)
				sum += e.values[(r * m.targets + t) * nf + j] as number;
			const want = raw[r * m.targets + t] as number;
			assert.ok(
				Math.abs(sum - want) <= 1e-9 * (1 + Math.abs(want)),
				`row ${r} target ${t}: base + values ${sum}, raw score ${want}`,
			);
		}
}

describe("TreeSHAP equals Shapley values computed from the definition", () => {
	const cases = [
		{
			name: "one target, deep (12 levels), 7 features split on again and again",
			nf: 7,
			depth: 12,
			T: 1,
			trees: 3,
			only: false,
			agg: "sum" as const,
		},
		{
			name: "three targets, one tree per class (as XGBoost and LightGBM grow them)",
			nf: 6,
			depth: 8,
			T: 3,
			trees: 6,
			only: true,
			agg: "sum" as const,
		},
		{
			name: "three targets in every leaf, averaged (a random forest)",
			nf: 5,
			depth: 9,
			T: 3,
			trees: 4,
			only: false,
			agg: "average" as const,
		},
		{
			name: "as many features as levels: every leaf's path can hold them all",
			nf: 10,
			depth: 10,
			T: 1,
			trees: 2,
			only: false,
			agg: "sum" as const,
		},
	];
	for (const c of cases)
		it(c.name, () => {
			const rand = rng(c.nf * 1000 + c.depth);
			const trees = Array.from({ length: c.trees }, (_, k) =>
				randomTree(rand, c.nf, c.depth, c.T, c.only ? k % c.T : -1),
			);
			const m = model(trees, c.nf, c.T, c.agg);
			// Several blocks of rows (the walk explains rows in blocks): check rows at both ends of each.
			const rows = 600;
			const X = new Float64Array(rows * c.nf);
			for (let i = 0; i < X.length; i++)
				X[i] = rand() < 0.1 ? Number.NaN : Math.round(rand() * 8) / 4;
			const e = explainTree(m, [
				{ name: "x", datatype: "FP64", shape: [rows, c.nf], data: X },
			]);
			for (const r of [0, 1, 2, 255, 256, 257, 511, 512, 599]) {
				const want = bruteForce(m, X.subarray(r * c.nf, (r + 1) * c.nf));
				for (let k = 0; k < want.length; k++) {
					const got = e.values[r * c.T * c.nf + k] as number;
					assert.ok(
						Math.abs(got - (want[k] as number)) <=
							1e-9 * (1 + Math.abs(want[k] as number)),
						`row ${r}, target ${Math.floor(k / c.nf)}, feature ${k % c.nf}: ${got} vs ${want[k]}`,
					);
				}
			}
			assertAdds(m, X, rows, e);
		});
});

describe("TreeSHAP on paths longer than the block walk's bit masks", () => {
	it("40 features, 34 levels: explained row by row, and the values still add up to the score", () => {
		const rand = rng(4034);
		const nf = 40;
		const trees = Array.from({ length: 2 }, () =>
			randomTree(rand, nf, 34, 1, -1, true),
		);
		const m = model(trees, nf, 1, "sum");
		const rows = 20;
		const X = new Float64Array(rows * nf);
		for (let i = 0; i < X.length; i++) X[i] = Math.round(rand() * 8) / 4;
		const e = explainTree(m, [
			{ name: "x", datatype: "FP64", shape: [rows, nf], data: X },
		]);
		assertAdds(m, X, rows, e);
	});
});

describe("TreeSHAP's depth limit", () => {
	for (const nf of [20, 40])
		it(`a ${MAX_EXPLAIN_DEPTH}-level tree over ${nf} features is explained, and adds up`, () => {
			const rand = rng(nf);
			const m = model(
				[randomTree(rand, nf, MAX_EXPLAIN_DEPTH, 1, -1, true)],
				nf,
				1,
				"sum",
			);
			const rows = 300;
			const X = new Float64Array(rows * nf);
			for (let i = 0; i < X.length; i++) X[i] = Math.round(rand() * 8) / 4;
			const e = explainTree(m, [
				{ name: "x", datatype: "FP64", shape: [rows, nf], data: X },
			]);
			assertAdds(m, X, rows, e);
		});
	it("a deeper one is refused, naming the tree and its depth", () => {
		const m = model(
			[
				randomTree(rng(1), 5, 2, 1, -1),
				randomTree(rng(2), 5, MAX_EXPLAIN_DEPTH + 1, 1, -1, true),
			],
			5,
			1,
			"sum",
		);
		assert.throws(
			() =>
				explainTree(m, [
					{
						name: "x",
						datatype: "FP64",
						shape: [1, 5],
						data: new Float64Array(5),
					},
				]),
			(e: { code?: string; message: string }) =>
				e.code === "MLSHIP_UNSUPPORTED_MODEL" &&
				/tree 1 of the test model is 1001 levels deep; TreeSHAP explains trees of at most 1000 levels/.test(
					e.message,
				),
		);
	});
});
