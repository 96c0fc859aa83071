"""The report page's fixed parts: its style sheet, its script (a filter box), the Content-Security-Policy that allows
exactly those two and ``data:`` images, and the HTML escaping every part of the page uses."""

from __future__ import annotations

import base64
import hashlib
import html

#: The style sheet, inline in the page.
STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;background:#f6f6f6;margin:0}
main{max-width:1500px;margin:0 auto;padding:16px 20px 40px}
h1{margin:0 0 4px;font-size:24px}h2{margin:28px 0 8px;font-size:19px;border-bottom:2px solid #ddd}
h3{margin:14px 0 6px;font-size:15px}
.sub{color:#555}.sub b{color:#222}
nav a{margin-right:14px}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend td:first-child{font-family:ui-monospace,monospace;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #0004;vertical-align:-1px;margin-right:4px}
.formula{font-family:ui-monospace,monospace;background:#fff;padding:2px 6px;border:1px solid #ddd}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{background:#fff;border:1px solid #ddd;padding:6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px;margin:8px 0}
.card{background:#fff;border:1px solid #ddd;border-left:5px solid #4a90d9;padding:8px;overflow-wrap:anywhere}
.card.dropped{border-left-color:#d9534f;background:#fff8f7}
.card figure{position:relative;display:inline-block;max-width:100%;margin:0 0 6px;line-height:0}
.card figure img{display:block;max-width:100%;height:auto}
.card figure svg{position:absolute;left:0;top:0;width:100%;height:100%}
.head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.badge{font-size:12px;font-weight:600;padding:1px 6px;border-radius:9px;color:#fff;background:#4a90d9}
.badge.dropped{background:#d9534f}
.score{font-weight:600;font-variant-numeric:tabular-nums}
.file{font-family:ui-monospace,monospace;font-size:12px;color:#444}
.groups{font-size:12px;color:#444}.groups span{margin-right:8px;white-space:nowrap}
ul.reasons{margin:4px 0;padding-left:18px;color:#8a1c12}
ol.objects{margin:4px 0;padding:0;list-style:none;font-size:12px}
.tag{display:inline-block;min-width:18px;padding:0 4px;margin-right:4px;border-radius:3px;color:#fff;
font-weight:600;text-align:center;background:#e53935}.tag.mild{background:#ff9800}
.note{color:#8a5300;font-size:12px}.none{color:#777}
#controls{margin:10px 0;display:flex;gap:10px;align-items:center}
#controls input{width:320px;padding:4px}
[hidden]{display:none!important}
"""

#: The filter box (the page is complete without it).
SCRIPT = """
(function(){
var box=document.getElementById('controls');box.hidden=false;
var q=document.getElementById('q'),show=document.getElementById('show'),count=document.getElementById('shown');
function apply(){
var text=q.value.toLowerCase(),mode=show.value,n=0;
document.querySelectorAll('[data-q]').forEach(function(e){
var ok=(!text||e.getAttribute('data-q').indexOf(text)>=0)&&(mode==='all'||e.getAttribute('data-status')===mode||
(mode==='flagged'&&e.getAttribute('data-flagged')==='1'));
e.hidden=!ok;if(ok){n++;}});
count.textContent=n+' shown';}
q.addEventListener('input',apply);show.addEventListener('change',apply);apply();
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


#: The page's Content-Security-Policy: no network, only the inline style sheet and script above.
CSP = (
    "default-src 'none'; img-src data:; "
    f"style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; base-uri 'none'; form-action 'none'"
)


def esc(value: object) -> str:
    """HTML-escape any value for text and attribute positions (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)
