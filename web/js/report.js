// report.js — a sweep's report (#/sweeps/<id>/report): the recipe's claim, paper and figure, its
// checks with holds / fails / not yet and the numbers each used (GET /sweeps/{id}/report), and
// the paper-style figures drawn from the same answer: series with seed bands (mean, min–max over
// the group's cells), profiles against depth at several steps, a depth metric over time (one
// small chart per group, one line per layer) and the norm's input–output S-curve.
// "Export HTML" writes one self-contained page (figures as inline PNGs from the canvases, the
// check table, the claim) for a paper draft; each figure also downloads as a PNG.
// Also #/sweeps: the sweeps with links to their report, compare view and runs.

import { get } from './api.js';
import { h, Plot, Scatter, chartBox, ensureCss, UPLOT_CSS, colourFor, fmt, uid, withAlpha, viridisCss } from './charts.js';

const errText = (e) => (e && e.message ? e.message : String(e));
const WORDS = { holds: 'holds', fails: 'fails', not_yet: 'not yet' };

function section(title, ...kids) {
	const id = uid('sec');
	return h('section', { class: 'nl-section', 'aria-labelledby': id }, h('h3', { id, text: title }), ...kids);
}

// ---------- #/sweeps ----------

export async function renderSweeps(root) {
	const view = h('div', { class: 'nl-view nl-sweeps-view' });
	root.replaceChildren(view);
	view.append(h('h1', { text: 'Sweeps' }));
	const sw = await get('/sweeps', { page_size: 200 });
	const items = sw.items || [];
	if (!items.length) {
		view.append(h('p', { class: 'nl-note', text: 'No sweeps yet. POST one to /api/v1/sweeps (config/recipes/ holds recipes that test a paper\'s claim).' }));
		return null;
	}
	const rows = items.slice().reverse().map((s) => {
		const c = s.counts || {};
		const done = (c.succeeded || 0) + (c.diverged || 0);
		return h('tr', { 'data-sweep': String(s.id) },
			h('td', { class: 'nl-num', text: String(s.id) }),
			h('td', { text: s.name || '—' }),
			h('td', { class: 'nl-num', text: `${done}/${s.n_cells}` }),
			h('td', { text: s.owner }),
			h('td', {}, h('a', { href: `#/sweeps/${s.id}/report`, class: 'report-link', text: 'Report' }), ' · ',
				h('a', { href: `#/compare?sweep=${s.id}`, text: 'Compare' }), ' · ',
				h('a', { href: `#/runs?sweep=${s.id}`, text: 'Runs' })));
	});
	view.append(h('div', { class: 'nl-table-wrap' }, h('table', { id: 'sweeps-table', class: 'nl-table' },
		h('caption', { text: 'Newest first; a sweep submitted with a recipe has checks in its report' }),
		h('thead', {}, h('tr', {}, ...['id', 'name', 'finished', 'owner', ''].map((t) => h('th', { scope: 'col', text: t })))),
		h('tbody', {}, ...rows))));
	return null;
}

// ---------- #/sweeps/<id>/report ----------

