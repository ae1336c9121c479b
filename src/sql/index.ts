// "mlship/sql": a model as a SQL function on your own DuckDB or SQLite connection.

export { registerDuckDBFunctions } from "./duckdb.ts";
export type { RegisterOptions, SqlModels } from "./models.ts";
export { registerSqliteFunctions } from "./sqlite.ts";
