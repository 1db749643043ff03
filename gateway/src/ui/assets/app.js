// The file browser on a directory listing: upload (picker or drag and
// drop, with a progress bar), new directory, delete with confirmation,
// rename through WebDAV MOVE. Each action reloads the listing after.
"use strict";

const here = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const status = document.getElementById("status");
const progress = document.getElementById("progress");

function say(text, bad) {
  status.textContent = text;
  status.className = bad ? "error" : "";
}

async function check(answer, what) {
  if (answer.ok) return true;
  say(what + " failed: " + answer.status + " " + (await answer.text()).trim(), true);
  return false;
}

function uploadOne(file) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", here + encodeURIComponent(file.name));
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress.value = e.loaded / e.total;
    };
    xhr.onload = () => {
      const ok = xhr.status >= 200 && xhr.status < 300;
      say(ok ? "uploaded " + file.name : "upload of " + file.name + " failed: " + xhr.status + " " + xhr.responseText.trim(), !ok);
      resolve(ok);
    };
    xhr.onerror = () => {
      say("upload of " + file.name + " failed: the connection broke", true);
      resolve(false);
    };
    xhr.send(file);
  });
}

async function upload(files) {
  let ok = true;
  for (const file of files) ok = (await uploadOne(file)) && ok;
  progress.hidden = true;
  if (ok) location.reload();
}

async function mkdir() {
  const name = document.getElementById("newdir").value.trim();
  if (!name) return;
  if (await check(await fetch(here + encodeURIComponent(name) + "/", { method: "PUT" }), "new directory")) location.reload();
}

async function remove(name, dir) {
  if (!confirm("Delete " + name + (dir ? " and everything in it" : "") + "?")) return;
  const url = here + encodeURIComponent(name) + (dir ? "/?recursive=true" : "");
  if (await check(await fetch(url, { method: "DELETE" }), "delete")) location.reload();
}

async function rename(name, dir) {
  const to = prompt("Rename " + name + " to:", name);
  if (!to || to === name) return;
  const slash = dir ? "/" : "";
  const destination = location.origin + "/dav" + here + encodeURIComponent(to) + slash;
  const answer = await fetch("/dav" + here + encodeURIComponent(name) + slash, {
    method: "MOVE",
    headers: { Destination: destination, Overwrite: "F" },
  });
  if (await check(answer, "rename")) location.reload();
}

document.getElementById("pick").addEventListener("change", (e) => upload(e.target.files));
document.getElementById("mkdir").addEventListener("click", mkdir);
const drop = document.getElementById("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  upload(e.dataTransfer.files);
});
for (const button of document.querySelectorAll("button[data-action]")) {
  const row = button.closest("tr");
  const name = row.dataset.name;
  const dir = row.dataset.kind === "dir";
  button.addEventListener("click", () => (button.dataset.action === "delete" ? remove(name, dir) : rename(name, dir)));
}
