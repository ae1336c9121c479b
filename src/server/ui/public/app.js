// mlship dashboard: a hash-routed page (#/, #/models/NAME?range=5m, #/experiments?range=1h, #/servers) over /ui/api.
// Plain ES module, no build step; every text from the server goes through textContent, never innerHTML.
import uPlot from "./uplot.js";

const TOKEN_KEY = "mlship.token";
const RANGES = { "1m": 60, "5m": 300, "15m": 900 };
/** Ranges of the configured weights over time (the registry keeps every change). */
const HISTORY_RANGES = ["15m", "1h", "6h", "24h", "7d", "30d"];
const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const conn = /** @type {HTMLElement} */ (document.getElementById("conn"));

/** Builds an element: h("a", {href: "#/"}, "text", child…). */
function h(tag, attrs = {}, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (v === undefined || v === null || v === false) continue;
		if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
		else if (k === "class") el.className = v;
		else el.setAttribute(k, v === true ? "" : String(v));
	}
	for (const c of children.flat()) {
		if (c === undefined || c === null || c === false) continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return el;
}

function authHeaders() {
	const t = sessionStorage.getItem(TOKEN_KEY);
	return t ? { authorization: `Bearer ${t}` } : {};
}

class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.status = status;
	}
}

async function api(path, init = {}) {
	const res = await fetch(path, {
		...init,
		headers: {
			...authHeaders(),
			...(init.body ? { "content-type": "application/json" } : {}),
		},
	});
	const text = await res.text();
	let body;
	try {
		body = text ? JSON.parse(text) : {};
	} catch {
		body = { error: text };
	}
	if (!res.ok) {
		let msg = body.error ?? `${res.status} ${res.statusText}`;
		if (res.status === 401)
			msg += " — enter an API token above (mlship tokens create --scope read)";
		if (res.status === 403 && !msg.includes("mlship tokens create"))
			msg += " — this needs a token with more scope (admin for actions)";
		throw new ApiError(res.status, msg);
	}
	return body;
}

function setConn(text, bad = false) {
	conn.textContent = text;
	conn.classList.toggle("bad", bad);
}

function errorBox(err) {
	return h("p", { class: "error", role: "alert" }, String(err.message ?? err));
}

function emptyBox(text, command) {
	return h(
		"div",
		{ class: "empty" },
		h("p", {}, text),
		command ? h("pre", {}, command) : null,
	);
}

function fmtTime(iso) {
	if (!iso) return "";
	const d = new Date(iso);
	return Number.isNaN(d.getTime())
		? iso
		: d.toISOString().replace("T", " ").slice(0, 19);
}

function fmtBytes(n) {
	if (n === null || n === undefined) return "unknown";
	const u = ["B", "KiB", "MiB", "GiB", "TiB"];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) {
		n /= 1024;
		i++;
	}
	return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

/** The confirmation dialog; resolves true when the user confirms. */
function confirmAction(text) {
	const dlg = /** @type {HTMLDialogElement} */ (
		document.getElementById("confirm")
	);
	/** @type {HTMLElement} */ (
		document.getElementById("confirm-text")
	).textContent = text;
	return new Promise((resolve) => {
		dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), {
			once: true,
		});
		dlg.returnValue = "";
		dlg.showModal();
		/** @type {HTMLElement} */ (document.getElementById("confirm-ok")).focus();
	});
}

// ---- routing ----

let cleanup = () => {};

