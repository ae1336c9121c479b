// The HTTP floor for bench/serve: a bare node:http server (no framework, no model) that reads the request
// body, JSON.parses it and answers a canned OIP response of the same shape and size as mlship's. Its CPU per
// request is what Node's HTTP/1.1 stack + one JSON.parse cost on this machine: the part of mlship's overhead
// that no server code can remove.
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

const server = createServer((req, res) => {
	if (req.method === "GET") {
		res.writeHead(200, { "content-length": "0" });
		res.end();
		return;
	}
	const chunks: Buffer[] = [];
	req.on("data", (c: Buffer) => chunks.push(c));
	req.on("end", () => {
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
