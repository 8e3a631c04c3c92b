"use strict";
(async () => {
  const out = document.getElementById("health");
  try {
    const r = await fetch("/readyz", { headers: { accept: "application/json" } });
    out.textContent = r.ok ? "ready" : "not ready (" + r.status + ")";
    out.className = r.ok ? "ok" : "bad";
  } catch (e) {
    out.textContent = "unreachable";
    out.className = "bad";
  }
})();
