// Live quality figures against scikit-learn 1.9.1 on fixed data (tools/fixtures/quality_reference.py prints the references).
import assert from "node:assert/strict";
import { it } from "node:test";
import {
	ClassQuality,
	type ClassRow,
	classFigures,
	QualityBook,
	RegressionQuality,
} from "../../src/feedback/quality.ts";

const close = (got: number | undefined, want: number, what: string) =>
	assert.ok(
		got !== undefined && Math.abs(got - want) <= 1e-12,
		`${what}: got ${got}, want ${want}`,
	);

// Binary: probability of class 1, truths; predicted class = p > 0.5.
const p1 = [
	0.91, 0.12, 0.55, 0.35, 0.78, 0.45, 0.05, 0.66, 0.3, 0.83, 0.5, 0.27,
];
const yb = [1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0];
const binary: ClassRow[] = p1.map((p, i) => ({
	pred: p > 0.5 ? 1 : 0,
	truth: yb[i] as number,
	probs: [1 - p, p],
}));
const SK_BINARY = {
	accuracy: 0.75,
	f1_macro: 0.7482517482517483,
	roc_auc: 0.8055555555555556,
	log_loss: 0.5356973702452533,
};

const P3 = [
	[0.7, 0.2, 0.1],
	[0.1, 0.8, 0.1],
	[0.2, 0.3, 0.5],
	[0.6, 0.3, 0.1],
	[0.25, 0.5, 0.25],
	[0.1, 0.1, 0.8],
	[0.4, 0.35, 0.25],
	[0.3, 0.4, 0.3],
	[0.05, 0.15, 0.8],
	[0.5, 0.1, 0.4],
	[0.2, 0.6, 0.2],
	[0.33, 0.33, 0.34],
];
const y3 = [0, 1, 2, 1, 1, 2, 0, 2, 2, 0, 0, 2];
const pred3 = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2];
const multi: ClassRow[] = P3.map((probs, i) => ({
	pred: pred3[i] as number,
	truth: y3[i] as number,
	probs,
}));
const SK_MULTI = {
	accuracy: 0.75,
	f1_macro: 0.7367724867724869,
	roc_auc: 0.8453428130511463,
	log_loss: 0.7598359211577712,
};

const yr = [3.0, -1.5, 2.25, 10.0, 0.0, 7.5, 4.0, -2.0];
const pr = [2.5, -1.0, 3.0, 8.0, 0.5, 7.5, 5.5, -2.25];
const SK_REG = { mae: 0.75, rmse: 0.9762812094883317 };

function check(
	f: Record<string, number | undefined>,
	want: Record<string, number>,
	what: string,
) {
	for (const [k, v] of Object.entries(want)) close(f[k], v, `${what} ${k}`);
}

it("binary classification: accuracy, macro F1, ROC AUC and log-loss equal scikit-learn's, in the window and cumulatively", () => {
	check({ ...classFigures(binary) }, SK_BINARY, "window (exact)");
	const q = new ClassQuality(1000);
	for (const r of binary) q.add(r);
	// Scores with two decimals fall in distinct AUC bins, so the cumulative (histogram) AUC is exact too.
	check({ ...q.cumulative() }, SK_BINARY, "cumulative");
	check({ ...q.window() }, SK_BINARY, "window");
});

it("multiclass: one-vs-rest macro AUC, macro F1, log-loss and accuracy equal scikit-learn's", () => {
	check({ ...classFigures(multi) }, SK_MULTI, "window");
	const q = new ClassQuality(1000);
	for (const r of multi) q.add(r);
	check({ ...q.cumulative() }, SK_MULTI, "cumulative");
});

it("regression: MAE and RMSE equal scikit-learn's", () => {
	const q = new RegressionQuality(100);
	for (let i = 0; i < yr.length; i++) q.add(pr[i] as number, yr[i] as number);
	check({ ...q.cumulative() }, SK_REG, "cumulative");
	check({ ...q.window() }, SK_REG, "window");
});

it("the window covers only the newest rows; cumulative covers all", () => {
	const q = new ClassQuality(4);
	for (const r of multi) q.add(r);
	const last4 = multi.slice(-4);
	assert.deepEqual(q.window(), classFigures(last4));
	assert.equal(q.window().rows, 4);
	assert.equal(q.cumulative().rows, 12);
	const reg = new RegressionQuality(2);
	for (let i = 0; i < yr.length; i++) reg.add(pr[i] as number, yr[i] as number);
	close(reg.window().mae, (1.5 + 0.25) / 2, "window mae of the last two");
});

it("a figure the rows cannot define is absent, not NaN: AUC with one class, log-loss without probabilities", () => {
	const f = classFigures([
		{ pred: 1, truth: 1, probs: [0.2, 0.8] },
		{ pred: 0, truth: 1, probs: [0.6, 0.4] },
	]);
	assert.equal(f.roc_auc, undefined);
	assert.equal(f.accuracy, 0.5);
	const g = classFigures([{ pred: 0, truth: 0 }]);
	assert.equal(g.log_loss, undefined);
	const book = new QualityBook(10);
	assert.deepEqual(book.list(), []);
	assert.throws(() => new QualityBook(0), /window must be a whole number ≥ 1/);
});

it("macro F1 counts a class that is never predicted right even when it is the highest index (scikit-learn: 0.5556)", () => {
	// Truths 0, 1, 2; predictions 0, 1, 1: class 2 has F1 0 and counts (f1_score(average="macro") = (1 + 2/3 + 0) / 3).
	const rows: ClassRow[] = [
		{ pred: 0, truth: 0 },
		{ pred: 1, truth: 1 },
		{ pred: 1, truth: 2 },
	];
	close(classFigures(rows).f1_macro, 5 / 9, "window");
	const q = new ClassQuality(10);
	for (const r of rows) q.add(r);
	close(q.cumulative().f1_macro, 5 / 9, "cumulative");
});
