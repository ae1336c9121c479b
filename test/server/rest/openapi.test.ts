// Model metadata carries features, labels and task; /v2/openapi.json documents every route and each model's
// /predict schema, and is a valid OpenAPI document (issue 11.14).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { createDataPlane } from "../../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../../src/dataplane/types.ts";
import {
	createRestServer,
	registeredRoutes,
} from "../../../src/server/rest/server.ts";
import { bundleDir } from "../../helpers/fixtures.ts";
import { get } from "../../helpers/server.ts";

type Doc = {
	paths: Record<string, Record<string, { requestBody?: unknown }>>;
};

describe("model metadata and the OpenAPI document", () => {
	let dp: DataPlane;
	let app: ReturnType<typeof createRestServer>;
	let url: string;
	before(async () => {
		dp = await createDataPlane({
			models: [
				{ name: "iris", source: bundleDir("iris-logreg") },
				{ name: "ridge", source: bundleDir("diabetes-sex-ridge") },
			],
			processMetrics: false,
		});
		app = createRestServer(dp);
		await app.listen({ host: "127.0.0.1", port: 0 });
		url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
	});
	after(async () => {
		await app.close();
		await dp.close();
	});

	it("GET /v2/models/{m} parameters: features (name, datatype, categories), labels and task", async () => {
		const ridge = await get(`${url}/v2/models/ridge`);
		assert.equal(ridge.status, 200);
		const p = (ridge.json as { parameters: Record<string, unknown> })
			.parameters;
		assert.equal(p.task, "regression");
		assert.equal(p.labels, undefined);
		const features = p.features as Record<string, unknown>[];
		assert.equal(features.length, 10);
		assert.deepEqual(
			features.find((f) => f.name === "sex"),
			{ name: "sex", datatype: "BYTES", categories: ["female", "male"] },
		);
		assert.deepEqual(features[0], { name: "age", datatype: "FP32" });

		const iris = await get(`${url}/v2/models/iris/versions/1`);
		const q = (iris.json as { parameters: Record<string, unknown> }).parameters;
		assert.deepEqual(q.labels, ["setosa", "versicolor", "virginica"]);
		assert.equal(q.task, "classification");
		assert.deepEqual(
			(q.features as { name: string }[]).map((f) => f.name),
			["sepal_length", "sepal_width", "petal_length", "petal_width"],
		);
	});

	it("/v2/openapi.json is valid OpenAPI and documents every route the server has", async () => {
		const r = await get(`${url}/v2/openapi.json`);
		assert.equal(r.status, 200);
		const doc = r.json as Doc & Record<string, unknown>;
		const result = await new Validator().validate(doc);
		assert.deepEqual(result.errors ?? [], [], "valid OpenAPI");
		assert.equal(result.valid, true);
		const routes = registeredRoutes(app);
		assert.ok(routes.length >= 17, `${routes.length} routes`);
		for (const { method, url: pattern } of routes) {
			const path = pattern.replace(/:([A-Za-z]+)/g, "{$1}");
			assert.ok(
				doc.paths[path]?.[method.toLowerCase()],
				`${method} ${path} is documented`,
			);
		}
	});

	it("documents the bundle upload route (a route of its own context) as an admin route taking a tar", async () => {
		assert.ok(
			registeredRoutes(app).some(
				(r) =>
					r.method === "POST" &&
					r.url === "/v2/repository/models/:model/versions",
			),
		);
		const doc = (await get(`${url}/v2/openapi.json`)).json as Doc;
		const op = doc.paths["/v2/repository/models/{model}/versions"]?.post as {
			summary: string;
			requestBody: { content: Record<string, unknown> };
		};
		assert.match(op.summary, /\(admin\)/);
		assert.ok(op.requestBody.content["application/x-tar"]);
	});

	it("each served model's /predict carries its feature schema", async () => {
		const doc = (await get(`${url}/v2/openapi.json`)).json as Doc;
		const body = doc.paths["/v2/models/ridge/predict"]?.post?.requestBody as {
			content: { "application/json": { schema: { oneOf: unknown[] } } };
		};
		type Alt = { properties: Record<string, unknown> };
		const [records, columns] = body.content["application/json"].schema
			.oneOf as [Alt, Alt];
		const record = (
			records.properties.instances as {
				items: { properties: Record<string, unknown>; required: string[] };
			}
		).items;
		assert.deepEqual(record.properties.sex, {
			enum: ["female", "male"],
			description: "BYTES",
		});
		assert.deepEqual(record.properties.bmi, {
			type: "number",
			description: "FP32",
		});
		assert.equal(record.required.length, 10);
		assert.ok(columns.properties.columns);
		const iris = JSON.stringify(doc.paths["/v2/models/iris/predict"]);
		assert.match(
			iris,
			/"label":\{"enum":\["setosa","versicolor","virginica"\]\}/,
		);
		assert.match(iris, /classification/);
	});
});
