// Live quality by model version from joined feedback: accuracy, macro F1, ROC AUC, log-loss; MAE, RMSE. Window and cumulative.

/** Figures over a set of feedback rows; a figure is absent when the rows cannot define it (e.g. AUC with one class). */
export interface QualityFigures {
	/** Rows with a truth. */
	rows: number;
	accuracy?: number;
	/** F1 averaged over the classes seen in truths or predictions (scikit-learn `average="macro"`). */
	f1_macro?: number;
	/** Binary: AUC of the second class's probability; multiclass: one-vs-rest, macro (needs every class in the truths). */
	roc_auc?: number;
	/** Mean negative log-probability of the true class (probabilities clipped to [1e-15, 1 − 1e-15], rows normalized). */
	log_loss?: number;
	mae?: number;
	rmse?: number;
}

/** The quality of one served version. */
export interface VersionQuality {
	model: string;
	version: string;
	task: "classification" | "regression";
	/** The newest `window` rows with feedback. */
	window: QualityFigures;
	/** Every row with feedback since the process started. */
	cumulative: QualityFigures;
	/** Rewards received (feedback `reward`). */
	rewards: { count: number; sum: number };
}

/** One classification row: predicted and true class index, and the class probabilities (length k) when the model gives them. */
export interface ClassRow {
	pred: number;
	truth: number;
	probs?: ArrayLike<number> | undefined;
}

/** Bins of the cumulative AUC histograms: exact for scores rounded to 3 decimals, within ~1e-3 otherwise. */
export const AUC_BINS = 1000;
/** Most classes whose one-vs-rest AUC is kept (2 × classes × AUC_BINS counters). */
export const MAX_AUC_CLASSES = 32;
const EPS = 1e-15;
/**
 * Most classes quality statistics count (class indices 0 to MAX_CLASSES − 1): per-class counts are dense arrays up to
 * the highest index seen, written with every window, so an index is bounded before it becomes an array length.
 */
export const MAX_CLASSES = 100_000;
/**
 * Class indices a truth may have when the model says how many classes it has neither by the bundle's `labels` nor by
 * a probability output: 0 to 9,999 (feedback beyond is refused, naming this bound).
 */
export const MAX_UNLABELLED_CLASSES = 10_000;

/** Whether `c` can index the per-class counts (a whole number in 0 … MAX_CLASSES − 1). */
export function isClassIndex(c: unknown): c is number {
	return (
		typeof c === "number" && Number.isInteger(c) && c >= 0 && c < MAX_CLASSES
	);
}