export async function renderReport(root, id) {
	const started = performance.now();
	const S = { closed: false, plots: [], figs: [] };
	window.normlabTimings = { view: 'report', started, drawn: null };
	const cleanup = () => {
		if (S.closed) return;
		S.closed = true;
		if (window.normlabTimings && window.normlabTimings.started === started) window.normlabTimings = null;
		for (const p of S.plots) if (p.destroy) p.destroy();
		S.plots = [];
	};
	ensureCss(UPLOT_CSS);
	const view = h('div', { class: 'nl-view nl-report' });
	root.replaceChildren(view);
	const title = h('h1', { text: `Report: sweep ${id}` });
	const meta = h('p', { class: 'nl-run-meta', text: 'Loading…' });
	view.append(h('header', { class: 'nl-run-head' }, title, meta));

	let rep;
	try {
		rep = await get(`/sweeps/${id}/report`);
	} catch (e) {
		meta.replaceWith(h('p', { class: 'nl-note nl-error', role: 'alert', text: errText(e) }));
		return cleanup;
	}
	if (S.closed) return cleanup;
	title.textContent = `Report: sweep ${id}${rep.name ? ` (${rep.name})` : ''}`;
	const c = rep.counts || {};
	meta.replaceChildren(`${rep.n_cells} cells: ${Object.entries(c).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}`,
		rep.group_by && rep.group_by.length ? ` · grouped by ${rep.group_by.join(', ')}` : '', ' · ',
		h('a', { href: `#/compare?sweep=${id}`, text: 'compare view' }), ' · ', h('a', { href: `#/runs?sweep=${id}`, text: 'runs' }));

	const exportBtn = h('button', { type: 'button', id: 'report-export', text: 'Export HTML' });
	// the report is computed when asked: while cells run, ask again (the router draws it anew)
	const refreshBtn = h('button', { type: 'button', id: 'report-refresh', text: 'Refresh',
		onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) });
	const exportNote = h('span', { class: 'nl-note', 'aria-live': 'polite' });
	view.append(h('div', { class: 'nl-controls' }, exportBtn, refreshBtn, exportNote));

	// the claim
	const claim = rep.recipe
		? h('div', { id: 'report-claim', class: 'nl-claim' },
			h('p', {}, h('strong', { text: 'Claim. ' }), rep.recipe.claim),
			h('p', {}, h('strong', { text: 'Paper. ' }), rep.recipe.paper),
			h('p', {}, h('strong', { text: 'Figure. ' }), rep.recipe.figure))
		: h('p', { id: 'report-claim', class: 'nl-note', text: 'This sweep was submitted without a recipe: no checks, the default figures.' });
	view.append(section('Claim', claim));

	// the checks
	const sum = rep.summary || {};
	const summary = h('p', { id: 'report-summary', class: 'nl-run-meta',
		text: `${sum.holds || 0} hold, ${sum.fails || 0} fail, ${sum.not_yet || 0} not yet decided` });
	const checkTable = checksTable(rep.checks || []);
	view.append(section('Checks', summary, h('div', { class: 'nl-table-wrap' }, checkTable)));

	// the figures
	const figWrap = h('div', { class: 'nl-figures' });
	view.append(section('Figures', figWrap));
	(rep.figures || []).forEach((f, i) => {
		try {
			S.figs.push(drawFigure(figWrap, f, i, S));
		} catch (e) {
			console.error(e);
			figWrap.append(h('p', { class: 'nl-note nl-error', text: `figure ${i + 1}: ${errText(e)}` }));
		}
	});
	window.normlabTimings = { view: 'report', started, drawn: performance.now() };

	exportBtn.addEventListener('click', () => {
		const html = exportHtml(rep, id, checkTable, S.figs);
		download(`normlab-sweep-${id}-report.html`, new Blob([html], { type: 'text/html' }));
		exportNote.textContent = `Exported ${S.figs.length} figures and ${(rep.checks || []).length} checks.`;
	});
	return cleanup;
}

function fmtSide(side) {
	if (!side) return '—';
	const v = side.infinite ? '+∞' : fmt(side.mean);
	const spread = side.n > 1 && side.min !== null && side.max !== null ? ` [${fmt(side.min)}, ${fmt(side.max)}]` : '';
	return `${v}${spread} (n=${side.n}${side.diverged ? `, ${side.diverged} diverged` : ''})`;
}

function groupText(g) {
	const e = Object.entries(g || {});
	return e.length ? e.map(([k, v]) => `${k}=${v}`).join(', ') : 'all cells';
}

