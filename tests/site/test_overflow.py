"""At a 1280 px wide window, nothing on a chapter page is wider than the text column: no code
block (``pre``: code cells and their printed output) scrolls sideways and no display equation
(MathJax output) is wider than the column. Folded blocks (hidden solutions) are opened first,
so what a reader sees after "click to show" is checked too.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("AECORE_SITE") or ROOT / "_build" / "html").resolve()  # as conftest
SLACK = 1  # px: sub-pixel rounding of layout widths

# Returns one record per element wider than the space it has. For a ``pre``: its content width
# (scrollWidth) against its visible width. For a display equation: the typeset width against the
# text column (the article's content box) and against its own box (e.g. inside a list).
MEASURE = """slack => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const cs = getComputedStyle(article);
  const column = article.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const where = el => {
    let h = null, node = el;
    while (node && node !== article && !h) {
      let sib = node.previousElementSibling;
      while (sib && !h) {
        if (/^H[1-6]$/.test(sib.tagName)) h = sib;
        else if (sib.querySelector) {
          const hs = sib.querySelectorAll('h1, h2, h3, h4, h5, h6');
          if (hs.length) h = hs[hs.length - 1];
        }
        sib = sib.previousElementSibling;
      }
      node = node.parentElement;
    }
    return h ? 'section "' + h.textContent.replace(/[#¶]/g, '').trim() + '"' : 'top of page';
  };
  const out = [];
  article.querySelectorAll('pre').forEach(pre => {
    if (pre.scrollWidth > pre.clientWidth + slack) {
      const lines = pre.textContent.split('\\n');
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
      const n = lines.filter(l => l.length > 88).length;
      const kind = pre.closest('.cell_output') ? 'output' : (pre.closest('.cell_input') ? 'code' : 'pre');
      out.push({element: kind + ' block', where: where(pre), width: pre.scrollWidth,
                available: pre.clientWidth,
                detail: (n ? n + ' lines over 88 characters; ' : '') + 'longest: '
                        + JSON.stringify(longest.slice(0, 70))});
    }
  });
  const items = window.MathJax && MathJax.startup && MathJax.startup.document
    ? Array.from(MathJax.startup.document.math) : [];
  article.querySelectorAll('mjx-container[display="true"]').forEach(m => {
    const inner = m.querySelector('mjx-math') || m;
    const width = inner.getBoundingClientRect().width;
    const box = m.clientWidth || column;
    const available = Math.min(column, box);
    if (width > available + slack || m.scrollWidth > m.clientWidth + slack) {
      const item = items.find(i => i.typesetRoot === m);
      const tex = item ? item.math.replace(/\\s+/g, ' ').trim() : '';
      out.push({element: 'display equation', where: where(m), width: Math.round(width),
                available: Math.round(available), detail: JSON.stringify(tex.slice(0, 70))});
    }
  });
  return {column: Math.round(column), overflows: out};
}"""


def _chapter_ids():
    return [p.name for p in sorted((SITE / "chapters").glob("*.html"))] or ["(the site is not built)"]


@pytest.mark.parametrize("name", _chapter_ids())
def test_nothing_wider_than_the_text_column(site, open_offline, name):
    p = open_offline(site / "chapters" / name)
    p.page.set_viewport_size({"width": 1280, "height": 1000})
    p.settle()
    p.page.wait_for_function(
        "() => [...document.querySelectorAll('.math')].every(e => e.querySelector('mjx-container'))",
        timeout=20_000)
    result = p.page.evaluate(MEASURE, SLACK)
    lines = [f"  {o['element']} in {o['where']}: {o['width']} px wide, {o['available']} px "
             f"available; {o['detail']}" for o in result["overflows"]]
    assert not lines, (f"chapters/{name} at 1280 px (text column {result['column']} px): "
                       f"{len(lines)} elements overflow\n" + "\n".join(lines))
