/*  Small DOM and formatting helpers shared by the views. */

export const $ = (selector, root = document) => root.querySelector(selector);

//  el('li', {class: 'x', onclick: fn}, child, 'text', ...)
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

export function formatDate(text) {
  if (!text) return '';
  const when = new Date(text);
  if (Number.isNaN(when.getTime())) return text;
  return when.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

//  A camera's date as it was written: "2019-07-01T12:00:00+02:00" reads
//  "1 Jul 2019, 12:00 (UTC+02:00)", the time where the photo was taken.
export function formatTaken(text) {
  if (!text) return '';
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!m) return text;
  const local = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]));
  const day = local.toLocaleDateString(undefined, { timeZone: 'UTC', dateStyle: 'medium' });
  const zone = m[6] ? ` (UTC${m[6] === 'Z' ? '' : m[6]})` : '';
  return `${day}, ${m[4]}:${m[5]}${zone}`;
}

//  Run at most `limit` async jobs at once, in the order they were asked.
export function limiter(limit) {
  let running = 0;
  const waiting = [];
  const next = () => {
    if (running >= limit || waiting.length === 0) return;
    running++;
    const { job, resolve, reject } = waiting.shift();
    job().then(resolve, reject).finally(() => {
      running--;
      next();
    });
  };
  return (job) => new Promise((resolve, reject) => {
    waiting.push({ job, resolve, reject });
    next();
  });
}