function checksTable(checks) {
	const head = h('tr', {}, ...['#', 'status', 'check', 'measured', 'group value', 'compared with'].map((t) => h('th', { scope: 'col', text: t })));
	const rows = checks.map((c) => {
		const what = `${c.metric}${c.of ? ` ${c.of}` : ''} at ${c.at === undefined ? 'last' : c.at}`;
		const other = c.check === 'compare'
			? `${groupText(c.than)}${c.than_at !== undefined ? ` at ${c.than_at}` : ''}: ${fmtSide(c.right)}${c.factor !== undefined ? ` ×${c.factor}` : ''}${c.margin !== undefined ? ` ${c.margin >= 0 ? '+' : '−'} ${Math.abs(c.margin)}` : ''}`
			: `${c.op} ${c.value}`;
		return h('tr', { 'data-status': c.status, 'data-index': String(c.index) },
			h('td', { class: 'nl-num', text: String(c.index + 1) }),
			h('td', {}, h('span', { class: `badge check-${c.status}`, text: WORDS[c.status] || c.status })),
			h('td', {}, h('div', { text: c.text }), h('div', { class: 'nl-note', text: `${what}; ${groupText(c.group)}` })),
			h('td', { class: 'check-reason', text: c.reason }),
			h('td', { text: fmtSide(c.left) }),
			h('td', { text: other }));
	});
	return h('table', { id: 'report-checks', class: 'nl-table' },
		h('caption', { text: 'Each check: the mean over its group\'s cells (seeds), min–max in brackets; a diverged cell counts as +∞ unless the check skips it' }),
		h('thead', {}, head), h('tbody', {}, ...rows));
}

// ---------- figures ----------

function figTitle(f, i) {
	return f.title || `${f.kind} ${f.metric || f.site || ''}`.trim() || `figure ${i + 1}`;
}

// Draws figure f into wrap; returns {title, f, canvases(), legend[]} for the export.
function drawFigure(wrap, f, i, S) {
	const name = `report-fig-${i}`;
	const title = figTitle(f, i);
	const groups = f.groups || [];
	const box = chartBox(name, title);
	box.dataset.kind = f.kind;
	const note = h('p', { class: 'nl-note' });
	const png = h('button', { type: 'button', class: 'nl-png', text: 'PNG' });
	const sec = h('figure', { class: 'nl-figure', id: `fig-${i}` }, h('figcaption', {}, h('strong', { text: `Figure ${i + 1}. ` }), title, ' ', png), note, box);
	wrap.append(sec);
	// small multiples colour by block or channel, not by group: their charts are titled instead
	const small = f.kind === 'depth_time' || f.kind === 'scurve';
	const legend = small ? [] : groups.map((g, k) => ({ label: g.label, color: colourFor(groupKey(g), k) }));
	let canvases = () => [...box.querySelectorAll('canvas')];
	if (f.kind === 'series') drawSeries(box, note, f, groups, S);
	else if (f.kind === 'depth') drawDepth(box, note, f, groups, S);
	else if (f.kind === 'depth_time') drawSmall(box, note, f, groups, S, drawDepthTime);
	else if (f.kind === 'scurve') drawSmall(box, note, f, groups, S, drawScurve);
	else note.textContent = `unknown figure kind ${f.kind}`;
	png.addEventListener('click', () => {
		const c = composite(canvases(), title);
		if (c) c.toBlob((b) => download(`${name}.png`, b), 'image/png');
	});
	return { title, f, canvases: () => canvases(), legend, note };
}

// The value a group is keyed by for colours: a single group_by value keeps its colour everywhere.
function groupKey(g) {
	const v = Object.values(g.key || {});
	return v.length === 1 ? String(v[0]) : g.label;
}

function drawSeries(box, note, f, groups, S) {
	const xs = [...new Set(groups.flatMap((g) => g.step || []))].sort((a, b) => a - b);
	const at = new Map(xs.map((x, k) => [x, k]));
	const col = (g, key) => {
		const ys = new Array(xs.length).fill(null);
		(g.step || []).forEach((s, k) => { ys[at.get(s)] = g[key][k]; });
		return ys;
	};
	const series = groups.map((g, k) => ({ label: `${g.label} (n=${(g.cells || []).length})`, color: colourFor(groupKey(g), k), width: 2 }));
	const p = new Plot(box, { xLabel: 'step', yLabel: f.metric, logY: !!f.log, series, height: 300 });
	S.plots.push(p);
	p.setBands(groups.map((g, k) => ({ series: k + 1, lo: col(g, 'min'), hi: col(g, 'max') })));
	p.setData([xs, ...groups.map((g) => col(g, 'mean'))], series);
	const empty = groups.filter((g) => !(g.step || []).length).map((g) => g.label);
	note.textContent = `Mean over each group's cells; the band is their min–max.${empty.length ? ` No ${f.metric} for ${empty.join('; ')}.` : ''}`;
}

