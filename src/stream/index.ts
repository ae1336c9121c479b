// "mlship/stream": score a Kafka, NATS JetStream or Redis stream (or JSON lines) into another, in your process.

export type { StreamStats } from "./processor.ts";
export { type RunningStream, runStream, type StreamOptions } from "./run.ts";
