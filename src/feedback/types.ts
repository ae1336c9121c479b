// Feedback shapes shared by the core, the feedback join and the adapters (no imports: the model instance uses them).

/** One feedback item: a reward for the request, or the truth of its row(s) (one value, or one per row). */
export interface FeedbackItem {
	/** The request id the answer carried (OIP `id`, predict `id`, header `x-request-id`). */
	id: string;
	/** A finite number (bandits: 0–1, see docs). */
	reward?: number;
	/** The true class (name, or index without class names) or value; a list with one per row of the request. */
	truth?: unknown;
	/**
	 * The version that served the request (its answer's `model_version`), for a replica that did not serve the id:
	 * a reward is then applied to that version without the join. Truth always needs the join (the prediction).
	 */
	version?: string | number;
}

/** What a feedback call did. */
export interface FeedbackOutcome {
	/** Items applied. */
	accepted: number;
	/** Items joined on this replica by id. */
	joined: number;
	/** Rewards applied through the item's `version` (the id was served elsewhere). */
	byVersion: number;
}
