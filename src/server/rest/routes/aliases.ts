// PUT /v2/repository/models/:model/aliases/:alias {"version": N}: move an alias in the registry (admin scope).
// The registry records it in the audit log as the caller (token id, address); replicas following the alias
// pick the move up from the change feed.
import type { FastifyInstance } from "fastify";
import { invalidInput } from "../../../protocol/errors.ts";
import { withActor } from "../../../registry/core/audit.ts";
import type { ModelStore } from "../../../registry/types.ts";
import { actorOf } from "../auth.ts";
import { isObject, jsonBody, kindOf } from "../body.ts";

/** Registers the alias route against a registry. */
export function registerAliasRoute(
	app: FastifyInstance,
	store: ModelStore,
): void {
	app.put<{ Params: { model: string; alias: string } }>(
		"/v2/repository/models/:model/aliases/:alias",
		async (req) => {
			const body = jsonBody(req.body, req.headers);
			if (!isObject(body))
				throw invalidInput(
					`the alias request must be an object like {"version": 4}, got ${kindOf(body)}`,
				);
			const version = body.version;
			if (
				typeof version !== "number" ||
				!Number.isSafeInteger(version) ||
				version < 1
			)
				throw invalidInput(
					`version must be a whole number ≥ 1, got ${JSON.stringify(version)?.slice(0, 50) ?? kindOf(version)}`,
				);
			const { model, alias } = req.params;
			await withActor(actorOf(req), () =>
				store.setAlias(model, alias, version),
			);
			return { model, alias, version };
		},
	);
}
