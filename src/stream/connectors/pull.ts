// Pulls batches from an async iterator with a wait bound: how iterator-based clients become a pull Source.

/**
 * Takes up to `max` items: waits up to `waitMs` for the first, then only for items that are already there
 * (a zero-delay race), so a light stream is not held back to fill a batch. A next() that loses the race is kept
 * for the following call: no item is dropped. `done` becomes true when the iterator ends.
 */
export class IteratorPuller<T> {
	readonly #it: AsyncIterator<T>;
	#pending: Promise<IteratorResult<T>> | undefined;
	done = false;

	constructor(it: AsyncIterator<T>) {
		this.#it = it;
	}

	async take(max: number, waitMs: number): Promise<T[]> {
		const out: T[] = [];
		while (out.length < max && !this.done) {
			this.#pending ??= this.#it.next();
			let timer: NodeJS.Timeout | undefined;
			const r = await Promise.race([
				this.#pending,
				new Promise<undefined>((res) => {
					timer = setTimeout(
						() => res(undefined),
						out.length === 0 ? waitMs : 0,
					);
				}),
			]);
			clearTimeout(timer);
			if (r === undefined) break;
			this.#pending = undefined;
			if (r.done) this.done = true;
			else out.push(r.value);
		}
		return out;
	}
}
