/** Number formatting shared by the page and the Node side. */

const SI = ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z'];

/** 1234567 → "1.23 M" (three significant digits). */
export function fmtSI(v: number, unit = ''): string {
  if (v === 0) return `0 ${unit}`.trim();
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1000 && i < SI.length - 1) {
    x /= 1000;
    i++;
  }
  return `${Number(x.toPrecision(3))} ${SI[i]}${unit}`.trim();
}

export function fmtSeconds(s: number): string {
  if (s === 0) return '0 s';
  const a = Math.abs(s);
  if (a >= 1) return `${Number(s.toPrecision(3))} s`;
  if (a >= 1e-3) return `${Number((s * 1e3).toPrecision(3))} ms`;
  if (a >= 1e-6) return `${Number((s * 1e6).toPrecision(3))} µs`;
  return `${Number((s * 1e9).toPrecision(3))} ns`;
}

export function fmtMetric(v: number | null | undefined, unit: 'count' | 'bytes' | 'seconds' | 'ratio'): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  switch (unit) {
    case 'count':
      return fmtSI(v);
    case 'bytes':
      return fmtSI(v, 'B');
    case 'seconds':
      return fmtSeconds(v);
    case 'ratio':
      return String(Number(v.toPrecision(3)));
  }
}

/** The exact integer with thousands separators (for the side panel). */
export function fmtExact(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
}
