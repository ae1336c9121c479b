// Secrets never reach messages: a URL's password is replaced by `***` before it is shown.

/**
 * The URL as the user wrote it, with its password replaced by `***`.
 * @example redactUrl("postgres://app:hunter2@db/prod?table=t") // "postgres://app:***@db/prod?table=t"
 */
export function redactUrl(url: string): string {
	return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*):[^/]*@/i, "$1:***@");
}
