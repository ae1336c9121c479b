// KernelSHAP (Lundberg & Lee 2017) for models no exact method covers: Shapley values of the game
// v(S) = f(x_S, b_{S̄}) against one background row b (the reference profile's means and most frequent values),
// fitted by the Shapley-kernel weighted least squares with the efficiency constraint. Every coalition when there
// are at most `samples` of them (then the values are exact for that game), else `samples` coalitions drawn with a
// seeded generator (the same seed gives the same values).
import type { Row } from "../codec/table.ts";
import type { Profile } from "../monitor/profile/format.ts";
import { MlshipError } from "../protocol/errors.ts";

/** Coalitions evaluated per row by default (model rows scored per explained row). */
export const KERNEL_SAMPLES = 2048;
/** Seed of the coalition sampler by default. */
export const KERNEL_SEED = 1;

export interface KernelOptions {
	/** Most coalitions per row (from 2 to 100,000); every one when 2^M − 2 fit. Default 2048. */
	samples?: number | undefined;
	/** Seed of the sampler. Default 1. */
	seed?: number | undefined;
}

export interface KernelValues {
	/** f(background) per target. */
	base: Float64Array;
	/** rows × targets × features. */
	values: Float64Array;
	targets: number;
	/** Coalitions evaluated per row, and whether that was all of them. */
	coalitions: number;
	exact: boolean;
}

/** The background row of a reference profile: each feature's mean (numeric) or most frequent value (categorical). */
export function backgroundRow(
	profile: Profile,
	features: readonly string[],
): Row {
	const row: Row = {};
	for (const name of features) {
		const c = profile.features[name];
		if (!c)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`KernelSHAP: the reference profile has no column '${name}'; rebuild it with mlship bundle init DIR --reference TRAINING.csv`,
			);
		if (c.kind === "numeric") row[name] = c.count > 0 ? c.sum / c.count : null;
		else row[name] = c.top[0]?.[0] ?? null;
	}
	return row;
}

/** mulberry32: a small seeded generator, uniform in [0, 1) (the same seed, the same sequence). */
export function seededRandom(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function binomial(n: number, k: number): number {
	let r = 1;
	for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
	return r;
}

/** Coalitions (feature masks) and their weights: all of them with Shapley-kernel weights, or a weighted sample. */
function coalitions(
	m: number,
	samples: number,
	seed: number,
): { masks: Uint8Array[]; weights: number[]; exact: boolean } {
	const masks: Uint8Array[] = [];
	const weights: number[] = [];
	if (m < 31 && 2 ** m - 2 <= samples) {
		for (let s = 1; s < 2 ** m - 1; s++) {
			const z = new Uint8Array(m);
			let k = 0;
			for (let j = 0; j < m; j++)
				if ((s >> j) & 1) {
					z[j] = 1;
					k++;
				}
			masks.push(z);
			weights.push((m - 1) / (binomial(m, k) * k * (m - k)));
		}
		return { masks, weights, exact: true };
	}
	// Size k with probability ∝ (M − 1) / (k (M − k)), then a uniform subset of that size: weight 1 each.
	const rand = seededRandom(seed);
	const sizeW = Array.from(
		{ length: m - 1 },
		(_, i) => 1 / ((i + 1) * (m - i - 1)),
	);
	const total = sizeW.reduce((a, b) => a + b, 0);
	const order = Array.from({ length: m }, (_, j) => j);
	for (let c = 0; c < samples; c++) {
		let u = rand() * total;
		let k = 1;
		for (; k < m - 1 && u >= (sizeW[k - 1] as number); k++)
			u -= sizeW[k - 1] as number;
		for (let i = 0; i < k; i++) {
			const j = i + Math.floor(rand() * (m - i));
			[order[i], order[j]] = [order[j] as number, order[i] as number];
		}
		const z = new Uint8Array(m);
		for (let i = 0; i < k; i++) z[order[i] as number] = 1;
		masks.push(z);
		weights.push(1);
	}
	return { masks, weights, exact: false };
}

/** Solves A x = b (n × n, row-major) by Gaussian elimination with partial pivoting; A and b are overwritten. */
function solve(A: Float64Array, b: Float64Array, n: number): Float64Array {
	for (let c = 0; c < n; c++) {
		let p = c;
		for (let r = c + 1; r < n; r++)
			if (Math.abs(A[r * n + c] as number) > Math.abs(A[p * n + c] as number))
				p = r;
		if (Math.abs(A[p * n + c] as number) < 1e-300)
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				"KernelSHAP: the sampled coalitions do not determine every feature; raise the sample count",
			);
		if (p !== c) {
			for (let k = 0; k < n; k++) {
				const t = A[c * n + k] as number;
				A[c * n + k] = A[p * n + k] as number;
				A[p * n + k] = t;
			}
			const t = b[c] as number;
			b[c] = b[p] as number;
			b[p] = t;
		}
		for (let r = c + 1; r < n; r++) {
			const f = (A[r * n + c] as number) / (A[c * n + c] as number);
			if (f === 0) continue;
			for (let k = c; k < n; k++)
				A[r * n + k] = (A[r * n + k] as number) - f * (A[c * n + k] as number);
			b[r] = (b[r] as number) - f * (b[c] as number);
		}
	}
	const x = new Float64Array(n);
	for (let r = n - 1; r >= 0; r--) {
		let s = b[r] as number;
		for (let k = r + 1; k < n; k++)
			s -= (A[r * n + k] as number) * (x[k] as number);
		x[r] = s / (A[r * n + r] as number);
	}
	return x;
}

