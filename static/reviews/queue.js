// Keyboard shortcuts of the review queue (/ search, g t d views, j k move, x tick, Enter open, r review, m model's
// shapes, ? help) and of the asset page (Backspace back to the queue, r review); ticks kept while the labeler
// switches views or loads more, until they are cleared (the "clear" beside the count), a bulk action is carried
// out or the tab is closed.
(function () {
  "use strict";

  // Ticks of this queue for the tab's life: switching views reloads the page, and ticks not on it are still
  // sent with the bulk form as hidden inputs.
  const tickKey = "loupe-ticks:" + location.pathname;

  function ticks() {
    try {
      return new Set(JSON.parse(sessionStorage.getItem(tickKey) || "[]"));
    } catch (error) {
      return new Set();
    }
  }

  function storeTicks(set) {
    sessionStorage.setItem(tickKey, JSON.stringify(Array.from(set)));
    showTicks(set);
  }

  function boxes() {
    return Array.from(document.querySelectorAll('#results input[name="asset"][form="bulk"]'));
  }

  function showTicks(set) {
    const form = document.getElementById("bulk");
    if (!form) return;
    const shown = new Set(boxes().map((box) => box.value));
    form.querySelectorAll("input.kept-tick").forEach((input) => input.remove());
    set.forEach((id) => {
      if (shown.has(id)) return;
      const input = document.createElement("input");
      Object.assign(input, { type: "hidden", name: "asset", value: id, className: "kept-tick" });
      form.appendChild(input);
    });
    const counter = document.getElementById("ticked");
    if (counter) {
      counter.hidden = set.size === 0;
      document.getElementById("ticked-count").textContent = String(set.size);
    }
  }

  function restoreTicks() {
    const set = ticks();
    boxes().forEach((box) => {
      if (set.has(box.value)) box.checked = true;
    });
    showTicks(set);
  }

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!box.matches || !box.matches('input[name="asset"][form="bulk"]')) return;
    const set = ticks();
    if (box.checked) set.add(box.value);
    else set.delete(box.value);
    storeTicks(set);
  });

  // Reviewed assets draw their review; "m" (or the button) draws the model's shapes instead, for this tab.
  const drawKey = "loupe-draw-model";

  function showDrawn(model) {
    document.documentElement.classList.toggle("draw-model", model);
    document.querySelectorAll("[data-draw-toggle]").forEach((button) => {
      button.setAttribute("aria-pressed", String(model));
    });
  }

  function toggleDrawn() {
    const model = !document.documentElement.classList.contains("draw-model");
    sessionStorage.setItem(drawKey, model ? "1" : "");
    showDrawn(model);
  }

  showDrawn(sessionStorage.getItem(drawKey) === "1");

  function typing(event) {
    const target = event.target;
    return target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName);
  }

  function assets() {
    return Array.from(document.querySelectorAll("#results .asset"));
  }

  function select(index) {
    const list = assets();
    if (!list.length) return;
    const clamped = Math.max(0, Math.min(index, list.length - 1));
    list.forEach((item) => item.classList.remove("selected"));
    const chosen = list[clamped];
    chosen.classList.add("selected");
    chosen.scrollIntoView({ block: "nearest" });
    chosen.querySelector("a.open")?.focus({ preventScroll: true });
  }

  function selectedIndex() {
    return assets().findIndex((item) => item.classList.contains("selected"));
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && typing(event)) {
      event.target.blur();
      return;
    }
    if (typing(event)) return;
    const views = { g: "grid", t: "table", d: "details" };
    if (event.key === "/") {
      event.preventDefault();
      document.getElementById("q")?.focus();
    } else if (event.key === "?") {
      const help = document.getElementById("queue-help");
      if (help) {
        help.open = !help.open;
        if (help.open) help.scrollIntoView({ block: "nearest" });
      }
    } else if (event.key === "m") {
      toggleDrawn();
    } else if (views[event.key]) {
      document.querySelector(`.views a[data-view="${views[event.key]}"]`)?.click();
    } else if (event.key === "j") {
      select(selectedIndex() + 1);
    } else if (event.key === "k") {
      select(selectedIndex() - 1);
    } else if (event.key === "x" && selectedIndex() >= 0) {
      const box = assets()[selectedIndex()].querySelector('input[name="asset"]');
      if (box) {
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true }));
      }
    } else if (event.key === "Enter" && selectedIndex() >= 0) {
      assets()[selectedIndex()].querySelector("a.open")?.click();
    } else if (event.key === "r") {
      const link = selectedIndex() >= 0 ? assets()[selectedIndex()].querySelector("a.review-link")
        : document.querySelector('[data-key="review"]');
      link?.click();
    } else if (event.key === "Backspace") {
      const back = document.querySelector('[data-key="back"]');
      if (back) {
        event.preventDefault();
        back.click();
      }
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    // A bulk action that was carried out used the ticks: the queue it came from starts with none.
    const done = document.querySelector("[data-ticks-done]");
    if (done) sessionStorage.removeItem("loupe-ticks:" + done.dataset.ticksDone);
    restoreTicks();
    showDrawn(document.documentElement.classList.contains("draw-model"));
    document.querySelectorAll("[data-draw-toggle]").forEach((button) => button.addEventListener("click", toggleDrawn));
    document.getElementById("ticked-clear")?.addEventListener("click", () => {
      boxes().forEach((box) => { box.checked = false; });
      storeTicks(new Set());
    });
  });
  // Loaded more, or the results swapped: tick what was ticked.
  document.addEventListener("htmx:load", restoreTicks);
})();
