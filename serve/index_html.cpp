// The page of GET /: plain HTML + JS in one C++ raw string (no build step, no external files). Drop a picture ->
// POST /v1/classify -> top-5 with bars; pick a class -> POST /v1/generate, then poll GET /v1/jobs/{id} (long poll)
// and show GET /v1/jobs/{id}/preview.png live with the progress, and the finished images. Opened as /?token=T it
// sends "Authorization: Bearer T" on every call (servers started with --token).
#include "serve/index_html.h"

namespace moh::serve {

const char* const kIndexHtml = R"MOHPAGE(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moh-serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:980px;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:.2em 0} h2{font-size:1.1em;margin:.2em 0 .6em}
.cols{display:flex;gap:1.5em;flex-wrap:wrap} .card{flex:1;min-width:380px;background:#fff;border:1px solid #ddd;border-radius:8px;padding:1em}
#drop{border:2px dashed #999;border-radius:8px;padding:1.2em;text-align:center;color:#555;cursor:pointer}
#drop.over{background:#eef5ff;border-color:#36c}
.row{display:flex;align-items:center;gap:.5em;margin:.25em 0;font-size:.92em}
.row .name{width:9em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar{flex:1;background:#eee;height:14px;border-radius:3px}.bar>div{background:#36c;height:100%;border-radius:3px}
img.pix{image-rendering:pixelated;width:112px;height:112px;border:1px solid #ccc;background:#000}
#images img{margin:2px}
label{font-size:.9em;margin-right:.6em} input[type=number]{width:5em}
#progress{width:100%;height:12px} .err{color:#b00;font-size:.9em;white-space:pre-wrap} .muted{color:#777;font-size:.85em}
</style></head><body>
<h1>moh-serve</h1><div class="muted" id="models">loading models...</div>
<div class="cols">
<div class="card" id="classify-card"><h2>Classify</h2>
<div id="drop">Drop a picture here, or click to choose one<input type="file" id="file" accept="image/*" hidden></div>
<div class="row" style="margin-top:.8em"><img class="pix" id="picked" alt=""><div id="top" style="flex:1"></div></div>
<div class="err" id="cerr"></div></div>
<div class="card" id="generate-card"><h2>Generate</h2>
<div><label>class <select id="cls"></select></label><label>seed <input type="number" id="seed" value="0" min="0"></label>
<label>steps <input type="number" id="steps" min="2" max="1000"></label><button id="gen">Generate</button>
<button id="cancel" disabled>Cancel</button></div>
<div style="margin:.6em 0"><progress id="progress" max="1" value="0"></progress><div class="muted" id="state">idle</div></div>
<div class="row"><div><div class="muted">live x&#8320; preview</div><img class="pix" id="preview" alt=""></div>
<div><div class="muted">result</div><div id="images"></div></div></div>
<div class="err" id="gerr"></div></div>
</div>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const hdr = token ? {Authorization: "Bearer " + token} : {};
const $ = id => document.getElementById(id);
async function api(path, opts = {}) {
  const r = await fetch(path, {...opts, headers: {...hdr, ...(opts.headers || {})}});
  if (!r.ok) { let m = r.status + ""; try { m = (await r.json()).error || m; } catch (e) {} throw new Error(m); }
  return r;
}
async function blobUrl(path) { return URL.createObjectURL(await (await api(path)).blob()); }

async function loadModels() {
  const m = await (await api("/v1/models")).json();
  const parts = [];
  if (m.classifier) parts.push("classifier " + m.classifier.model + " (" + m.classifier.device + ")");
  else $("classify-card").style.opacity = .4;
  if (m.generator) {
    parts.push("generator " + m.generator.model + " (" + m.generator.device + ")");
    m.generator.class_names.forEach((n, i) => { const o = document.createElement("option"); o.value = i; o.textContent = i + " " + n; $("cls").appendChild(o); });
    $("steps").value = m.generator.sampler_defaults.steps;
  } else $("generate-card").style.opacity = .4;
  $("models").textContent = parts.join(" · ");
}

async function classify(file) {
  $("cerr").textContent = ""; $("top").innerHTML = "classifying...";
  $("picked").src = URL.createObjectURL(file);
  try {
    const j = await (await api("/v1/classify?topk=5", {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}})).json();
    const r = j.results[0];
    $("top").innerHTML = "";
    for (const p of r.top) {
      const row = document.createElement("div"); row.className = "row";
      row.innerHTML = '<span class="name"></span><span class="bar"><div></div></span><span class="pct"></span>';
      row.querySelector(".name").textContent = p.label || ("class " + p.index);
      row.querySelector(".bar>div").style.width = (100 * p.probability).toFixed(1) + "%";
      row.querySelector(".pct").textContent = (100 * p.probability).toFixed(1) + "%";
      $("top").appendChild(row);
    }
    document.body.dataset.classified = r.top.length ? r.top[0].label || r.top[0].index : "";
  } catch (e) { $("top").innerHTML = ""; $("cerr").textContent = e.message; }
}
const drop = $("drop");
drop.onclick = () => $("file").click();
$("file").onchange = e => { if (e.target.files[0]) classify(e.target.files[0]); };
drop.ondragover = e => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = e => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]); };

let job = null;
async function generate() {
  $("gerr").textContent = ""; $("images").innerHTML = ""; $("preview").removeAttribute("src");
  $("gen").disabled = true; $("cancel").disabled = false; document.body.dataset.generated = "";
  try {
    const body = {class: Number($("cls").value), seed: Number($("seed").value), steps: Number($("steps").value)};
    job = (await (await api("/v1/generate", {method: "POST", body: JSON.stringify(body), headers: {"Content-Type": "application/json"}})).json()).id;
    let s, seen = -1;
    for (;;) {
      s = await (await api("/v1/jobs/" + job + "?wait_ms=1000&after=" + seen)).json();
      seen = s.steps_done;
      $("progress").value = s.progress;
      $("state").textContent = s.state + " · step " + s.steps_done + "/" + s.steps_total +
        (s.eta_seconds != null && s.state == "running" ? " · ETA " + s.eta_seconds.toFixed(1) + " s" : "");
      if (s.steps_done > 0 && s.state == "running") { try { $("preview").src = await blobUrl("/v1/jobs/" + job + "/preview.png"); } catch (e) {} }
      if (!["queued", "running"].includes(s.state)) break;
    }
    if (s.state == "done") {
      $("preview").src = await blobUrl("/v1/jobs/" + job + "/preview.png");
      for (const im of s.images) { const i = document.createElement("img"); i.className = "pix"; i.src = await blobUrl(im.url); i.title = im.file; $("images").appendChild(i); }
      document.body.dataset.generated = s.images.length;
    } else if (s.error) $("gerr").textContent = s.error;
  } catch (e) { $("gerr").textContent = e.message; }
  $("gen").disabled = false; $("cancel").disabled = true;
}
$("gen").onclick = generate;
$("cancel").onclick = () => { if (job) api("/v1/jobs/" + job, {method: "DELETE"}).catch(() => {}); };
loadModels().catch(e => { $("models").textContent = "cannot load /v1/models: " + e.message; });
</script></body></html>
)MOHPAGE";

}  // namespace moh::serve
