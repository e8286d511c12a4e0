"""Checks run in the browser on each page: every form field has a label, text has enough
contrast (WCAG 2.1 AA: 4.5:1, 3:1 for large text), images have text, one h1 per page."""

from __future__ import annotations

from selenium.webdriver.remote.webdriver import WebDriver

__all__ = ["accessibility_problems"]

# Computed in the page: colours as rendered, backgrounds found by walking up to an opaque one.
_SCRIPT = """
function rgb(text) {
  var m = text.match(/rgba?\\(([^)]+)\\)/);
  if (!m) return null;
  var p = m[1].split(',').map(function (x) { return parseFloat(x); });
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
}
function luminance(c) {
  function ch(v) {
    v = v / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }
  return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
}
function background(el) {
  for (var node = el; node && node.nodeType === 1; node = node.parentElement) {
    var c = rgb(getComputedStyle(node).backgroundColor);
    if (c && c.a > 0.5) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
}
var problems = [];
document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach(function (f) {
  if (!(f.labels && f.labels.length) && !f.getAttribute('aria-label')) {
    problems.push('no label: ' + (f.name || f.id || f.outerHTML.slice(0, 60)));
  }
});
var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
var seen = new Set();
while (walker.nextNode()) {
  var text = walker.currentNode;
  var el = text.parentElement;
  if (!text.textContent.trim() || seen.has(el) || !el.getClientRects().length) continue;
  if (el.closest('svg, .visually-hidden, .skip')) continue;
  seen.add(el);
  var style = getComputedStyle(el);
  if (style.visibility === 'hidden') continue;
  var fg = rgb(style.color), bg = background(el);
  var l1 = luminance(fg), l2 = luminance(bg);
  var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
  var needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
  if (ratio < needed) {
    var sample = text.textContent.trim().slice(0, 40);
    problems.push('contrast ' + ratio.toFixed(2) + ' < ' + needed + ': ' + sample);
  }
}
document.querySelectorAll('img:not([alt]), svg[role=img]:not([aria-labelledby]):not([aria-label])')
  .forEach(function (img) { problems.push('image without text: ' + img.outerHTML.slice(0, 60)); });
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
if (!document.documentElement.lang) problems.push('no lang attribute');
return problems;
"""


def accessibility_problems(driver: WebDriver) -> list[str]:
    problems: list[str] = driver.execute_script(_SCRIPT)
    return problems
