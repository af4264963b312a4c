"""One self-contained HTML page to browse an attention report's layers and heads.

`write_html(out_dir)` reads what `report.write_report` wrote in `out_dir`
(attention.json, weights.npz: {layer: weights_NTS}) and writes out_dir/attention.html:
one file, no server, no network (inline JS/CSS, the data embedded as JSON).

Weights are quantized per query row to uint8: q = round(255 * w / max_s w), stored
base64, so a shown weight is within max_row / 510 of the true one (the test's bound).
Size: one byte per weight before base64 (x 4/3), so 12 layers x 12 heads x 512 x 512
is ~50 MB; `max_cells` (default 64 M weights) refuses larger inputs with a ValueError:
filter with `layers=` / `heads=`. Cross-attention layers read their key labels from a
per-layer `key_tokens` entry of attention.json when present, else `tokens`.

Test hooks: window.attnViewer.current() -> {layer, head, weights} (head "mean" for
the mean over heads), window.attnViewer.select(layer, head); the heatmap canvas carries
data-layer / data-head, each stats-table row is a <tr data-layer data-head>, and
the current layer's head buttons are <button data-layer data-head> in #heads (a click on
a row or a button selects that head).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from attn_jax.interp.report import natural_key

MAX_CELLS = 64 * 2**20


def quantize_rows(w_NTS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 per-row codes and the row scales: w ~= q / 255 * scale_NT."""
    w = np.asarray(w_NTS, np.float32)
    scale_NT = w.max(axis=-1)
    safe = np.where(scale_NT > 0, scale_NT, 1.0)
    q = np.clip(np.rint(w / safe[..., None] * 255), 0, 255).astype(np.uint8)
    return q, scale_NT.astype(np.float32)


def _layer_tokens(record: dict, layer: str) -> tuple[list, list]:
    """(query labels, key labels): a per-layer entry (record["layer_info"][layer] or
    record["key_tokens"][layer]) when present, else the shared `tokens`."""
    info = (record.get("layer_info") or {}).get(layer, {})
    queries = info.get("tokens") or record.get("tokens", [])
    keys = info.get("key_tokens")
    if keys is None and isinstance(record.get("key_tokens"), dict):
        keys = record["key_tokens"].get(layer)
    return list(queries), list(keys or queries)


def _layer_kind(record: dict, layer: str) -> str:
    """ "self" or "cross": the report's layer_info entry, else read from the layer's name."""
    info = (record.get("layer_info") or {}).get(layer.removesuffix(".weights"), {})
    return info.get("kind") or ("cross" if "cross" in layer else "self")


