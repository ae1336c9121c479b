// Types for the part of jStat (no bundled types) the drift tests use.
declare module "jstat" {
	const jStat: {
		chisquare: { cdf(x: number, dof: number): number };
		normal: { cdf(x: number, mean: number, std: number): number };
	};
	export default jStat;
}