function drawDepth(box, note, f, groups, S) {
	const steps = f.at_steps || [];
	let L = 0;
	for (const g of groups) for (const p of g.profiles || []) L = Math.max(L, (p.mean || []).length);
	const xs = Array.from({ length: L }, (_, l) => l + 1);
	const series = [], ys = [], bands = [];
	groups.forEach((g, k) => {
		const base = colourFor(groupKey(g), k);
		(g.profiles || []).forEach((p, j) => {
			if (!p.cells) return;
			const t = steps.length > 1 ? (j + 1) / steps.length : 1;
			const color = j === (g.profiles.length - 1) ? base : withAlpha(base, 0.25 + 0.6 * t);
			series.push({ label: `${g.label} @${p.step}`, color, width: j === g.profiles.length - 1 ? 2 : 1.25, dash: j === g.profiles.length - 1 ? undefined : [4, 3] });
			ys.push(xs.map((_, l) => (p.mean[l] === undefined ? null : p.mean[l])));
			if (j === g.profiles.length - 1) bands.push({ series: series.length, lo: xs.map((_, l) => p.min[l]), hi: xs.map((_, l) => p.max[l]) });
		});
	});
	const plot = new Plot(box, { xLabel: 'block', yLabel: f.metric, logY: !!f.log, xInt: true, xPad: true, points: true, series, height: 320 });
	S.plots.push(plot);
	plot.setBands(bands);
	plot.setData([xs, ...ys], series);
	note.textContent = `At steps ${steps.join(', ') || '—'} (dashed: earlier, solid: the last); band: min–max over the group's cells at the last step.`;
}

// One small chart per group (depth_time, scurve).
function drawSmall(box, note, f, groups, S, draw) {
	const grid = h('div', { class: 'nl-grid2' });
	box.append(grid);
	const drawn = [];
	groups.forEach((g, k) => {
		const sub = chartBox(`${box.dataset.chart}-${k}`, `${f.kind} ${g.label}`, 'nl-card');
		sub.prepend(h('h4', { text: g.label }));
		grid.append(sub);
		if (draw(sub, f, g, S)) drawn.push(g.label);
	});
	const missing = groups.filter((g) => !drawn.includes(g.label)).map((g) => g.label);
	const colours = f.kind === 'scurve' ? 'colour: channel' : 'colour: block 1 (dark) to the last block (yellow)';
	note.textContent = `One chart per group, left to right and down: ${groups.map((g) => g.label).join('; ')}; ${colours}.` +
		(missing.length ? ` Nothing recorded for ${missing.join('; ')} (e.g. α exists only for DyT/Derf).` : '');
	// the container's own attributes: groups drawn, and points of the first
	box.setAttribute('data-series', String(drawn.length));
	const first = grid.querySelector('[data-points]');
	box.setAttribute('data-points', first ? first.getAttribute('data-points') : '0');
}

function drawDepthTime(sub, f, g, S) {
	const steps = g.step || [];
	if (!steps.length) { sub.append(h('p', { class: 'nl-note', text: 'no rows' })); return false; }
	const L = g.layers || 0;
	const series = Array.from({ length: L }, (_, l) => ({ label: `block ${l + 1}`, color: viridisCss(L > 1 ? l / (L - 1) : 0), width: 1.5 }));
	const p = new Plot(sub, { xLabel: 'step', yLabel: f.metric, logY: !!f.log, series, height: 220 });
	S.plots.push(p);
	p.setData([steps, ...series.map((_, l) => g.mean.map((row) => (row[l] === undefined ? null : row[l])))], series);
	return true;
}

function drawScurve(sub, f, g, S) {
	if (!g.x || !g.x.length) { sub.append(h('p', { class: 'nl-note', text: 'no samples' })); return false; }
	const sc = new Scatter(sub, { label: `${f.site} ${g.label}`, xLabel: `${f.site} input`, yLabel: 'output (before the affine)', height: 260 });
	S.plots.push(sc);
	sc.setData({ x: g.x, y: g.y, c: g.channel || null });
	sub.append(h('p', { class: 'nl-note', text: `cell ${g.cell}, step ${g.step}; colour: channel` }));
	return true;
}