def write_html(
    out_dir: str | Path,
    *,
    layers: Sequence[str] | None = None,
    heads: Sequence[int] | None = None,
    max_cells: int = MAX_CELLS,
) -> Path:
    """Writes out_dir/attention.html from the report in out_dir; returns its path.

    Args:
      layers: layer keys to include (default all in weights.npz).
      heads: head indices (positions in each layer's N axis) to include (default all).
      max_cells: the most weights embedded (ValueError beyond: filter layers/heads).
    """
    out_dir = Path(out_dir)
    record = json.loads((out_dir / "attention.json").read_text())
    npz = np.load(out_dir / "weights.npz")
    keys = sorted(npz.files, key=natural_key)
    if layers is not None:
        missing = [k for k in layers if k not in keys]
        if missing:
            raise ValueError(f"layers={missing} not in the report; valid: {keys}.")
        keys = [k for k in keys if k in layers]
    head_rows = record.get("heads", [])
    data, total = [], 0
    for key in keys:
        w = np.asarray(npz[key], np.float32)
        n = w.shape[0]
        idx = list(range(n)) if heads is None else [int(h) for h in heads]
        bad = [h for h in idx if not 0 <= h < n]
        if bad:
            raise ValueError(f"heads={bad} out of range for {key} with {n} heads.")
        w = w[idx]
        total += w.size + w.shape[1] * w.shape[2]
        if total > max_cells:
            raise ValueError(
                f"{total} weights exceed max_cells={max_cells}; pass fewer layers= / heads=."
            )
        q, scale = quantize_rows(w)
        mq, mscale = quantize_rows(w.mean(0, keepdims=True))
        queries, key_toks = _layer_tokens(record, key)
        stats = [r for r in head_rows if r.get("layer") in (key, key.removesuffix(".weights"))]
        data.append(
            {
                "name": key,
                "kind": _layer_kind(record, key),
                "heads": idx,
                "T": int(w.shape[1]),
                "S": int(w.shape[2]),
                "q": base64.b64encode(q.tobytes()).decode(),
                "scale": [round(float(s), 6) for s in scale.reshape(-1)],
                "mean_q": base64.b64encode(mq.tobytes()).decode(),
                "mean_scale": [round(float(s), 6) for s in mscale.reshape(-1)],
                "queries": [str(t) for t in queries],
                "keys": [str(t) for t in key_toks],
                "stats": [
                    {
                        "head": r["head"],
                        "type": r.get("type"),
                        **{k: r.get("stats", {}).get(k) for k in ("entropy", "distance")},
                    }
                    for r in stats
                    if heads is None or r["head"] in idx
                ],
            }
        )
    blob = json.dumps({"title": record.get("text", ""), "layers": data})
    # "<" as \u003c (same JSON): no "</script>" or "<!--" in the data can end the script.
    blob = blob.replace("<", "\\u003c")
    html = _PAGE.replace("/*DATA*/", blob)
    path = out_dir / "attention.html"
    path.write_text(html)
    return path


_PAGE = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Attention viewer</title>
<style>
body{font-family:sans-serif;margin:12px;display:flex;gap:16px}
#side{min-width:260px} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px} tr.sel{background:#ffe9a8}
tr[data-head]{cursor:pointer} #heads button.sel{background:#ffe9a8}
#heads{margin:4px 0} #cell-readout{font-family:monospace;height:1.4em}
</style></head><body>
<div id="side">
<div>kind <select id="kind"></select></div>
<div>layer <select id="layer"></select></div>
<div>head <select id="head"></select></div>
<div id="heads"></div>
<div id="cell-readout"></div>
<table id="stats"><thead><tr><th>layer</th><th>head</th><th>type</th>
<th>entropy</th><th>distance</th></tr></thead><tbody></tbody></table>
</div>
<div><canvas id="heatmap"></canvas></div>
<script>
const DATA = /*DATA*/;
function decode(b64, scale, S){const s=atob(b64);const out=new Float32Array(s.length);
 for(let i=0;i<s.length;i++){out[i]=s.charCodeAt(i)/255*scale[Math.floor(i/S)];}return out;}
const state={layer:0,head:0,weights:null};
const el=id=>document.getElementById(id);
function layersOfKind(k){return DATA.layers.map((l,i)=>[l,i]).filter(p=>p[0].kind===k);}
function fillLayers(){const k=el("kind").value;el("layer").innerHTML="";
 for(const [l,i] of layersOfKind(k)){const o=document.createElement("option");o.value=i;
 o.textContent=l.name;el("layer").appendChild(o);}}
function fillHeads(){const L=DATA.layers[state.layer];el("head").innerHTML="";
 el("heads").innerHTML="";
 for(const h of L.heads.concat(["mean"])){const o=document.createElement("option");o.value=h;
 o.textContent=h==="mean"?"mean over heads":"head "+h;el("head").appendChild(o);
 const b=document.createElement("button");b.dataset.layer=L.name;b.dataset.head=h;
 b.textContent=h==="mean"?"mean":String(h);b.addEventListener("click",()=>select(state.layer,h));
 el("heads").appendChild(b);}}
function weightsOf(li,h){const L=DATA.layers[li];const TS=L.T*L.S;
 if(h==="mean")return decode(L.mean_q,L.mean_scale,L.S);
 const p=L.heads.indexOf(Number(h));const all=decode(L.q,L.scale,L.S);
 return all.slice(p*TS,(p+1)*TS);}
