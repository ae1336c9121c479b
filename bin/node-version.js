// Which Node versions mlship runs on: the ranges of package.json "engines" (test/package/engines.test.ts keeps
// them equal). Plain JavaScript that old Node versions parse, so they can be told what to install.

/**
 * Each supported major with its lowest minor (22.22 and 24.6: what @platformatic/kafka needs).
 * @type {ReadonlyArray<readonly [number, number]>}
 */
export const SUPPORTED = [
	[22, 22],
	[24, 6],
	[26, 0],
];

/** The "engines.node" range these majors make, e.g. "^22.22.0 || ^24.6.0 || ^26.0.0". */
export function enginesRange() {
	return SUPPORTED.map(([major, minor]) => `^${major}.${minor}.0`).join(" || ");
}

/**
 * `true` when mlship runs on Node `version` (e.g. "24.21.0"), else a one-line message saying what to install.
 * A major newer than the last listed one is let through: it is untested, not known to fail.
 * @param {string} version
 * @returns {true | string}
 */
export function supportedNode(version) {
	const [major = 0, minor = 0] = version.split(".").map(Number);
	for (const [m, min] of SUPPORTED)
		if (major === m && minor >= min) return true;
	const last = SUPPORTED[SUPPORTED.length - 1];
	if (last && major > last[0]) return true;
	const wanted = SUPPORTED.map(([m, min]) => `${m}.${min}+`).join(", ");
	return `Node ${version} is not supported: mlship needs Node ${wanted}; install one of them and run mlship again`;
}