function parseHash() {
	const raw = location.hash.replace(/^#/, "") || "/";
	const [path, query = ""] = raw.split("?");
	return { path, params: new URLSearchParams(query) };
}

async function route() {
	cleanup();
	cleanup = () => {};
	const { path, params } = parseHash();
	const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
	let page = "models";
	if (parts[0] === "experiments") page = "experiments";
	else if (parts[0] === "servers") page = "servers";
	for (const a of document.querySelectorAll("nav a"))
		if (a.getAttribute("data-page") === page)
			a.setAttribute("aria-current", "page");
		else a.removeAttribute("aria-current");
	main.replaceChildren(h("p", {}, "Loading…"));
	try {
		if (parts[0] === "models" && parts[1]) await modelPage(parts[1], params);
		else if (page === "experiments") await experimentsPage(params);
		else if (page === "servers") await serversPage();
		else await modelsPage();
	} catch (err) {
		main.replaceChildren(h("h1", {}, "mlship"), errorBox(err));
	}
}

// ---- Models ----

async function modelsPage() {
	document.title = "Models · mlship";
	const data = await api("/ui/api/models");
	const out = [h("h1", {}, "Models")];
	if (!data.registry) {
		out.push(
			emptyBox(
				"This dashboard has no registry.",
				"mlship serve --registry sqlite:./registry.db -m churn@production --ui",
			),
		);
	} else if (data.models.length === 0) {
		out.push(
			emptyBox(
				"No models in the registry yet. Register a bundle:",
				"mlship models register ./bundle --alias production",
			),
		);
	} else {
		const servers = data.servers;
		out.push(
			h(
				"table",
				{},
				h(
					"caption",
					{ class: "muted" },
					`${data.models.length} model(s); serving state on ${servers.length} server(s)`,
				),
				h(
					"thead",
					{},
					h(
						"tr",
						{},
						h("th", { scope: "col" }, "Name"),
						h("th", { scope: "col" }, "Versions"),
						h("th", { scope: "col" }, "Aliases"),
						h("th", { scope: "col" }, "Entities"),
						h("th", { scope: "col" }, "Last change"),
						servers.map((s) => h("th", { scope: "col" }, s.label)),
					),
				),
				h(
					"tbody",
					{},
					data.models.map((m) =>
						h(
							"tr",
							{},
							h(
								"th",
								{ scope: "row" },
								h(
									"a",
									{ href: `#/models/${encodeURIComponent(m.name)}` },
									m.name,
								),
							),
							h(
								"td",
								{},
								`${m.versions} (${m.active} active, latest ${m.latest})`,
							),
							h(
								"td",
								{},
								Object.entries(m.aliases)
									.map(([a, v]) => `${a}→${v}`)
									.join(", ") || h("span", { class: "muted" }, "none"),
							),
							h("td", {}, String(m.entities)),
							h("td", {}, fmtTime(m.lastChange)),
							m.serving.map((s) =>
								h(
									"td",
									{},
									h(
										"span",
										{ class: `state-${s.state.replace(/ /g, "_")}` },
										s.state,
									),
									s.version ? ` v${s.version}` : "",
								),
							),
						),
					),
				),
			),
		);
	}
	for (const s of data.servers ?? [])
		if (s.error) out.push(h("p", { class: "error" }, `${s.label}: ${s.error}`));
	main.replaceChildren(...out);
}

/** A toolbar with the time range select: choosing one goes to `base?range=VALUE` (a shareable URL). */
function rangeToolbar(label, options, selected, base, ...extra) {
	return h(
		"div",
		{ class: "toolbar" },
		h("label", { for: "range" }, label),
		h(
			"select",
			{
				id: "range",
				onchange: (e) => {
					location.hash = `${base}?range=${e.target.value}`;
				},
			},
			options.map(([value, text]) =>
				h("option", { value, selected: value === selected }, text),
			),
		),
		...extra,
	);
}

// ---- A model ----

const CHARTS = [
	{ key: "rps", title: "Requests/s", unit: "req/s" },
	{ key: "errors", title: "Errors/s", unit: "err/s" },
	{ key: "p50", title: "Latency p50 (ms)", unit: "ms" },
	{ key: "p99", title: "Latency p99 (ms)", unit: "ms" },
	{ key: "batch", title: "Batch size (mean rows)", unit: "rows" },
	{ key: "queue", title: "Queue depth", unit: "requests" },
];
const PALETTE = [
	"#2f81f7",
	"#e16f24",
	"#2da44e",
	"#bf3989",
	"#8250df",
	"#c69026",
	"#1b7c83",
	"#cf222e",
];

/** Reads an event stream with the user's token (EventSource cannot send headers); reconnects until stopped. */
function liveStream(path, onData) {
	let stopped = false;
	let ctrl;
	const loop = async () => {
		while (!stopped) {
			ctrl = new AbortController();
			try {
				const res = await fetch(path, {
					headers: authHeaders(),
					signal: ctrl.signal,
				});
				if (!res.ok || !res.body)
					throw new Error(`live data: HTTP ${res.status}`);
				setConn("live");
				const reader = res.body
					.pipeThrough(new TextDecoderStream())
					.getReader();
				let buf = "";
				for (;;) {
					const { value, done } = await reader.read();
					if (done) break;
					buf += value;
					let i = buf.indexOf("\n\n");
					while (i >= 0) {
						const chunk = buf.slice(0, i);
						buf = buf.slice(i + 2);
						const data = chunk
							.split("\n")
							.filter((l) => l.startsWith("data: "))
							.map((l) => l.slice(6))
							.join("\n");
						if (data) onData(JSON.parse(data));
						i = buf.indexOf("\n\n");
					}
				}
				if (!stopped) setConn("reconnecting…", true);
			} catch (err) {
				if (stopped) return;
				setConn(`reconnecting… (${err.message ?? err})`, true);
			}
			await new Promise((r) => setTimeout(r, 1000));
		}
	};
	void loop();
	return () => {
		stopped = true;
		ctrl?.abort();
		setConn("");
	};
}

function cssVar(name) {
	return getComputedStyle(document.documentElement)
		.getPropertyValue(name)
		.trim();
}

/** Axis colours from the theme (light or dark, as the system says). */
function axisStyle() {
	const grid = cssVar("--line");
	return {
		stroke: cssVar("--fg"),
		grid: { stroke: grid, width: 1 },
		ticks: { stroke: grid },
	};
}

/** One coloured series per version (`v3`), with `more` options each. */
function versionSeries(versions, more) {
	return versions.map((v, i) => ({
		label: `v${v}`,
		stroke: PALETTE[i % PALETTE.length],
		width: 2,
		...more,
	}));
}

/** A chart over the last `seconds` (the x axis is the selected range, not just the points so far). */
function makeChart(container, title, versions, width, seconds) {
	const axis = axisStyle();
	return new uPlot(
		{
			title,
			width,
			height: 180,
			scales: {
				x: {
					time: true,
					range: (u, _min, max) => {
						// Before the first point uPlot offers no usable max: end the axis now.
						const end =
							u.data[0]?.length && Number.isFinite(max)
								? max
								: Date.now() / 1000;
						return [end - seconds, end];
					},
				},
			},
			axes: [
				// Our own labels (HH:MM:SS): uPlot's default date line is wrong before the series have data.
				{
					...axis,
					space: 80,
					values: (_u, splits) =>
						splits.map((t) =>
							new Date(t * 1000).toLocaleTimeString([], {
								hour: "2-digit",
								minute: "2-digit",
								second: "2-digit",
								hour12: false,
							}),
						),
				},
				{ ...axis, size: 60 },
			],
			series: [{}, ...versionSeries(versions, { spanGaps: false })],
		},
		[[], ...versions.map(() => [])],
		container,
	);
}

async function modelPage(name, params) {
	document.title = `${name} · mlship`;
	const range = RANGES[params.get("range") ?? ""] ? params.get("range") : "1m";
	const data = await api(`/ui/api/models/${encodeURIComponent(name)}`);
	const versionsList = data.versions.map((v) => v.version);
	const out = [h("h1", {}, `Model ${data.name}`)];

	// Aliases and traffic policies, with the alias move action.
	const routes = new Map(data.routes.map((r) => [r.alias, r]));
	const aliasRows = Object.entries(data.aliases).map(([alias, version]) => {
		const sel = h(
			"select",
			{ "aria-label": `New version for alias ${alias}`, id: `move-${alias}` },
			versionsList.map((v) =>
				h("option", { value: v, selected: v === version }, `v${v}`),
			),
		);
		const btn = h(
			"button",
			{
				type: "button",
				onclick: async () => {
					const to = Number(sel.value);
					if (to === version) return;
					if (
						!(await confirmAction(
							`Move ${data.name}@${alias} from version ${version} to version ${to}? Servers following the alias switch within a second.`,
						))
					)
						return;
					try {
						await api(
							`/v2/repository/models/${encodeURIComponent(data.name)}/aliases/${encodeURIComponent(alias)}`,
							{
								method: "PUT",
								body: JSON.stringify({ version: to }),
							},
						);
						await route();
					} catch (err) {
						main.prepend(errorBox(err));
					}
				},
			},
			"Move",
		);
		const r = routes.get(alias);
		return h(
			"tr",
			{},
			h("th", { scope: "row" }, alias),
			h("td", {}, `v${version}`),
			h(
				"td",
				{},
				r ? policyText(r.policy) : h("span", { class: "muted" }, "one version"),
			),
			h("td", {}, sel, " ", btn),
		);
	});
	out.push(h("h2", {}, "Aliases"));
	out.push(
		aliasRows.length
			? h(
					"table",
					{},
					h(
						"thead",
						{},
						h(
							"tr",
							{},
							h("th", { scope: "col" }, "Alias"),
							h("th", { scope: "col" }, "Version"),
							h("th", { scope: "col" }, "Traffic policy"),
							h("th", { scope: "col" }, "Move (admin)"),
						),
					),
					h("tbody", {}, aliasRows),
				)
			: emptyBox(
					"No alias yet.",
					`mlship models alias ${data.name} production ${versionsList[0]}`,
				),
	);

	// Live charts.
	const toolbar = rangeToolbar(
		"Time range",
		Object.keys(RANGES).map((r) => [r, r]),
		range,
		`#/models/${encodeURIComponent(name)}`,
		h(
			"span",
			{ class: "muted" },
			"per version, all servers, updated every second",
		),
	);
	const chartBox = h("div", { class: "charts", id: "charts" });
	out.push(h("h2", {}, "Live traffic"), toolbar, chartBox);

	// Versions.
	out.push(h("h2", {}, `Versions (${data.versions.length})`));
	const versionRow = (v) =>
		h(
			"tr",
			{},
			h(
				"th",
				{ scope: "row" },
				`v${v.version}`,
				v.entity ? h("span", { class: "muted" }, ` (${v.entity})`) : null,
			),
			h("td", {}, v.status),
			h("td", {}, fmtTime(v.createdAt)),
			h("td", {}, v.aliases.join(", ")),
			h(
				"td",
				{},
				v.detail
					? versionDetail(v.detail)
					: h("span", { class: "muted" }, "older version: mlship models show"),
			),
		);
	// The newest versions first; the rest on demand (a model may have thousands).
	const FIRST = 100;
	const tbody = h("tbody", {}, data.versions.slice(0, FIRST).map(versionRow));
	out.push(
		h(
			"table",
			{},
			h(
				"thead",
				{},
				h(
					"tr",
					{},
					["Version", "Status", "Created", "Aliases", "Details"].map((t) =>
						h("th", { scope: "col" }, t),
					),
				),
			),
			tbody,
		),
	);
	if (data.versions.length > FIRST) {
		const more = h(
			"button",
			{
				type: "button",
				onclick: () => {
					tbody.append(...data.versions.slice(FIRST).map(versionRow));
					more.remove();
				},
			},
			`Show all ${data.versions.length} versions`,
		);
		out.push(more);
	}
	if (data.entities.length > 0)
		out.push(
			h(
				"p",
				{},
				`Entities (${data.entities.length}): ${data.entities.slice(0, 50).join(", ")}${data.entities.length > 50 ? "…" : ""}`,
			),
		);
	const driftBox = h("div", { id: "drift" }, h("p", {}, "Loading drift…"));
	out.push(h("h2", {}, "Drift per feature (24 h, worst first)"), driftBox);
	const qualityBox = h(
		"div",
		{ id: "quality" },
		h("p", {}, "Loading quality…"),
	);
	out.push(h("h2", {}, "Quality from feedback"), qualityBox);
	main.replaceChildren(...out);
	void drift(data.name, driftBox);
	void quality(data.name, qualityBox);

	cleanup = liveCharts(
		chartBox,
		CHARTS,
		RANGES[range],
		`/ui/api/models/${encodeURIComponent(name)}/live`,
		perVersion,
	);
}

/** One event's figures per version, over all servers: rates and queues summed, latency the highest server's. */
function perVersion(ev) {
	const agg = new Map();
	for (const s of ev.servers)
		for (const v of s.versions) {
			const a = agg.get(v.version) ?? {
				rps: null,
				errors: null,
				p50: null,
				p99: null,
				batch: null,
				queue: 0,
				n: 0,
			};
			if (v.rps !== null) a.rps = (a.rps ?? 0) + v.rps;
			if (v.errors !== null) a.errors = (a.errors ?? 0) + v.errors;
			a.queue += v.queue;
			if (v.p50 !== null) a.p50 = Math.max(a.p50 ?? 0, v.p50);
			if (v.p99 !== null) a.p99 = Math.max(a.p99 ?? 0, v.p99);
			if (v.batch !== null) {
				a.batch = ((a.batch ?? 0) * a.n + v.batch) / (a.n + 1);
				a.n++;
			}
			agg.set(v.version, a);
		}
	return agg;
}

/**
 * Live charts in `chartBox`, one per def, a series per version seen (added as versions appear), the last `keep`
 * seconds kept; `pick(event)` gives each version's values. Returns the function that stops them.
 */
function liveCharts(chartBox, defs, keep, path, pick) {
	const times = [];
	const series = new Map(); // version -> {key: values[]}
	let charts = [];
	let seen = [];
	const width = Math.max(
		320,
		Math.min(640, Math.floor(chartBox.clientWidth / 2) - 24),
	);
	const rebuild = () => {
		for (const c of charts) c.destroy();
		chartBox.replaceChildren();
		charts = defs.map((c) => {
			const box = h("div", {
				class: "chart",
				role: "img",
				"aria-label": `${c.title} per version`,
				"data-chart": c.key,
			});
			chartBox.append(box);
			return makeChart(box, c.title, seen, width, keep);
		});
	};
	rebuild();
	const stop = liveStream(path, (ev) => {
		const values = pick(ev);
		const fresh = [...values.keys()].filter((v) => !seen.includes(v));
		if (fresh.length) {
			seen = [...seen, ...fresh].sort((a, b) => Number(a) - Number(b));
			for (const v of fresh)
				series.set(
					v,
					Object.fromEntries(defs.map((c) => [c.key, times.map(() => null)])),
				);
			rebuild();
		}
		times.push(ev.t / 1000);
		for (const v of seen) {
			const a = values.get(v);
			for (const c of defs) series.get(v)[c.key].push(a ? a[c.key] : null);
		}
		while (times.length > keep) {
			times.shift();
			for (const v of seen) for (const c of defs) series.get(v)[c.key].shift();
		}
		charts.forEach((chart, i) => {
			chart.setData([times, ...seen.map((v) => series.get(v)[defs[i].key])]);
		});
		chartBox.dataset.points = String(times.length);
		// Points above zero drawn so far in the first chart (what the browser test waits for).
		const first = defs[0].key;
		chartBox.dataset.nonzero = String(
			seen.reduce(
				(n, v) => n + series.get(v)[first].filter((x) => x > 0).length,
				0,
			),
		);
	});
	return () => {
		stop();
		for (const c of charts) c.destroy();
	};
}

const P_VALUE_METHODS = new Set(["ks", "chisquare", "z"]);

/** How far past its threshold a statistic is (> 1 = drifted): p-values drift below it, distances above. */
function severity(f) {
	if (typeof f?.statistic !== "number" || typeof f.threshold !== "number")
		return 0;
	return P_VALUE_METHODS.has(f.method)
		? f.threshold / Math.max(f.statistic, 1e-12)
		: f.statistic / f.threshold;
}

/**
 * A small SVG line of `values` with a dashed reference line at `ref` (the drift threshold), both in one y range;
 * the line's points and the reference's y are in `data-points` / `data-ref-y` for tests.
 */
function sparkline(values, label, ref) {
	const w = 160;
	const hgt = 32;
	const finite = values.filter((v) => Number.isFinite(v));
	const max = Math.max(...finite, ref);
	const min = Math.min(...finite, ref);
	const y = (v) => hgt - 2 - ((v - min) / (max - min || 1)) * (hgt - 4);
	const pts = values
		.map((v, i) =>
			Number.isFinite(v)
				? `${((i / Math.max(values.length - 1, 1)) * (w - 4) + 2).toFixed(1)},${y(v).toFixed(1)}`
				: null,
		)
		.filter(Boolean)
		.join(" ");
	const NS = "http://www.w3.org/2000/svg";
	const svg = document.createElementNS(NS, "svg");
	svg.setAttribute("width", String(w));
	svg.setAttribute("height", String(hgt));
	svg.setAttribute("role", "img");
	svg.setAttribute("aria-label", label);
	const base = document.createElementNS(NS, "line");
	base.setAttribute("x1", "2");
	base.setAttribute("x2", String(w - 2));
	base.setAttribute("y1", y(ref).toFixed(1));
	base.setAttribute("y2", y(ref).toFixed(1));
	base.setAttribute("class", "threshold");
	base.setAttribute("stroke", "currentColor");
	base.setAttribute("stroke-opacity", "0.45");
	base.setAttribute("stroke-dasharray", "3 3");
	const line = document.createElementNS(NS, "polyline");
	line.setAttribute("points", pts);
	line.setAttribute("fill", "none");
	line.setAttribute("stroke", "currentColor");
	line.setAttribute("stroke-width", "1.5");
	svg.append(base, line);
	return svg;
}

/** The drift panel: per feature of the newest monitored version, its statistic per window, worst first. */
async function drift(name, box) {
	let d;
	try {
		d = await api(`/ui/api/models/${encodeURIComponent(name)}/drift?since=24h`);
	} catch (err) {
		box.replaceChildren(errorBox(err));
		return;
	}
	if (!d.available) {
		box.replaceChildren(
			emptyBox(
				"No drift report for this model: give the bundle a reference profile and serve with a monitor window.",
				`mlship bundle init ./bundle --reference train.parquet\nmlship serve -m ${name}@production --monitor-window 5m --ui`,
			),
			h(
				"details",
				{},
				h("summary", {}, "Why"),
				h(
					"ul",
					{},
					d.reasons.map((r) => h("li", { class: "muted" }, r)),
				),
			),
		);
		return;
	}
	const windows = (d.report.windows ?? []).filter((w) => !w.open && w.features);
	if (windows.length === 0) {
		box.replaceChildren(
			emptyBox(
				`No closed window with enough rows yet (each needs ${d.report.min_rows ?? 50} rows in ${d.report.window_seconds ?? "?"} s).`,
				null,
			),
		);
		return;
	}
	const version = Math.max(...windows.map((w) => Number(w.version)));
	const mine = windows
		.filter((w) => Number(w.version) === version)
		.sort((a, b) => String(a.start).localeCompare(String(b.start)));
	const last = mine.at(-1);
	const features = Object.keys(last.features).sort(
		(a, b) => severity(last.features[b]) - severity(last.features[a]),
	);
	box.replaceChildren(
		h(
			"p",
			{ class: "muted" },
			`Version ${version}, ${mine.length} window(s); newest: ${last.dataset ? `${last.dataset.drifted} of ${last.dataset.columns} columns drifted${last.dataset.drifted_dataset ? " — dataset drift" : ""}` : ""}`,
		),
		h(
			"table",
			{},
			h(
				"thead",
				{},
				h(
					"tr",
					{},
					[
						"Feature",
						"Method",
						"Newest statistic (threshold)",
						"Drifted",
						"Per window",
					].map((t) => h("th", { scope: "col" }, t)),
				),
			),
			h(
				"tbody",
				{},
				features.map((f) => {
					const v = last.features[f];
					return h(
						"tr",
						{ "data-severity": String(severity(v)) },
						h("th", { scope: "row" }, f),
						h("td", {}, v.method),
						h(
							"td",
							{},
							v.statistic === null
								? (v.reason ?? "no verdict")
								: `${Number(v.statistic).toPrecision(3)} (${v.threshold})`,
						),
						h(
							"td",
							{ class: v.drifted ? "error" : "" },
							v.drifted === null ? "—" : v.drifted ? "yes" : "no",
						),
						h(
							"td",
							{},
							// log10 of how far past its threshold each window was: up is worse, above the dashed line drifted
							// (raw p-values of a drifted feature sit at 1e-30 and would draw a flat line at the bottom).
							sparkline(
								mine.map((w) =>
									w.features[f] && typeof w.features[f].statistic === "number"
										? Math.log10(Math.max(severity(w.features[f]), 1e-300))
										: Number.NaN,
								),
								`${f}: drift over ${mine.length} windows (${v.method}; above the dashed line = drifted)`,
								0,
							),
						),
					);
				}),
			),
		),
	);
}

const QUALITY = {
	classification: [
		["accuracy", "Accuracy"],
		["f1_macro", "F1 (macro)"],
		["roc_auc", "ROC AUC"],
		["log_loss", "Log-loss"],
	],
	regression: [
		["mae", "MAE"],
		["rmse", "RMSE"],
	],
};

function fmtFigure(x) {
	return typeof x === "number" ? x.toPrecision(4) : "—";
}

/** The quality panel: per served version, each figure over the newest feedback rows (window) and since start (cumulative). */
async function quality(name, box) {
	let d;
	try {
		d = await api(`/ui/api/models/${encodeURIComponent(name)}/quality`);
	} catch (err) {
		box.replaceChildren(errorBox(err));
		return;
	}
	const many = d.servers.length > 1;
	const rows = d.servers.flatMap((s) =>
		s.versions
			.filter((v) => v.cumulative?.rows > 0)
			.map((v) => ({ ...v, server: s.label })),
	);
	if (rows.length === 0) {
		box.replaceChildren(
			emptyBox(
				"No feedback with a truth for this model yet: send each prediction's truth by its request id.",
				`curl -X POST localhost:8080/v2/models/${name}/feedback -d '{"id": "<request id>", "truth": 1}'`,
			),
		);
		return;
	}
	const tables = ["classification", "regression"]
		.map((task) => [task, rows.filter((r) => r.task === task)])
		.filter(([, list]) => list.length > 0)
		.map(([task, list]) =>
			h(
				"table",
				{},
				h(
					"caption",
					{},
					`${task === "regression" ? "Regression" : "Classification"}: window / cumulative`,
				),
				h(
					"thead",
					{},
					h(
						"tr",
						{},
						[
							"Version",
							"Rows (window)",
							...QUALITY[task].map(([, t]) => t),
						].map((t) => h("th", { scope: "col" }, t)),
					),
				),
				h(
					"tbody",
					{},
					list.map((r) =>
						h(
							"tr",
							{},
							h(
								"th",
								{ scope: "row" },
								`v${r.version}${many ? ` on ${r.server}` : ""}`,
							),
							h("td", {}, `${r.cumulative.rows} (${r.window.rows})`),
							QUALITY[task].map(([k]) =>
								h(
									"td",
									{},
									`${fmtFigure(r.window[k])} / ${fmtFigure(r.cumulative[k])}`,
								),
							),
						),
					),
				),
			),
		);
	box.replaceChildren(...tables);
}

function policyText(p) {
	const parts = [];
	if (p.split)
		parts.push(
			`split ${p.split.map((s) => `v${s.version}=${s.weight}%`).join(", ")}`,
		);
	if (p.sticky) parts.push(`sticky on ${p.sticky.key} (${p.sticky.from})`);
	if (p.shadow)
		parts.push(
			`shadow ${p.shadow.map((s) => `v${s.version} ${s.percent}%`).join(", ")}`,
		);
	if (p.bandit)
		parts.push(
			`bandit ${p.bandit.algorithm} over ${p.bandit.arms.map((a) => `v${a}`).join(", ")}`,
		);
	return parts.join("; ") || "none";
}

function versionDetail(d) {
	const metrics = d.metadata?.metrics;
	const summary = [
		d.runtime,
		d.task,
		metrics
			? Object.entries(metrics)
					.map(([k, v]) => `${k} ${v}`)
					.join(", ")
			: null,
	]
		.filter(Boolean)
		.join(" · ");
	return h(
		"details",
		{},
		h("summary", {}, summary || "manifest"),
		d.description ? h("p", {}, d.description) : null,
		d.features
			? h(
					"p",
					{},
					h("strong", {}, "Features: "),
					d.features.map((f) => `${f.name} (${f.datatype ?? "?"})`).join(", "),
				)
			: null,
		d.labels
			? h("p", {}, h("strong", {}, "Labels: "), d.labels.join(", "))
			: null,
		h(
			"pre",
			{},
			JSON.stringify(
				{
					signature: d.signature,
					metadata: d.metadata,
					registration: d.registration,
				},
				null,
				2,
			),
		),
	);
}

// ---- Experiments ----

async function experimentsPage(params) {
	document.title = "Experiments · mlship";
	const range = HISTORY_RANGES.includes(params.get("range") ?? "")
		? params.get("range")
		: "1h";
	const data = await api(
		`/ui/api/experiments?since=${encodeURIComponent(range)}`,
	);
	const out = [
		h("h1", {}, "Experiments and rollouts"),
		rangeToolbar(
			"Weights over",
			HISTORY_RANGES.map((r) => [r, `last ${r}`]),
			range,
			"#/experiments",
		),
	];
	const shares = [];
	const weightCharts = [];
	// Aliases whose history in the range has a policy (a rollout that ended has none now, but had one).
	const history = groupHistory(data.history);
	const current = new Set(data.routes.map((r) => `${r.name}@${r.alias}`));
	const past = [...history.keys()].filter(
		(k) => !current.has(k) && history.get(k).some((c) => c.policy),
	);
	if (data.routes.length === 0) {
		out.push(
			emptyBox(
				"No traffic policy on any alias. Start a canary:",
				"mlship models route churn production --split 3=90,4=10 --shadow 5=100",
			),
		);
	}
	for (const r of data.routes) {
		out.push(h("h2", {}, `${r.name}@${r.alias}`));
		out.push(
			h(
				"p",
				{},
				policyText(r.policy),
				h(
					"span",
					{ class: "muted" },
					` · since ${fmtTime(r.updatedAt)}${r.actor ? ` by ${r.actor}` : ""}`,
				),
			),
		);
		if (r.policy.split) {
			out.push(
				h(
					"table",
					{},
					h(
						"thead",
						{},
						h(
							"tr",
							{},
							h("th", { scope: "col" }, "Version"),
							h("th", { scope: "col" }, "Weight"),
						),
					),
					h(
						"tbody",
						{},
						r.policy.split.map((s) =>
							h(
								"tr",
								{},
								h("th", { scope: "row" }, `v${s.version}`),
								h(
									"td",
									{},
									h("span", { class: "bar", style: `width:${s.weight * 2}px` }),
									` ${s.weight}%`,
								),
							),
						),
					),
				),
			);
		}
		const weightsBox = h("div", {
			class: "charts",
			"data-weights": `${r.name}@${r.alias}`,
		});
		const shareBox = h("div", {
			class: "charts",
			id: `share-${r.name}-${r.alias}`,
			"data-share": `${r.name}@${r.alias}`,
		});
		out.push(h("div", { class: "side" }, weightsBox, shareBox));
		weightCharts.push([weightsBox, `${r.name}@${r.alias}`]);
		shares.push([shareBox, r.name]);
		const rows = [];
		for (const f of data.figures.filter((x) => x.model === r.name)) {
			if (f.error) {
				rows.push(
					h(
						"tr",
						{},
						h("th", { scope: "row" }, f.server),
						h("td", { colspan: 6, class: "muted" }, f.error),
					),
				);
				continue;
			}
			for (const s of f.info.shadows ?? [])
				rows.push(
					h(
						"tr",
						{},
						h("th", { scope: "row" }, f.server),
						h("td", {}, `v${s.version}`),
						h("td", {}, String(s.compared)),
						h(
							"td",
							{},
							s.agreement === undefined
								? "—"
								: `${(s.agreement * 100).toFixed(1)}%`,
						),
						h(
							"td",
							{},
							s.meanAbsDiff === undefined ? "—" : s.meanAbsDiff.toPrecision(3),
						),
						h("td", {}, `${s.errors} / ${s.dropped}`),
					),
				);
		}
		if (rows.length)
			out.push(
				h(
					"table",
					{},
					h(
						"caption",
						{ class: "muted" },
						"Shadow comparison (since each server started)",
					),
					h(
						"thead",
						{},
						h(
							"tr",
							{},
							[
								"Server",
								"Shadow",
								"Compared",
								"Label agreement",
								"Mean |score diff|",
								"Errors / dropped",
							].map((t) => h("th", { scope: "col" }, t)),
						),
					),
					h("tbody", {}, rows),
				),
			);
	}
	for (const k of past) {
		const weightsBox = h("div", { class: "charts", "data-weights": k });
		out.push(
			h("h2", {}, k),
			h(
				"p",
				{ class: "muted" },
				"No traffic policy now; it had one in the range.",
			),
			weightsBox,
		);
		weightCharts.push([weightsBox, k]);
	}
	out.push(
		...banditSection(data.arms),
		...rolloutSection(data.rollouts),
		startRolloutForm(data.aliases, data.rolloutDefaults),
	);
	main.replaceChildren(...out);
	const since = data.now - HISTORY_MS[range];
	for (const [box, k] of weightCharts)
		weightsChart(box, k, history.get(k) ?? [], since, data.now);
	// The split as served: each version's share of the model's requests/s over the last minute, all servers.
	const stops = [
		...new Map(shares.map(([box, model]) => [model, box])).entries(),
	].map(([model, box]) =>
		liveCharts(
			box,
			[
				{
					key: "share",
					title: `${model}: share of requests (%) by version, as served`,
				},
			],
			60,
			`/ui/api/models/${encodeURIComponent(model)}/live`,
			(ev) => {
				const agg = perVersion(ev);
				const total = [...agg.values()].reduce((n, a) => n + (a.rps ?? 0), 0);
				return new Map(
					[...agg].map(([v, a]) => [
						v,
						{
							share: total > 0 && a.rps !== null ? (100 * a.rps) / total : null,
						},
					]),
				);
			},
		),
	);
	cleanup = () => {
		for (const stop of stops) stop();
	};
}

const HISTORY_MS = {
	"15m": 900_000,
	"1h": 3_600_000,
	"6h": 21_600_000,
	"24h": 86_400_000,
	"7d": 604_800_000,
	"30d": 2_592_000_000,
};

/** The registry's policy history by `name@alias`, oldest first. */
function groupHistory(history) {
	const out = new Map();
	for (const c of history ?? []) {
		const k = `${c.name}@${c.alias}`;
		out.set(k, [...(out.get(k) ?? []), c]);
	}
	return out;
}

/**
 * What a change configured each version to get, in percent: a split's weights, else all to the alias's version.
 * A bandit's shares are learned, not configured (its arms are shown below): null.
 */
function configuredWeights(c) {
	if (c.version === null) return new Map();
	if (c.policy?.bandit) return null;
	if (c.policy?.split)
		return new Map(c.policy.split.map((s) => [s.version, s.weight]));
	return new Map([[c.version, 100]]);
}

function describeWeights(c) {
	const w = configuredWeights(c);
	if (w === null)
		return `bandit over ${c.policy.bandit.arms.map((a) => `v${a}`).join(", ")}`;
	if (w.size === 0) return "alias deleted";
	return [...w].map(([v, x]) => `v${v} ${x}%`).join(", ");
}

/**
 * A step chart of the weights each version was configured to get over [since, now] (from the registry's policy
 * history), with the list of changes below it for screen readers and keyboard users.
 */
function weightsChart(box, key, changes, rangeStart, now) {
	// The axis starts at the range, or at the first recorded change when that is later (at least a minute shown).
	const since = Math.min(
		Math.max(rangeStart, changes[0]?.at ?? rangeStart),
		now - 60_000,
	);
	const xs = [];
	const rows = [];
	for (const c of changes) {
		const t = Math.max(c.at, since) / 1000;
		// Two changes in one instant (a rollout's alias move and clear): the later one holds.
		if (xs.length && xs[xs.length - 1] === t) rows.pop();
		else xs.push(t);
		rows.push(configuredWeights(c));
	}
	if (xs.length === 0) {
		box.append(
			h(
				"p",
				{ class: "muted" },
				"No change recorded in the registry yet for this alias.",
			),
		);
		box.dataset.points = "0";
		return;
	}
	xs.push(now / 1000);
	rows.push(rows[rows.length - 1]);
	const versions = [
		...new Set(rows.flatMap((w) => (w ? [...w.keys()] : []))),
	].sort((a, b) => a - b);
	const axis = axisStyle();
	const chartBox = h("div", {
		class: "chart",
		role: "img",
		"aria-label": `Configured weight (%) by version of ${key} over time`,
		"data-chart": "weights",
	});
	box.append(chartBox);
	const width = Math.max(
		320,
		Math.min(640, Math.floor(main.clientWidth / 2) - 24),
	);
	new uPlot(
		{
			title: `${key}: configured weight (%) by version`,
			width,
			height: 180,
			scales: {
				x: { time: true, range: () => [since / 1000, now / 1000] },
				y: { range: [0, 100] },
			},
			axes: [
				{ ...axis, space: 80 },
				{ ...axis, size: 50 },
			],
			series: [
				{},
				...versionSeries(versions, {
					paths: uPlot.paths.stepped({ align: 1 }),
				}),
			],
		},
		[xs, ...versions.map((v) => rows.map((w) => (w ? (w.get(v) ?? 0) : null)))],
		chartBox,
	);
	box.dataset.points = String(changes.length);
	// Element.append writes null as the text "null": only the notes that apply go in.
	const notes = [
		changes[changes.length - 1]?.policy?.bandit
			? h(
					"p",
					{ class: "muted note" },
					"A bandit's shares are learned from rewards, not configured: see its arms below.",
				)
			: null,
		since > rangeStart
			? h(
					"p",
					{ class: "muted note" },
					`Drawn from the first change the registry recorded in the range (${fmtTime(new Date(changes[0].at).toISOString())}).`,
				)
			: null,
		h(
			"details",
			{},
			h("summary", {}, `Changes (${changes.length})`),
			h(
				"table",
				{},
				h(
					"thead",
					{},
					h(
						"tr",
						{},
						["Time", "Configured", "By"].map((t) =>
							h("th", { scope: "col" }, t),
						),
					),
				),
				h(
					"tbody",
					{},
					changes.map((c) =>
						h(
							"tr",
							{ "data-change": "" },
							h("td", {}, fmtTime(new Date(c.at).toISOString())),
							h("td", {}, describeWeights(c)),
							h("td", {}, c.actor),
						),
					),
				),
			),
		),
	];
	box.append(...notes.filter((n) => n !== null));
}

/** The start-a-rollout form (admin): the same settings and defaults as `mlship rollout start`, confirmed first. */
function startRolloutForm(aliases, defaults) {
	const section = h("section", {
		class: "card start-rollout",
		"aria-labelledby": "start-rollout-title",
	});
	section.append(h("h2", { id: "start-rollout-title" }, "Start a rollout"));
	if (!aliases || aliases.length === 0) {
		section.append(
			emptyBox(
				"No alias to roll out on. Register a model with an alias first:",
				"mlship models register ./bundle --name churn --alias production",
			),
		);
		return section;
	}
	const field = (id, label, input, hint) =>
		h(
			"div",
			{ class: "field" },
			h("label", { for: id }, label),
			input,
			hint ? h("span", { class: "muted", id: `${id}-hint` }, hint) : null,
		);
	const aliasSel = h(
		"select",
		{ id: "ro-alias", name: "alias" },
		aliases.map((a) =>
			h(
				"option",
				{ value: `${a.name}@${a.alias}` },
				`${a.name}@${a.alias} (now v${a.version})`,
			),
		),
	);
	const toSel = h("select", { id: "ro-to", name: "to" });
	const fillVersions = () => {
		const a = aliases.find((x) => `${x.name}@${x.alias}` === aliasSel.value);
		toSel.replaceChildren(
			...(a?.versions ?? []).map((v) =>
				h("option", { value: String(v) }, `v${v}`),
			),
		);
	};
	aliasSel.addEventListener("change", fillVersions);
	fillVersions();
	// The settings of `mlship rollout start`: [JSON key, label, hint under the field].
	const settings = [
		["steps", "Steps (% of traffic)", "comma-separated, the last 100"],
		["interval", "Check every"],
		["maxErrorRate", "Max error rate"],
		["maxP99Ms", "Max p99 (ms)", "empty: latency not checked"],
		["minRequests", "Min requests per check"],
		["failures", "Roll back after failed checks"],
	];
	const form = h(
		"form",
		{ class: "rollout-form", "data-start-rollout": "" },
		field("ro-alias", "Alias", aliasSel),
		field("ro-to", "Roll out version", toSel),
		settings.map(([key, label, hint]) =>
			field(
				`ro-${key}`,
				label,
				h("input", {
					id: `ro-${key}`,
					name: key,
					type: "text",
					value: defaults[key] ?? "",
					placeholder: key === "maxP99Ms" ? "not checked" : undefined,
					"aria-describedby": hint ? `ro-${key}-hint` : undefined,
				}),
				hint,
			),
		),
		h(
			"div",
			{ class: "field" },
			h("button", { type: "submit" }, "Start rollout…"),
		),
	);
	form.addEventListener("submit", async (e) => {
		e.preventDefault();
		const f = new FormData(form);
		const [name, alias] = String(f.get("alias")).split("@");
		const body = {};
		for (const k of ["to", ...settings.map(([key]) => key)]) {
			const v = String(f.get(k) ?? "").trim();
			if (v !== "") body[k] = v;
		}
		const a = aliases.find((x) => x.name === name && x.alias === alias);
		if (
			!(await confirmAction(
				`Start a rollout of ${name}@${alias} from v${a?.version} to v${body.to ?? "?"} in steps ${body.steps ?? defaults.steps}%? Every serving replica takes part; checks run every ${body.interval ?? defaults.interval}.`,
			))
		)
			return;
		try {
			await api(
				`/ui/api/rollouts/${encodeURIComponent(name)}/${encodeURIComponent(alias)}`,
				{ method: "POST", body: JSON.stringify(body) },
			);
			await route();
		} catch (err) {
			section.querySelector(".error")?.remove();
			section.append(errorBox(err));
		}
	});
	section.append(form);
	return section;
}

/** Bandit arms per alias (registry totals, merged over the replicas): share of the rewarded pulls and mean reward. */
function banditSection(arms) {
	if (!arms || arms.length === 0) return [];
	const byAlias = new Map();
	for (const a of arms) {
		const k = `${a.name}@${a.alias}`;
		byAlias.set(k, [...(byAlias.get(k) ?? []), a]);
	}
	const out = [h("h2", {}, "Bandit arms")];
	for (const [k, list] of byAlias) {
		const total = list.reduce((n, a) => n + a.pulls, 0);
		const best = Math.max(
			...list.map((a) => (a.pulls > 0 ? a.rewardSum / a.pulls : -Infinity)),
		);
		out.push(
			h(
				"table",
				{ "data-bandit": k },
				h("caption", {}, `${k}: rewards by arm (all replicas)`),
				h(
					"thead",
					{},
					h(
						"tr",
						{},
						["Arm", "Rewarded pulls", "Share", "Mean reward", "Reward sum"].map(
							(t) => h("th", { scope: "col" }, t),
						),
					),
				),
				h(
					"tbody",
					{},
					list
						.sort((a, b) => a.version - b.version)
						.map((a) => {
							const share = total > 0 ? (100 * a.pulls) / total : 0;
							const mean = a.pulls > 0 ? a.rewardSum / a.pulls : null;
							return h(
								"tr",
								{},
								h("th", { scope: "row" }, `v${a.version}`),
								h("td", {}, String(a.pulls)),
								h(
									"td",
									{},
									h("span", {
										class: "bar",
										style: `width:${(share * 2).toFixed(0)}px`,
									}),
									` ${share.toFixed(1)}%`,
								),
								h(
									"td",
									{},
									mean === null
										? "—"
										: `${mean.toFixed(3)}${mean === best && list.length > 1 ? " (best)" : ""}`,
								),
								h("td", {}, a.rewardSum.toFixed(2)),
							);
						}),
				),
			),
		);
	}
	return out;
}

const ROLLOUT_VERBS = {
	running: ["pause", "abort", "promote"],
	paused: ["resume", "abort", "promote"],
};
const ROLLOUT_CONFIRM = {
	pause: "Pause it? No checks or steps; the split stays where it is.",
	resume: "Resume it? The next check is one interval away.",
	abort: "Abort it? All traffic goes back to the previous version.",
	promote:
		"Promote it now? The alias moves to the new version and the split is cleared.",
};

function eventText(e) {
	const d = { ...e.detail };
	return Object.entries(d)
		.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
		.join(" ");
}

/** Rollouts: state, the steps (current marked), the check limits, the events with their check results, and actions. */
function rolloutSection(rollouts) {
	if (!rollouts || rollouts.length === 0) return [];
	const out = [h("h2", {}, "Rollouts")];
	for (const r of rollouts) {
		const ref = `${r.name}@${r.alias}`;
		const verbs = ROLLOUT_VERBS[r.state] ?? [];
		out.push(
			h(
				"section",
				{
					class: "card",
					"data-rollout": ref,
					"aria-label": `Rollout of ${ref}`,
				},
				h("h3", {}, `${ref}: v${r.from} → v${r.to}`),
				h(
					"p",
					{},
					h(
						"strong",
						{ class: `state-${r.state}`, "data-state": r.state },
						r.state,
					),
					` · step ${r.step + 1} of ${r.steps.length} · failed checks ${r.failed} of ${r.failures} allowed · started ${fmtTime(new Date(r.startedAt).toISOString())}`,
					r.state === "running"
						? ` · next check ${fmtTime(new Date(r.nextCheckAt).toISOString())}`
						: "",
				),
				h(
					"ol",
					{
						class: "steps",
						"aria-label": "Steps (percent of traffic to the new version)",
					},
					r.steps.map((p, i) =>
						h(
							"li",
							i === r.step ? { "aria-current": "step", class: "current" } : {},
							`${p}%`,
						),
					),
				),
				h(
					"p",
					{ class: "muted" },
					`Checks every ${Math.round(r.intervalMs / 1000)} s: error rate ≤ ${(r.maxErrorRate * 100).toFixed(2)}%${r.maxP99Ms === null ? "" : `, p99 ≤ ${r.maxP99Ms} ms`}, at least ${r.minRequests} requests`,
				),
				verbs.length
					? h(
							"p",
							{},
							verbs.map((verb) =>
								h(
									"button",
									{
										type: "button",
										"aria-label": `${verb[0].toUpperCase()}${verb.slice(1)} the rollout of ${ref}`,
										onclick: async () => {
											if (
												!(await confirmAction(
													`${verb[0].toUpperCase()}${verb.slice(1)} the rollout of ${ref} (v${r.from} → v${r.to})? ${ROLLOUT_CONFIRM[verb]}`,
												))
											)
												return;
											try {
												await api(
													`/ui/api/rollouts/${encodeURIComponent(r.name)}/${encodeURIComponent(r.alias)}/${verb}`,
													{ method: "POST", body: "{}" },
												);
												await route();
											} catch (err) {
												main.prepend(errorBox(err));
											}
										},
									},
									verb[0].toUpperCase() + verb.slice(1),
								),
							),
						)
					: "",
				h(
					"table",
					{},
					h("caption", {}, "Events and check results (oldest first)"),
					h(
						"thead",
						{},
						h(
							"tr",
							{},
							["Time", "Event", "Detail"].map((t) =>
								h("th", { scope: "col" }, t),
							),
						),
					),
					h(
						"tbody",
						{},
						r.events.map((e) =>
							h(
								"tr",
								{ "data-event": e.type },
								h("td", {}, fmtTime(new Date(e.at).toISOString())),
								h(
									"th",
									{
										scope: "row",
										class: /failed|rolled_back|aborted/.test(e.type)
											? "error"
											: "",
									},
									e.type,
								),
								h("td", {}, eventText(e)),
							),
						),
					),
				),
			),
		);
	}
	return out;
}

// ---- Servers ----

async function serversPage() {
	document.title = "Servers · mlship";
	const [data, streams] = await Promise.all([
		api("/ui/api/servers"),
		api("/ui/api/streams"),
	]);
	const out = [h("h1", {}, "Servers")];
	if (data.length === 0)
		out.push(
			emptyBox(
				"No server to show. Name them:",
				"mlship ui --registry sqlite:./registry.db --server http://127.0.0.1:8080",
			),
		);
	const cards = data.map((s) =>
		h(
			"section",
			{ class: "card", "aria-label": `Server ${s.label}` },
			h("h2", {}, s.label),
			h(
				"p",
				{},
				"Health: ",
				h(
					"span",
					{ class: s.ready ? "state-READY" : "state-UNAVAILABLE" },
					s.ready ? "ready" : "not ready",
				),
			),
			h(
				"p",
				{},
				`Registry: ${s.registryAvailable === null ? "none" : s.registryAvailable ? "available" : "UNAVAILABLE"}`,
			),
			h(
				"p",
				{},
				`Memory: models ${fmtBytes(s.loadedBytes)} (estimate), process ${fmtBytes(s.residentBytes)}`,
			),
			s.error ? errorBox({ message: s.error }) : null,
			s.models.length
				? h(
						"table",
						{},
						h(
							"thead",
							{},
							h(
								"tr",
								{},
								h("th", { scope: "col" }, "Model"),
								h("th", { scope: "col" }, "Version"),
								h("th", { scope: "col" }, "State"),
								h("th", { scope: "col" }, "Action (admin)"),
							),
						),
						h(
							"tbody",
							{},
							s.models.map((m) =>
								h(
									"tr",
									{},
									h("th", { scope: "row" }, m.name),
									h("td", {}, m.version),
									h(
										"td",
										{},
										h("span", { class: `state-${m.state}` }, m.state),
									),
									h(
										"td",
										{},
										m.state === "READY"
											? h(
													"button",
													{
														type: "button",
														class: "danger",
														"aria-label": `Unload ${m.name} from ${s.label}`,
														onclick: async () => {
															if (
																!(await confirmAction(
																	`Unload ${m.name} from ${s.label}? It stops serving there until loaded again.`,
																))
															)
																return;
															try {
																await api(
																	`/ui/api/servers/${encodeURIComponent(s.id)}/models/${encodeURIComponent(m.name)}/unload`,
																	{ method: "POST", body: "{}" },
																);
																await route();
															} catch (err) {
																main.prepend(errorBox(err));
															}
														},
													},
													"Unload",
												)
											: null,
									),
								),
							),
						),
					)
				: emptyBox("No model loaded.", "mlship serve -m churn@production"),
		),
	);
	out.push(h("div", { class: "cards" }, cards));
	out.push(...streamsSection(streams));
	main.replaceChildren(...out);
}

/** How long ago `iso` was, in words. */
function ago(iso) {
	const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
	if (s < 120) return `${s} s ago`;
	if (s < 7200) return `${Math.round(s / 60)} min ago`;
	return `${Math.round(s / 3600)} h ago`;
}

/** Stream processors (`mlship stream --metrics-port`): health, model, source and sink, counts, last message. */
function streamsSection(streams) {
	const out = [h("h2", {}, "Streams")];
	if (streams.length === 0) {
		out.push(
			emptyBox(
				"No stream processor shown. Start one with --metrics-port and name it:",
				"mlship stream -m churn@production --from redis://127.0.0.1:6379/requests --to redis://127.0.0.1:6379/scores --metrics-port 9464\nmlship ui --registry sqlite:./registry.db --stream http://127.0.0.1:9464",
			),
		);
		return out;
	}
	const cards = streams.map((t) => {
		const st = t.status;
		const health = t.error
			? ["unreachable", "state-UNAVAILABLE"]
			: st.stopping
				? ["stopping", "state-UNAVAILABLE"]
				: st.ready
					? ["ready", "state-READY"]
					: ["not ready", "state-UNAVAILABLE"];
		const rows = st
			? [
					[
						"Model",
						`${st.model}${st.version ? ` (v${st.version} at start)` : ""}`,
					],
					[
						"Versions scoring",
						Object.entries(st.versions ?? {})
							.map(([v, n]) => `v${v}: ${n}`)
							.join(", ") || "none yet",
					],
					["Source", st.from],
					["Sink", st.to],
					["Consumer group", st.group ?? "—"],
					["Consumed", String(st.consumed)],
					["Produced", String(st.produced)],
					["In flight", String(st.inFlight)],
					["Dead letters", String(st.dead)],
					["Broker retries", String(st.retries)],
					[
						"Last message",
						st.lastMessageAt
							? `${fmtTime(st.lastMessageAt)} (${ago(st.lastMessageAt)})`
							: "none yet",
					],
				]
			: [];
		return h(
			"section",
			{
				class: "card",
				"aria-label": `Stream ${t.label}`,
				"data-stream": t.id,
			},
			h("h3", {}, t.label),
			h(
				"p",
				{},
				"Health: ",
				h("span", { class: health[1], "data-health": health[0] }, health[0]),
			),
			t.error ? errorBox({ message: t.error }) : null,
			rows.length
				? h(
						"dl",
						{},
						rows.flatMap(([k, v]) => [
							h("dt", {}, k),
							h("dd", { "data-field": k }, v),
						]),
					)
				: null,
		);
	});
	out.push(h("div", { class: "cards streams" }, cards));
	return out;
}

// ---- start ----

const tokenInput = /** @type {HTMLInputElement} */ (
	document.getElementById("token")
);
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
document.getElementById("login")?.addEventListener("submit", (e) => {
	e.preventDefault();
	if (tokenInput.value)
		sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
	else sessionStorage.removeItem(TOKEN_KEY);
	void route();
});
window.addEventListener("hashchange", () => void route());
void route();