// ---------- export ----------

function download(name, blob) {
	const a = h('a', { href: URL.createObjectURL(blob), download: name });
	document.body.append(a);
	a.click();
	setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// The canvases of one figure side by side on a white background (a small-multiples figure is
// several canvases). null when there is none.
function composite(canvases, title) {
	const cs = canvases.filter((c) => c.width > 0 && c.height > 0);
	if (!cs.length) return null;
	const cols = Math.min(2, cs.length), rows = Math.ceil(cs.length / cols);
	const w = Math.max(...cs.map((c) => c.width)), hgt = Math.max(...cs.map((c) => c.height));
	const out = document.createElement('canvas');
	out.width = w * cols;
	out.height = hgt * rows;
	const ctx = out.getContext('2d');
	ctx.fillStyle = '#fff';
	ctx.fillRect(0, 0, out.width, out.height);
	cs.forEach((c, k) => ctx.drawImage(c, (k % cols) * w, Math.floor(k / cols) * hgt));
	out.title = title;
	return out;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]));

function exportHtml(rep, id, checkTable, figs) {
	const r = rep.recipe;
	const parts = [];
	parts.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>normlab sweep ${id} report</title>`,
		'<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#222}',
		'table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}',
		'.holds{color:#176b30;font-weight:600}.fails{color:#b3261e;font-weight:600}.not_yet{color:#7a5b00;font-weight:600}',
		'figure{margin:1.5rem 0}figure img{max-width:100%;border:1px solid #eee}.legend span{display:inline-block;margin-right:1rem}',
		'.sw{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}.note{color:#666;font-size:13px}</style></head><body>');
	parts.push(`<h1>Sweep ${id}${rep.name ? ` (${esc(rep.name)})` : ''}</h1>`);
	if (r) parts.push(`<p><b>Claim.</b> ${esc(r.claim)}</p><p><b>Paper.</b> ${esc(r.paper)}</p><p><b>Figure.</b> ${esc(r.figure)}</p>`);
	const s = rep.summary || {};
	parts.push(`<h2>Checks</h2><p>${s.holds || 0} hold, ${s.fails || 0} fail, ${s.not_yet || 0} not yet decided (${rep.n_cells} cells${rep.group_by && rep.group_by.length ? `, grouped by ${esc(rep.group_by.join(', '))}` : ''}).</p>`);
	parts.push('<table><thead><tr><th>#</th><th>status</th><th>check</th><th>measured</th><th>group value</th><th>compared with</th></tr></thead><tbody>');
	for (const tr of checkTable.tBodies[0].rows) {
		const st = tr.dataset.status;
		const cells = [...tr.cells].map((td) => esc(td.textContent));
		const what = [...tr.cells[2].children].map((d) => esc(d.textContent));
		parts.push(`<tr><td>${cells[0]}</td><td class="${esc(st)}">${cells[1]}</td><td>${what[0] || ''}<br><span class="note">${what[1] || ''}</span></td><td>${cells[3]}</td><td>${cells[4]}</td><td>${cells[5]}</td></tr>`);
	}
	parts.push('</tbody></table><h2>Figures</h2>');
	figs.forEach((fig, i) => {
		const c = composite(fig.canvases(), fig.title);
		parts.push(`<figure id="figure-${i + 1}"><figcaption><b>Figure ${i + 1}.</b> ${esc(fig.title)}</figcaption>`);
		if (c) parts.push(`<img alt="${esc(fig.title)}" src="${c.toDataURL('image/png')}">`);
		else parts.push('<p class="note">(nothing drawn)</p>');
		if (fig.legend.length) parts.push(`<p class="legend">${fig.legend.map((l) => `<span><i class="sw" style="background:${esc(l.color)}"></i>${esc(l.label)}</span>`).join('')}</p>`);
		if (fig.note.textContent) parts.push(`<p class="note">${esc(fig.note.textContent)}</p>`);
		parts.push('</figure>');
	});
	parts.push(`<p class="note">Exported from normlab's dashboard, GET /api/v1/sweeps/${id}/report, ${esc(new Date().toISOString())}.</p></body></html>`);
	return parts.join('\n');
}
