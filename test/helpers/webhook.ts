// Test helper: a real HTTP receiver on a loopback port that keeps every JSON body POSTed to it (alert webhooks).
import { createServer } from "node:http";

export interface WebhookReceiver<T> {
	url: string;
	events: T[];
	close(): Promise<void>;
}

/** Starts a receiver; `events` fills as posts arrive (each answered 200). */
export async function startWebhookReceiver<T>(): Promise<WebhookReceiver<T>> {
	const events: T[] = [];
	const server = createServer((req, res) => {
		let body = "";
		req.on("data", (c) => {
			body += c;
		});
		req.on("end", () => {
			events.push(JSON.parse(body) as T);
			res.end("ok");
		});
	});
	await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
	const port = (server.address() as { port: number }).port;
	return {
		url: `http://127.0.0.1:${port}/alerts`,
		events,
		close: () => new Promise((r) => server.close(() => r())),
	};
}
