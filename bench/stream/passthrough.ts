// bench/stream pass-through: the same connectors and read → write → ack loop as mlship stream, with no model (the broker's own limit).
//
//   node bench/stream/passthrough.ts --from URI --to URI [--batch-size 256]
import { parseArgs } from "node:util";
import { openSink, openSource } from "../../src/stream/connectors/index.ts";

const { values } = parseArgs({
	options: {
		from: { type: "string" },
		to: { type: "string" },
		"batch-size": { type: "string", default: "256" },
	},
});
if (!values.from || !values.to) throw new Error("--from and --to are required");
const source = await openSource(values.from, {
	group: "passthrough",
	consumer: `pt-${process.pid}`,
});
const sink = await openSink(values.to);
let stop = false;
process.once("SIGTERM", () => {
	stop = true;
});
process.stderr.write('{"msg":"mlship streaming"}\n');
const max = Number(values["batch-size"]);
while (!stop) {
	const batch = await source.read(max, 200);
	if (batch === null) break;
	if (batch.length === 0) continue;
	await sink.write(
		batch.map((m) => ({
			key: m.key,
			value: m.value,
			headers: [...m.headers],
			timestamp: m.timestamp,
		})),
	);
	await source.ack(batch);
}
await source.close();
await sink.close();
process.exit(0);
