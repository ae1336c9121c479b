// A dashboard page opened with a token typed into its API token field (as a user does), then at `hash`.
import type { Browser, Page } from "playwright-core";
import { openPage } from "../harness/browser.ts";

/**
 * Opens `${url}/ui/`, uses `token`, waits for the model list (its link `model`), then goes to `hash`.
 * @example const { page, errors } = await signedIn(browser, url, admin.token, "#/experiments");
 */
export async function signedIn(
	browser: Browser,
	url: string,
	token: string,
	hash: string,
	model = "iris",
): Promise<{ page: Page; errors: string[] }> {
	const { page, errors } = await openPage(browser, `${url}/ui/`);
	await page.getByLabel("API token").fill(token);
	await page.getByRole("button", { name: "Use" }).click();
	await page
		.getByRole("link", { name: model, exact: true })
		.waitFor({ timeout: 90_000 });
	await page.goto(`${url}/ui/${hash}`);
	return { page, errors };
}