/**
 * KernelSHAP values of `rows` for a model `f` (records in, per record a vector of `targets` outputs out), features
 * replaced by the background row's values outside each coalition. One `f` call per explained row.
 */
export async function kernelShap(
	f: (rows: Row[]) => Promise<Float64Array[]>,
	rows: readonly Row[],
	background: Row,
	features: readonly string[],
	opts: KernelOptions = {},
): Promise<KernelValues> {
	const samples = opts.samples ?? KERNEL_SAMPLES;
	if (!Number.isInteger(samples) || samples < 2 || samples > 100_000)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`samples must be an integer from 2 to 100000, got ${samples}`,
		);
	const m = features.length;
	const [b0] = await f([background]);
	const base = Float64Array.from(b0 ?? []);
	const T = base.length;
	const { masks, weights, exact } = coalitions(
		m,
		samples,
		opts.seed ?? KERNEL_SEED,
	);
	const values = new Float64Array(rows.length * T * m);
	for (let r = 0; r < rows.length; r++) {
		const x = rows[r] as Row;
		const batch: Row[] = [x];
		for (const z of masks) {
			const row: Row = { ...x };
			for (let j = 0; j < m; j++)
				if (!z[j])
					row[features[j] as string] = background[features[j] as string];
			batch.push(row);
		}
		const out = await f(batch);
		for (let t = 0; t < T; t++) {
			const d = ((out[0] as Float64Array)[t] as number) - (base[t] as number);
			const o = (r * T + t) * m;
			if (m === 1) {
				values[o] = d;
				continue;
			}
			// Efficiency eliminates the last feature: y − z_M d = Σ_{j<M} φ_j (z_j − z_M).
			const n = m - 1;
			const A = new Float64Array(n * n);
			const rhs = new Float64Array(n);
			masks.forEach((z, c) => {
				const w = weights[c] as number;
				const zm = z[n] as number;
				const y =
					((out[c + 1] as Float64Array)[t] as number) -
					(base[t] as number) -
					zm * d;
				for (let i = 0; i < n; i++) {
					const ai = (z[i] as number) - zm;
					if (ai === 0) continue;
					rhs[i] = (rhs[i] as number) + w * ai * y;
					for (let k = 0; k < n; k++)
						A[i * n + k] =
							(A[i * n + k] as number) + w * ai * ((z[k] as number) - zm);
				}
			});
			const phi = solve(A, rhs, n);
			let s = 0;
			for (let j = 0; j < n; j++) {
				values[o + j] = phi[j] as number;
				s += phi[j] as number;
			}
			values[o + n] = d - s;
		}
	}
	return { base, values, targets: T, coalitions: masks.length, exact };
}
