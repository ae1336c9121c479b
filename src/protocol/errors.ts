// The one error table: stable codes, HTTP status, and the MlshipError every layer throws.

/** Every error code mlship raises, with its HTTP status. Transports map status from here only. */
export const ERRORS = {
	MLSHIP_INVALID_INPUT: 400,
	MLSHIP_PAYLOAD_TOO_LARGE: 413,
	MLSHIP_TIMEOUT: 504,
	MLSHIP_OVERLOADED: 503,
	MLSHIP_INVALID_BUNDLE: 400,
	MLSHIP_INVALID_ARGUMENT: 400,
	MLSHIP_UNSUPPORTED_MODEL: 422,
	MLSHIP_MODEL_NOT_FOUND: 404,
	MLSHIP_ALREADY_EXISTS: 409,
	MLSHIP_INTEGRITY: 422,
	MLSHIP_UNAVAILABLE: 503,
	MLSHIP_CLOSED: 503,
	MLSHIP_INTERNAL: 500,
	MLSHIP_UNAUTHENTICATED: 401,
	MLSHIP_PERMISSION_DENIED: 403,
	MLSHIP_RATE_LIMITED: 429,
	MLSHIP_REQUEST_NOT_FOUND: 404,
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** gRPC status code of each error (the gRPC adapter maps from here only). */
export const GRPC_STATUS: Readonly<Record<ErrorCode, number>> = {
	MLSHIP_INVALID_INPUT: 3, // INVALID_ARGUMENT
	MLSHIP_PAYLOAD_TOO_LARGE: 8, // RESOURCE_EXHAUSTED
	MLSHIP_TIMEOUT: 4, // DEADLINE_EXCEEDED
	MLSHIP_OVERLOADED: 14, // UNAVAILABLE
	MLSHIP_INVALID_BUNDLE: 3,
	MLSHIP_INVALID_ARGUMENT: 3,
	MLSHIP_UNSUPPORTED_MODEL: 9, // FAILED_PRECONDITION
	MLSHIP_MODEL_NOT_FOUND: 5, // NOT_FOUND
	MLSHIP_ALREADY_EXISTS: 6, // ALREADY_EXISTS
	MLSHIP_INTEGRITY: 9,
	MLSHIP_UNAVAILABLE: 14,
	MLSHIP_CLOSED: 14,
	MLSHIP_INTERNAL: 13, // INTERNAL
	MLSHIP_UNAUTHENTICATED: 16, // UNAUTHENTICATED
	MLSHIP_PERMISSION_DENIED: 7, // PERMISSION_DENIED
	MLSHIP_RATE_LIMITED: 8, // RESOURCE_EXHAUSTED
	MLSHIP_REQUEST_NOT_FOUND: 5,
};

/**
 * An error with a stable code. 4xx messages say exactly what was wrong (field, expected, got);
 * 5xx messages are safe to show but details stay in `cause`.
 * @example throw new MlshipError("MLSHIP_MODEL_NOT_FOUND", "model 'churn' is not registered")
 */
export class MlshipError extends Error {
	readonly code: ErrorCode;
	constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
		super(message, options);
		this.name = "MlshipError";
		this.code = code;
	}
	get status(): number {
		return ERRORS[this.code];
	}
}

/** Shorthand for the most common error: input that does not fit the model. */
export function invalidInput(message: string): MlshipError {
	return new MlshipError("MLSHIP_INVALID_INPUT", message);
}

/** Wraps any thrown value as an MlshipError (unknown errors become MLSHIP_INTERNAL). */
export function toMlshipError(err: unknown): MlshipError {
	if (err instanceof MlshipError) return err;
	const message = err instanceof Error ? err.message : String(err);
	return new MlshipError("MLSHIP_INTERNAL", message, { cause: err });
}
