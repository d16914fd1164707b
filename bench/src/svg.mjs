/**
 * A hand-written SVG scatter plot of request latency over time (log scale),
 * one colour per series; requests that waited on a token request are ringed,
 * and ticks under the plot mark when each token used was issued.
 */

const xmlEscape = (text) =>
  String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c])

export const latencyPlot = ({ title, subtitle, series, from, to }) => {
  const width = 960
  const height = 520
  const m = { left: 70, right: 24, top: 70, bottom: 72 }
  const plotW = width - m.left - m.right
  const plotH = height - m.top - m.bottom
  const inRange = (p) => p.t >= from && p.t < to && p.latency > 0
  const latencies = series.flatMap((s) => s.points.filter(inRange).map((p) => p.latency))
  const lo = Math.floor(Math.log10(Math.max(Math.min(...latencies, 1), 0.01)))
  const hi = Math.max(Math.ceil(Math.log10(Math.max(...latencies, 10))), lo + 1)
  const x = (t) => m.left + ((t - from) / (to - from)) * plotW
  const y = (ms) => m.top + plotH - ((Math.log10(ms) - lo) / (hi - lo)) * plotH
  const r1 = (v) => Math.round(v * 10) / 10
  const parts = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12" role="img" aria-labelledby="title">`,
    `<title id="title">${xmlEscape(`${title}: ${subtitle.replaceAll("\n", "; ")}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="26" font-size="16" font-weight="600">${xmlEscape(title)}</text>`,
    ...subtitle
      .split("\n")
      .map((line, i) => `<text x="${m.left}" y="${44 + i * 14}" fill="#555">${xmlEscape(line)}</text>`)
  )
  // Grid: decades, and 2 and 5 within each.
  for (let d = lo; d <= hi; d++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** d
      if (Math.log10(v) > hi + 1e-9) continue
      const yy = r1(y(v))
      parts.push(
        `<line x1="${m.left}" x2="${width - m.right}" y1="${yy}" y2="${yy}" stroke="${k === 1 ? "#ccc" : "#eee"}"/>`,
        `<text x="${m.left - 6}" y="${yy + 4}" text-anchor="end" fill="#555">${v >= 1 ? v : v.toFixed(-d)} ms</text>`
      )
    }
  }
  const seconds = (to - from) / 1000
  const step = seconds > 20 ? 5 : seconds > 8 ? 2 : 1
  for (let s = 0; s <= seconds + 1e-9; s += step) {
    const xx = r1(x(from + s * 1000))
    parts.push(
      `<line x1="${xx}" x2="${xx}" y1="${m.top}" y2="${m.top + plotH}" stroke="#eee"/>`,
      `<text x="${xx}" y="${m.top + plotH + 16}" text-anchor="middle" fill="#555">${s} s</text>`
    )
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    `<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle">time since the end of the warm-up</text>`,
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">latency (log scale)</text>`
  )
  // Series are drawn last-first, so the first (ours) is on top.
  for (const s of [...series].reverse()) {
    const dots = []
    const rings = []
    for (const p of s.points) {
      if (!inRange(p)) continue
      const cx = r1(x(p.t))
      const cy = r1(y(p.latency))
      dots.push(`<circle cx="${cx}" cy="${cy}" r="1.6"/>`)
      if (p.waited) rings.push(`<circle cx="${cx}" cy="${cy}" r="4.5"/>`)
    }
    parts.push(
      `<g fill="${s.color}" fill-opacity="0.45">${dots.join("")}</g>`,
      `<g fill="none" stroke="${s.color}" stroke-width="1.2">${rings.join("")}</g>`
    )
  }
  // Token issue times (distinct `issued` values), one row of ticks per series under the plot.
  series.forEach((s, i) => {
    const issued = new Set(
      s.points.map((p) => p.issued).filter((t) => t !== undefined && t >= from && t < to)
    )
    const y0 = m.top + plotH + 24 + i * 7
    const ticks = [...issued].map((t) => `M${r1(x(t))} ${y0}v6`).join("")
    parts.push(`<path d="${ticks}" stroke="${s.color}" stroke-width="1.2"/>`)
  })
  series.forEach((s, i) => {
    const lx = width - m.right - 400
    const ly = m.top + 18 + i * 18
    const waited = s.points.filter((p) => inRange(p) && p.waited).length
    const tokens = new Set(
      s.points.map((p) => p.issued).filter((t) => t !== undefined && t >= from && t < to)
    ).size
    parts.push(
      `<rect x="${lx - 8}" y="${ly - 12}" width="392" height="18" fill="#fff" fill-opacity="0.85"/>`,
      `<circle cx="${lx}" cy="${ly - 4}" r="4" fill="${s.color}"/>`,
      `<text x="${lx + 10}" y="${ly}">${xmlEscape(s.name)} (${waited} waited, ${tokens} tokens)</text>`
    )
  })
  parts.push("</svg>")
  return `${parts.join("\n")}\n`
}
