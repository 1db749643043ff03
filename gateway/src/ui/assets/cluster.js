// The cluster page: fetches /ui/cluster.json every 2 seconds and redraws
// the tables; a digest that differs from another node's at the same
// index is highlighted (the replicas would have diverged).
"use strict";

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function drawNodes(nodes) {
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren();
  const byIndex = {};
  for (const n of nodes) {
    if (n.status) (byIndex[n.status.digest_index] ||= new Set()).add(n.status.digest);
  }
  for (const n of nodes) {
    const row = body.insertRow();
    const s = n.status;
    if (!s) {
      cell(row, "?");
      cell(row, n.addr);
      cell(row, "down: " + n.error, "down");
      row.insertCell().colSpan = 5;
      continue;
    }
    row.dataset.role = s.role;
    cell(row, s.id);
    cell(row, n.addr);
    cell(row, s.role);
    cell(row, s.term, "num");
    cell(row, s.commit_index, "num");
    cell(row, s.applied_index, "num");
    const diverged = byIndex[s.digest_index].size > 1;
    cell(row, s.digest.slice(0, 16) + " (" + s.digest_index + ")", diverged ? "bad" : "");
    cell(row, s.version);
  }
}

function drawChunks(view) {
  const summary = document.getElementById("chunks-summary");
  const body = document.querySelector("#servers tbody");
  body.replaceChildren();
  if (!view.chunks) {
    summary.textContent = "chunk status unavailable: " + view.chunks_error;
    summary.className = "error";
    return;
  }
  const c = view.chunks;
  summary.className = c.lost > 0 ? "error" : "";
  summary.textContent = "replication factor " + c.replication_factor + " · " + c.under_replicated +
    " under-replicated · " + c.lost + " lost · " + c.pending + " pending reports";
  c.servers.forEach((s, i) => {
    const row = body.insertRow();
    row.dataset.up = s.up;
    cell(row, c.server_ids[i]);
    cell(row, s.addr);
    cell(row, s.up ? "up" : "down", s.up ? "up" : "down");
    cell(row, s.chunks, "num");
    cell(row, bytes(s.used_bytes), "num");
    cell(row, bytes(s.free_bytes), "num");
    cell(row, (s.last_report_ms / 1000).toFixed(1) + " s ago", "num");
  });
}

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const answer = await fetch("/ui/cluster.json", { cache: "no-store" });
    const view = await answer.json();
    drawNodes(view.nodes);
    drawChunks(view);
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    updated.className = "";
  } catch (e) {
    updated.textContent = "cannot reach the gateway: " + e;
    updated.className = "error";
  }
}

refresh();
setInterval(refresh, 2000);