/** AUC of scores for positives vs negatives (Mann–Whitney, ties count half), exact. */
export function rocAuc(
	scores: ArrayLike<number>,
	positive: ArrayLike<boolean>,
): number | undefined {
	const n = scores.length;
	const idx = Array.from({ length: n }, (_, i) => i).sort(
		(a, b) => (scores[a] as number) - (scores[b] as number),
	);
	let pos = 0;
	let rankSum = 0;
	for (let i = 0; i < n; ) {
		let j = i;
		while (
			j + 1 < n &&
			scores[idx[j + 1] as number] === scores[idx[i] as number]
		)
			j++;
		const avgRank = (i + j) / 2 + 1;
		for (let t = i; t <= j; t++)
			if (positive[idx[t] as number]) {
				pos++;
				rankSum += avgRank;
			}
		i = j + 1;
	}
	const neg = n - pos;
	if (pos === 0 || neg === 0) return undefined;
	return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** AUC from score histograms of positives and negatives (equal bins count as ties). */
function histAuc(
	pos: ArrayLike<number>,
	neg: ArrayLike<number>,
): number | undefined {
	let p = 0;
	let n = 0;
	for (let b = 0; b < pos.length; b++) {
		p += pos[b] as number;
		n += neg[b] as number;
	}
	if (p === 0 || n === 0) return undefined;
	let below = 0;
	let wins = 0;
	for (let b = 0; b < pos.length; b++) {
		wins += (pos[b] as number) * (below + (neg[b] as number) / 2);
		below += neg[b] as number;
	}
	return wins / (p * n);
}

function bin(p: number): number {
	if (!(p > 0)) return 0;
	return Math.min(AUC_BINS - 1, Math.floor(p * AUC_BINS + 1e-9));
}

/** −log of the true class's probability, the row normalized to sum 1 and clipped as scikit-learn does. */
function rowLogLoss(probs: ArrayLike<number>, truth: number): number {
	let sum = 0;
	for (let j = 0; j < probs.length; j++) sum += probs[j] as number;
	const p = sum > 0 ? (probs[truth] as number) / sum : 0;
	return -Math.log(Math.min(1 - EPS, Math.max(EPS, p)));
}

/** Macro F1 from per-class true positives, false positives and false negatives (classes never seen are skipped). */
function f1Macro(tp: number[], fp: number[], fn: number[]): number | undefined {
	let sum = 0;
	let classes = 0;
	for (let c = 0; c < tp.length || c < fp.length || c < fn.length; c++) {
		const t = tp[c] ?? 0;
		const d = 2 * t + (fp[c] ?? 0) + (fn[c] ?? 0);
		if (d === 0) continue;
		classes++;
		sum += (2 * t) / d;
	}
	return classes > 0 ? sum / classes : undefined;
}

/**
 * Quality statistics as JSON (what a monitor window stores): sufficient statistics, so the statistics of two sets of
 * rows merge by adding and give the same figures as the rows together. AUC histograms are sparse [bin, count] pairs.
 */
export interface QualityStatsJson {
	task: "classification" | "regression";
	/** Rows with a truth. */
	n: number;
	correct?: number;
	tp?: number[];
	fp?: number[];
	fn?: number[];
	/** Summed log-loss of the rows that had probabilities, and how many they were. */
	ll_sum?: number;
	ll_rows?: number;
	/** Probability width the AUC histograms hold (0: none). */
	k?: number;
	auc_pos?: [number, number][][];
	auc_neg?: [number, number][][];
	/** Regression: summed absolute and squared errors. */
	abs?: number;
	sq?: number;
}

function addAt(a: number[], i: number, v: number): void {
	a[i] = (a[i] ?? 0) + v;
}

function sparse(h: Map<number, number>): [number, number][] {
	return [...h].sort((x, y) => x[0] - y[0]);
}

function dense(h: Map<number, number>): Float64Array {
	const d = new Float64Array(AUC_BINS);
	for (const [b, c] of h) d[b] = c;
	return d;
}

/**
 * Mergeable quality statistics of one version over some rows: counts and sums from which accuracy, macro F1, ROC
 * AUC (binned, within ~1e-3), log-loss, MAE and RMSE follow. The cumulative figures of the feedback gauges and the
 * per-window quality of the monitor are both these.
 */
export class QualityStats {
	readonly task: "classification" | "regression";
	n = 0;
	#correct = 0;
	readonly #tp: number[] = [];
	readonly #fp: number[] = [];
	readonly #fn: number[] = [];
	#llSum = 0;
	#llRows = 0;
	/** Per class: histograms of its probability among rows of that class (pos) and of other classes (neg). */
	#aucPos: Map<number, number>[] = [];
	#aucNeg: Map<number, number>[] = [];
	#k = 0;
	#abs = 0;
	#sq = 0;

	constructor(task: "classification" | "regression") {
		this.task = task;
	}

	/** Adds one row; a class index outside 0 … MAX_CLASSES − 1 is a RangeError (nothing is added). */
	addClass(r: ClassRow): void {
		if (!isClassIndex(r.pred) || !isClassIndex(r.truth))
			throw new RangeError(
				`quality statistics count class indices 0–${MAX_CLASSES - 1}, got predicted ${r.pred} and true ${r.truth}`,
			);
		this.n++;
		if (r.pred === r.truth) {
			this.#correct++;
			addAt(this.#tp, r.truth, 1);
		} else {
			addAt(this.#fp, r.pred, 1);
			addAt(this.#fn, r.truth, 1);
		}
		const probs = r.probs;
		if (probs === undefined || probs.length <= r.truth) return;
		this.#llSum += rowLogLoss(probs, r.truth);
		this.#llRows++;
		if (probs.length > MAX_AUC_CLASSES) return;
		if (this.#k !== probs.length) {
			// A different width starts the histograms again (a version's width never changes in practice).
			this.#k = probs.length;
			this.#aucPos = Array.from({ length: this.#k }, () => new Map());
			this.#aucNeg = Array.from({ length: this.#k }, () => new Map());
		}
		for (let c = 0; c < this.#k; c++) {
			const h = (c === r.truth ? this.#aucPos[c] : this.#aucNeg[c]) as Map<
				number,
				number
			>;
			const b = bin(probs[c] as number);
			h.set(b, (h.get(b) ?? 0) + 1);
		}
	}

	addValue(pred: number, truth: number): void {
		const e = pred - truth;
		this.n++;
		this.#abs += Math.abs(e);
		this.#sq += e * e;
	}

	/** Adds another's rows (same task; a different probability width drops the AUC). */
	merge(o: QualityStats): void {
		if (o.task !== this.task)
			throw new RangeError(
				`cannot merge ${o.task} quality into ${this.task} quality`,
			);
		this.n += o.n;
		this.#correct += o.#correct;
		for (const [mine, theirs] of [
			[this.#tp, o.#tp],
			[this.#fp, o.#fp],
			[this.#fn, o.#fn],
		])
			for (let i = 0; i < (theirs as number[]).length; i++)
				addAt(mine as number[], i, (theirs as number[])[i] ?? 0);
		this.#llSum += o.#llSum;
		this.#llRows += o.#llRows;
		this.#abs += o.#abs;
		this.#sq += o.#sq;
		if (o.#k === 0) return;
		if (this.#k === 0 && this.#aucPos.length === 0) {
			this.#k = o.#k;
			this.#aucPos = o.#aucPos.map((h) => new Map(h));
			this.#aucNeg = o.#aucNeg.map((h) => new Map(h));
			return;
		}
		if (this.#k !== o.#k) {
			this.#k = -1; // mixed widths: no AUC
			this.#aucPos = [];
			this.#aucNeg = [];
			return;
		}
		for (let c = 0; c < this.#k; c++)
			for (const [mine, theirs] of [
				[this.#aucPos[c], o.#aucPos[c]],
				[this.#aucNeg[c], o.#aucNeg[c]],
			] as [Map<number, number>, Map<number, number>][])
				for (const [b, v] of theirs) mine.set(b, (mine.get(b) ?? 0) + v);
	}

	figures(): QualityFigures {
		if (this.task === "regression")
			return regressionFigures(this.n, this.#abs, this.#sq);
		const f: QualityFigures = { rows: this.n };
		if (this.n === 0) return f;
		f.accuracy = this.#correct / this.n;
		const f1 = f1Macro(this.#tp, this.#fp, this.#fn);
		if (f1 !== undefined) f.f1_macro = f1;
		if (this.#llRows === this.n) f.log_loss = this.#llSum / this.#llRows;
		if (this.#k >= 2) {
			let auc: number | undefined;
			const ovr = (c: number) =>
				histAuc(
					dense(this.#aucPos[c] as Map<number, number>),
					dense(this.#aucNeg[c] as Map<number, number>),
				);
			if (this.#k === 2) auc = ovr(1);
			else {
				let sum = 0;
				for (let c = 0; c < this.#k && sum >= 0; c++) {
					const a = ovr(c);
					sum = a === undefined ? -1 : sum + a;
				}
				if (sum >= 0) auc = sum / this.#k;
			}
			if (auc !== undefined) f.roc_auc = auc;
		}
		return f;
	}

	toJSON(): QualityStatsJson {
		if (this.task === "regression")
			return { task: "regression", n: this.n, abs: this.#abs, sq: this.#sq };
		return {
			task: "classification",
			n: this.n,
			correct: this.#correct,
			tp: Array.from(this.#tp, (v) => v ?? 0),
			fp: Array.from(this.#fp, (v) => v ?? 0),
			fn: Array.from(this.#fn, (v) => v ?? 0),
			ll_sum: this.#llSum,
			ll_rows: this.#llRows,
			k: this.#k,
			auc_pos: this.#aucPos.map(sparse),
			auc_neg: this.#aucNeg.map(sparse),
		};
	}

	/** Reads statistics written by toJSON (a stored window); `where` names it in the error. */
	static fromJSON(j: unknown, where: string): QualityStats {
		const bad = (what: string): never => {
			throw new RangeError(`${where}: quality statistics ${what}`);
		};
		if (typeof j !== "object" || j === null) return bad("are not an object");
		const o = j as Partial<QualityStatsJson>;
		if (o.task !== "classification" && o.task !== "regression")
			return bad(`have an unknown task ${JSON.stringify(o.task)}`);
		const num = (v: unknown, name: string): number =>
			typeof v === "number" && Number.isFinite(v) && v >= 0
				? v
				: bad(`have a bad '${name}'`);
		const nums = (v: unknown, name: string): number[] =>
			Array.isArray(v) && v.length <= MAX_CLASSES
				? v.map((x) => num(x, name))
				: bad(`have a bad '${name}'`);
		const hist = (v: unknown, name: string): Map<number, number>[] =>
			Array.isArray(v) && v.length <= MAX_AUC_CLASSES
				? v.map((h) => {
						if (!Array.isArray(h) || h.length > AUC_BINS)
							return bad(`have a bad '${name}'`);
						const m = new Map<number, number>();
						for (const p of h) {
							const b = Array.isArray(p) ? num(p[0], name) : -1;
							if (!Number.isInteger(b) || b >= AUC_BINS)
								return bad(`have a bad '${name}' bin`);
							m.set(b, num((p as unknown[])[1], name));
						}
						return m;
					})
				: bad(`have a bad '${name}'`);
		const s = new QualityStats(o.task);
		s.n = num(o.n, "n");
		if (o.task === "regression") {
			s.#abs = num(o.abs, "abs");
			s.#sq = num(o.sq, "sq");
			return s;
		}
		s.#correct = num(o.correct, "correct");
		s.#tp.push(...nums(o.tp, "tp"));
		s.#fp.push(...nums(o.fp, "fp"));
		s.#fn.push(...nums(o.fn, "fn"));
		s.#llSum = num(o.ll_sum, "ll_sum");
		s.#llRows = num(o.ll_rows, "ll_rows");
		s.#k = typeof o.k === "number" && Number.isInteger(o.k) ? o.k : 0;
		s.#aucPos = hist(o.auc_pos ?? [], "auc_pos");
		s.#aucNeg = hist(o.auc_neg ?? [], "auc_neg");
		if (s.#k >= 2 && (s.#aucPos.length !== s.#k || s.#aucNeg.length !== s.#k))
			return bad("have AUC histograms of the wrong width");
		return s;
	}
}

/** Classification quality of one version: cumulative statistics plus a ring of the newest rows. */
export class ClassQuality {
	readonly #window: number;
	readonly #stats = new QualityStats("classification");
	/** The ring: the newest `window` rows. */
	readonly #rows: ClassRow[] = [];
	#next = 0;

	constructor(window: number) {
		this.#window = window;
	}

	add(r: ClassRow): void {
		this.#stats.addClass(r);
		const kept: ClassRow = { pred: r.pred, truth: r.truth };
		if (r.probs !== undefined)
			kept.probs = Float64Array.from(r.probs as ArrayLike<number>);
		if (this.#rows.length < this.#window) this.#rows.push(kept);
		else this.#rows[this.#next] = kept;
		this.#next = (this.#next + 1) % this.#window;
	}

	cumulative(): QualityFigures {
		return this.#stats.figures();
	}

	window(): QualityFigures {
		return classFigures(this.#rows);
	}
}

/** Exact figures over classification rows (the window). */
export function classFigures(rows: readonly ClassRow[]): QualityFigures {
	const n = rows.length;
	const f: QualityFigures = { rows: n };
	if (n === 0) return f;
	const tp: number[] = [];
	const fp: number[] = [];
	const fn: number[] = [];
	let correct = 0;
	let ll = 0;
	let withProbs = 0;
	let k = -1;
	for (const r of rows) {
		if (r.pred === r.truth) {
			correct++;
			tp[r.truth] = (tp[r.truth] ?? 0) + 1;
		} else {
			fp[r.pred] = (fp[r.pred] ?? 0) + 1;
			fn[r.truth] = (fn[r.truth] ?? 0) + 1;
		}
		if (r.probs !== undefined && r.probs.length > r.truth) {
			ll += rowLogLoss(r.probs, r.truth);
			withProbs++;
			k = k === -1 || k === r.probs.length ? r.probs.length : -2;
		}
	}
	f.accuracy = correct / n;
	const f1 = f1Macro(tp, fp, fn);
	if (f1 !== undefined) f.f1_macro = f1;
	if (withProbs === n) {
		f.log_loss = ll / n;
		if (k >= 2 && k <= MAX_AUC_CLASSES) {
			const scores = new Float64Array(n);
			const positive: boolean[] = new Array(n);
			const ovr = (c: number): number | undefined => {
				for (let i = 0; i < n; i++) {
					const r = rows[i] as ClassRow;
					scores[i] = (r.probs as ArrayLike<number>)[c] as number;
					positive[i] = r.truth === c;
				}
				return rocAuc(scores, positive);
			};
			if (k === 2) {
				const a = ovr(1);
				if (a !== undefined) f.roc_auc = a;
			} else {
				let sum = 0;
				for (let c = 0; c < k && sum >= 0; c++) {
					const a = ovr(c);
					sum = a === undefined ? -1 : sum + a;
				}
				if (sum >= 0) f.roc_auc = sum / k;
			}
		}
	}
	return f;
}

/** Regression quality of one version: cumulative statistics plus a ring of the newest errors. */
export class RegressionQuality {
	readonly #errors: Float64Array;
	readonly #stats = new QualityStats("regression");
	#filled = 0;
	#next = 0;

	constructor(window: number) {
		this.#errors = new Float64Array(window);
	}

	add(pred: number, truth: number): void {
		this.#stats.addValue(pred, truth);
		this.#errors[this.#next] = pred - truth;
		this.#next = (this.#next + 1) % this.#errors.length;
		if (this.#filled < this.#errors.length) this.#filled++;
	}

	cumulative(): QualityFigures {
		return this.#stats.figures();
	}

	window(): QualityFigures {
		let abs = 0;
		let sq = 0;
		for (let i = 0; i < this.#filled; i++) {
			const e = this.#errors[i] as number;
			abs += Math.abs(e);
			sq += e * e;
		}
		return regressionFigures(this.#filled, abs, sq);
	}
}

function regressionFigures(n: number, abs: number, sq: number): QualityFigures {
	return n === 0
		? { rows: 0 }
		: { rows: n, mae: abs / n, rmse: Math.sqrt(sq / n) };
}

/** The quality figures of every version that received feedback (bounded by the versions served). */
export class QualityBook {
	readonly window: number;
	readonly #by = new Map<
		string,
		{
			model: string;
			version: string;
			q: ClassQuality | RegressionQuality;
			rewards: { count: number; sum: number };
		}
	>();

	/** `window`: how many of the newest feedback rows the window figures cover (default 1000). */
	constructor(window = 1000) {
		if (!Number.isInteger(window) || window < 1)
			throw new RangeError(
				`the quality window must be a whole number ≥ 1, got ${window}`,
			);
		this.window = window;
	}

	#of(model: string, version: string, task: "classification" | "regression") {
		const key = `${model}\u0000${version}`;
		let v = this.#by.get(key);
		if (
			v === undefined ||
			(task === "regression") !== v.q instanceof RegressionQuality
		) {
			v = {
				model,
				version,
				q:
					task === "regression"
						? new RegressionQuality(this.window)
						: new ClassQuality(this.window),
				rewards: v?.rewards ?? { count: 0, sum: 0 },
			};
			this.#by.set(key, v);
		}
		return v;
	}

	addClass(model: string, version: string, row: ClassRow): void {
		(this.#of(model, version, "classification").q as ClassQuality).add(row);
	}

	addValue(model: string, version: string, pred: number, truth: number): void {
		(this.#of(model, version, "regression").q as RegressionQuality).add(
			pred,
			truth,
		);
	}

	addReward(model: string, version: string, reward: number): void {
		const key = `${model}\u0000${version}`;
		let v = this.#by.get(key);
		if (v === undefined) {
			v = {
				model,
				version,
				q: new ClassQuality(this.window),
				rewards: { count: 0, sum: 0 },
			};
			this.#by.set(key, v);
		}
		v.rewards.count++;
		v.rewards.sum += reward;
	}

	/** Every version's figures, or one model's. */
	list(model?: string): VersionQuality[] {
		const out: VersionQuality[] = [];
		for (const v of this.#by.values()) {
			if (model !== undefined && v.model !== model) continue;
			out.push({
				model: v.model,
				version: v.version,
				task:
					v.q instanceof RegressionQuality ? "regression" : "classification",
				window: v.q.window(),
				cumulative: v.q.cumulative(),
				rewards: { ...v.rewards },
			});
		}
		return out;
	}
}