function draw(){const L=DATA.layers[state.layer];const w=state.weights;const c=el("heatmap");
 const cell=Math.max(2,Math.min(24,Math.floor(640/Math.max(L.T,L.S))));const pad=90;
 c.width=pad+cell*L.S;c.height=pad+cell*L.T;const g=c.getContext("2d");
 g.fillStyle="#fff";g.fillRect(0,0,c.width,c.height);
 for(let t=0;t<L.T;t++)for(let s=0;s<L.S;s++){const v=w[t*L.S+s];
  const x=Math.round(255*(1-Math.min(1,v)));g.fillStyle=`rgb(${x},${x},255)`;
  g.fillRect(pad+s*cell,pad+t*cell,cell,cell);}
 if(cell>=8){g.fillStyle="#000";g.font=Math.min(12,cell)+"px sans-serif";
  for(let t=0;t<L.T;t++)g.fillText(String(L.queries[t]).slice(0,10),2,pad+t*cell+cell-1);
  for(let s=0;s<L.S;s++){g.save();g.translate(pad+s*cell+cell-1,pad-2);g.rotate(-Math.PI/2);
   g.fillText(String(L.keys[s]).slice(0,10),0,0);g.restore();}}
 c.dataset.layer=L.name;c.dataset.head=state.head;c.dataset.cell=cell;c.dataset.pad=pad;
 document.querySelectorAll("#stats tr[data-head],#heads button").forEach(r=>r.classList.toggle("sel",
  r.dataset.layer===L.name&&r.dataset.head===String(state.head)));}
function select(li,h){state.layer=Number(li);fillHeads();state.head=h==="mean"?"mean":Number(h);
 el("kind").value=DATA.layers[state.layer].kind;fillLayers();el("layer").value=state.layer;
 el("head").value=String(state.head);state.weights=weightsOf(state.layer,state.head);draw();}
function fillStats(){const tb=document.querySelector("#stats tbody");
 DATA.layers.forEach((L,li)=>{for(const r of L.stats){const tr=document.createElement("tr");
  tr.dataset.layer=L.name;tr.dataset.head=r.head;
  const f=v=>v===null||v===undefined?"":Number(v).toFixed(3);
  tr.innerHTML=`<td>${L.name}</td><td>${r.head}</td><td>${r.type||""}</td>`+
   `<td>${f(r.entropy)}</td><td>${f(r.distance)}</td>`;
  tr.addEventListener("click",()=>select(li,r.head));tb.appendChild(tr);}});}
const kinds=[...new Set(DATA.layers.map(l=>l.kind))];
for(const k of kinds){const o=document.createElement("option");o.value=k;o.textContent=k;
 el("kind").appendChild(o);}
el("kind").addEventListener("change",()=>select(layersOfKind(el("kind").value)[0][1],
 DATA.layers[layersOfKind(el("kind").value)[0][1]].heads[0]));
el("layer").addEventListener("change",()=>select(el("layer").value,
 DATA.layers[Number(el("layer").value)].heads[0]));
el("head").addEventListener("change",()=>select(state.layer,el("head").value));
el("heatmap").addEventListener("mousemove",e=>{const c=el("heatmap");const L=DATA.layers[state.layer];
 const cell=Number(c.dataset.cell),pad=Number(c.dataset.pad);const r=c.getBoundingClientRect();
 const s=Math.floor((e.clientX-r.left-pad)/cell),t=Math.floor((e.clientY-r.top-pad)/cell);
 if(t<0||s<0||t>=L.T||s>=L.S){el("cell-readout").textContent="";return;}
 el("cell-readout").textContent=`query ${L.queries[t]} -> key ${L.keys[s]}: `+
  state.weights[t*L.S+s].toFixed(3);});
fillStats();
window.attnViewer={current:()=>({layer:DATA.layers[state.layer].name,head:state.head,
 weights:Array.from(state.weights)}),select:select,data:DATA};
if(DATA.layers.length)select(0,DATA.layers[0].heads[0]);
</script></body></html>
"""
