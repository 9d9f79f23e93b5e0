// heatmap.js — one depth statistic as a layer × step heatmap on a <canvas>: one column per stored
// step of the matrix form (the view asks for at most as many steps as the plot has pixels), one
// row per layer, a viridis colour scale (linear or log10) with its legend underneath, and a
// readout of the cell under the pointer. One canvas for all layers: never a chart per layer.

import { h, widthOf, markChart, viridis, VIRIDIS_GRADIENT, fmt, watchWidth } from './charts.js';

const M = { l: 56, r: 12, t: 8, b: 36 };

// The plot area's width for a container: the most step columns worth asking for.
export function heatmapColumns(container) {
	return Math.max(16, Math.min(2000, widthOf(container, 600) - M.l - M.r));
}

export class Heatmap {
	// opts: {label (aria), height}
	constructor(container, opts) {
		this.el = container;
		this.o = { height: 260, ...opts };
		this.canvas = h('canvas', { class: 'nl-canvas', role: 'img', 'aria-label': this.o.label || 'heatmap of a depth statistic, layer by step' });
		this.legend = h('div', { class: 'nl-legend' });
		this.readout = h('p', { class: 'nl-readout', text: ' ' });
		container.append(this.canvas, this.legend, this.readout);
		this.m = null;
		this.log = false;
		this.width = 0;
		this.canvas.addEventListener('mousemove', (e) => this.hover(e));
		this.canvas.addEventListener('mouseleave', () => { this.readout.textContent = ' '; });
		this.unwatch = watchWidth(container, () => this.width, () => { if (this.m) this.draw(); });
	}

	// m: the DepthMatrix answer {name, steps, layers, values[step][layer]}.
	setData(m, { log } = {}) {
		this.m = m;
		if (log !== undefined) this.log = !!log;
		this.draw();
		markChart(this.el, m.layers || 0, (m.steps || []).length);
	}

	setLog(on) {
		this.log = !!on;
		if (this.m) this.draw();
	}

	tf(v) {
		if (v === null || v === undefined || !Number.isFinite(v)) return null;
		if (this.log) return v > 0 ? Math.log10(v) : null;
		return v;
	}

	draw() {
		const m = this.m, W = widthOf(this.el, 600), H = this.o.height, r = window.devicePixelRatio || 1;
		this.width = W;
		const cv = this.canvas;
		cv.width = Math.round(W * r);
		cv.height = Math.round(H * r);
		cv.style.width = `${W}px`;
		cv.style.height = `${H}px`;
		const ctx = cv.getContext('2d');
		ctx.setTransform(r, 0, 0, r, 0, 0);
		ctx.clearRect(0, 0, W, H);
		const steps = m.steps || [], L = m.layers || 0, S = steps.length;
		const pw = W - M.l - M.r, ph = H - M.t - M.b;
		this.geom = { pw, ph, S, L };
		ctx.font = '12px system-ui, sans-serif';
		ctx.fillStyle = '#444';
		if (!S || !L) {
			ctx.fillText('no data yet', M.l + 8, M.t + 20);
			this.legend.replaceChildren();
			return;
		}
		// colour range over the finite (and, on a log scale, positive) values
		let lo = Infinity, hi = -Infinity;
		for (const row of m.values) for (const v of row) {
			const t = this.tf(v);
			if (t === null) continue;
			if (t < lo) lo = t;
			if (t > hi) hi = t;
		}
		if (!(hi >= lo)) { lo = 0; hi = 1; }
		const span = hi - lo || 1;
		this.range = [lo, hi];
		// one pixel per cell in an offscreen image, scaled up without smoothing
		const img = new ImageData(S, L);
		for (let s = 0; s < S; s++) {
			const row = m.values[s] || [];
			for (let l = 0; l < L; l++) {
				const t = this.tf(row[l]);
				const k = ((L - 1 - l) * S + s) * 4;   // layer 1 at the bottom
				if (t === null) { img.data[k] = 200; img.data[k + 1] = 200; img.data[k + 2] = 200; img.data[k + 3] = 255; continue; }
				const [cr, cg, cb] = viridis((t - lo) / span);
				img.data[k] = cr; img.data[k + 1] = cg; img.data[k + 2] = cb; img.data[k + 3] = 255;
			}
		}
		const off = document.createElement('canvas');
		off.width = S;
		off.height = L;
		off.getContext('2d').putImageData(img, 0, 0);
		ctx.imageSmoothingEnabled = false;
		ctx.drawImage(off, M.l, M.t, pw, ph);
		ctx.strokeStyle = '#888';
		ctx.strokeRect(M.l + 0.5, M.t + 0.5, pw, ph);
		// y: layers
		ctx.textAlign = 'right';
		ctx.textBaseline = 'middle';
		const every = Math.max(1, Math.ceil(L / Math.max(1, Math.floor(ph / 16))));
		for (let l = 0; l < L; l += every) ctx.fillText(String(l + 1), M.l - 6, M.t + ph - (l + 0.5) * (ph / L));
		// x: steps at a few columns
		ctx.textAlign = 'center';
		ctx.textBaseline = 'top';
		const nt = Math.min(S, Math.max(2, Math.floor(pw / 90)));
		let lastX = -Infinity;
		for (let k = 0; k < nt; k++) {
			const s = nt > 1 ? Math.round((k * (S - 1)) / (nt - 1)) : 0;
			const x = M.l + (s + 0.5) * (pw / S);
			if (x - lastX < 60) continue;   // columns are not evenly spaced in labels: keep them apart
			lastX = x;
			ctx.fillText(String(steps[s]), x, M.t + ph + 4);
		}
		ctx.textBaseline = 'alphabetic';
		ctx.fillText('step', M.l + pw / 2, H - 4);
		ctx.save();
		ctx.translate(14, M.t + ph / 2);
		ctx.rotate(-Math.PI / 2);
		ctx.textBaseline = 'middle';
		ctx.fillText('layer', 0, 0);
		ctx.restore();
		this.drawLegend(lo, hi);
	}

	drawLegend(lo, hi) {
		const val = (t) => (this.log ? 10 ** t : t);
		const name = this.m.name || 'value';
		this.legend.replaceChildren(
			h('span', { class: 'nl-legend-title', text: `${name}${this.log ? ' (log scale)' : ''}` }),
			h('span', { class: 'nl-legend-lo', text: fmt(val(lo)) }),
			h('span', { class: 'nl-legend-bar', style: `background: ${VIRIDIS_GRADIENT}`, 'aria-hidden': 'true' }),
			h('span', { class: 'nl-legend-hi', text: fmt(val(hi)) }),
			h('span', { class: 'nl-legend-na', text: 'grey: no finite value' }),
		);
	}

	hover(e) {
		if (!this.m || !this.geom || !this.geom.S) return;
		const rect = this.canvas.getBoundingClientRect();
		const x = e.clientX - rect.left - M.l, y = e.clientY - rect.top - M.t;
		const { pw, ph, S, L } = this.geom;
		if (x < 0 || y < 0 || x >= pw || y >= ph) { this.readout.textContent = ' '; return; }
		const s = Math.min(S - 1, Math.floor((x / pw) * S));
		const l = Math.min(L - 1, L - 1 - Math.floor((y / ph) * L));
		const v = (this.m.values[s] || [])[l];
		this.readout.textContent = `step ${this.m.steps[s]}, layer ${l + 1}: ${fmt(v)}`;
	}

	destroy() {
		this.unwatch();
	}
}
