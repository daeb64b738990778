// Drives moh-serve's page in headless Chromium over the DevTools protocol (Node 20: run with
// --experimental-websocket; no npm packages): opens the page, puts a picture into its file input (the drop zone's
// input), waits for the top-5 bars, picks a class, clicks Generate, waits for the finished image (the live preview
// and progress run on the way) and writes a screenshot. Called by scripts/serve-browser-check.sh.
// Usage: node --experimental-websocket serve-browser-check.mjs BROWSER_WS_URL PAGE_URL PICTURE CLASS STEPS OUT.png
import { writeFileSync } from "node:fs";

const [wsUrl, pageUrl, picture, cls, steps, outPng] = process.argv.slice(2);
const ws = new WebSocket(wsUrl);
let nextId = 1;
const pending = new Map();
ws.onmessage = (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id && pending.has(m.id)) {
    const { resolve, reject } = pending.get(m.id);
    pending.delete(m.id);
    m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result);
  }
};
const send = (method, params = {}, sessionId) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (why) => { console.error("browser check FAILED: " + why); process.exit(1); };

await new Promise((r, j) => { ws.onopen = r; ws.onerror = () => j(new Error("cannot connect to " + wsUrl)); });
const { targetId } = await send("Target.createTarget", { url: "about:blank" });
const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
const page = (method, params) => send(method, params, sessionId);
const evaluate = async (expr) => (await page("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true })).result.value;
async function until(expr, seconds, what) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const v = await evaluate(expr);
    if (v) return v;
    await sleep(100);
  }
  fail(what + " (waited " + seconds + " s): " + (await evaluate("document.body.innerText")));
}

await page("Page.enable");
await page("Runtime.enable");
await page("Emulation.setDeviceMetricsOverride", { width: 1060, height: 560, deviceScaleFactor: 1, mobile: false });
await page("Page.navigate", { url: pageUrl });
await until("document.getElementById('cls') && document.getElementById('cls').options.length > 0", 30, "the page did not load the class list");

// "Drop" the picture: the drop zone's file input gets the file, as when the user picks it.
const { root } = await page("DOM.getDocument", { depth: -1 });
const { nodeId } = await page("DOM.querySelector", { nodeId: root.nodeId, selector: "#file" });
await page("DOM.setFileInputFiles", { nodeId, files: [picture] });
const top1 = await until("document.body.dataset.classified", 60, "no classification appeared");
const bars = await evaluate("document.querySelectorAll('#top .row').length");
if (bars !== 5) fail("expected 5 bars, got " + bars);

await evaluate(`(() => { const s = document.getElementById('cls'); s.value = ${JSON.stringify(cls)};
  document.getElementById('steps').value = ${Number(steps)}; document.getElementById('seed').value = 3;
  document.getElementById('gen').click(); return true; })()`);
// Progress and the live preview while it runs.
const sawPreview = await until("document.getElementById('preview').src.startsWith('blob:') || document.body.dataset.generated", 120, "no preview appeared");
const generated = await until("document.body.dataset.generated", 300, "the generated image did not appear");
const state = await evaluate("document.getElementById('state').textContent");
await sleep(200);
const shot = await page("Page.captureScreenshot", { format: "png" });
writeFileSync(outPng, Buffer.from(shot.data, "base64"));
console.log(JSON.stringify({ top1, bars, preview: !!sawPreview, generated: Number(generated), state, screenshot: outPng }));
await send("Browser.close").catch(() => {});
process.exit(0);
