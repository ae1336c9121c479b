// The HTTP floor for bench/serve: a bare node:http server (no framework, no model) that reads the request
// body, JSON.parses it and answers a canned OIP response of the same shape and size as mlship's. Its CPU per
// request is what Node's HTTP/1.1 stack + one JSON.parse cost on this machine: the part of mlship's overhead
// that no server code can remove. A binary-extension body (Inference-Header-Content-Length) gets its JSON header
// parsed and a canned binary answer (JSON header + label INT64 + probabilities FP32), as mlship answers it.
//
//   node bench/serve/http-floor.ts <port> [host]
import { createServer } from "node:http";

const port = Number(process.argv[2]);
const host = process.argv[3] ?? "127.0.0.1";
const body =
	'{"model_name":"gbdt","model_version":"1","id":"b0f552dc-8ad7-478c-9374-bca6362b6244","outputs":[' +
	'{"name":"label","datatype":"INT64","shape":[1],"data":[1]},' +
	'{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.000611424446105957,0.999388575553894]}]}';
const length = String(Buffer.byteLength(body));
const binHeader = Buffer.from(
	'{"model_name":"gbdt","model_version":"1","id":"b0f552dc-8ad7-478c-9374-bca6362b6244","outputs":[' +
		'{"name":"label","datatype":"INT64","shape":[1],"parameters":{"binary_data_size":8}},' +
		'{"name":"probabilities","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}}]}',
);
const binTensors = Buffer.alloc(16);
binTensors.writeBigInt64LE(1n, 0);
binTensors.writeFloatLE(0.000611424446105957, 8);
binTensors.writeFloatLE(0.999388575553894, 12);
const binBody = Buffer.concat([binHeader, binTensors]);

const server = createServer((req, res) => {
	if (req.method === "GET") {
		res.writeHead(200, { "content-length": "0" });
		res.end();
		return;
	}
	const chunks: Buffer[] = [];
	req.on("data", (c: Buffer) => chunks.push(c));
	req.on("end", () => {
		const headerLength = req.headers["inference-header-content-length"];
		if (typeof headerLength === "string") {
			JSON.parse(
				Buffer.concat(chunks).toString("utf8", 0, Number(headerLength)),
			);
			res.writeHead(200, {
				"content-type": "application/octet-stream",
				"inference-header-content-length": String(binHeader.length),
				"content-length": String(binBody.length),
			});
			res.end(binBody);
			return;
		}
		JSON.parse(Buffer.concat(chunks).toString("utf8"));
		res.writeHead(200, {
			"content-type": "application/json",
			"content-length": length,
		});
		res.end(body);
	});
});
server.listen(port, host);
for (const sig of ["SIGTERM", "SIGINT"] as const)
	process.on(sig, () => {
		server.close();
		server.closeAllConnections();
		process.exit(0); // exits normally, so --cpu-prof writes its profile
	});
