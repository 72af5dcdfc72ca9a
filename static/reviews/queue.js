// Keyboard shortcuts of the review queue: / search, g t d views, j k move, x tick, Enter open, r review,
// Backspace back to the queue.
(function () {
  "use strict";

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
    } else if (views[event.key]) {
      document.querySelector(`.views a[data-view="${views[event.key]}"]`)?.click();
    } else if (event.key === "j") {
      select(selectedIndex() + 1);
    } else if (event.key === "k") {
      select(selectedIndex() - 1);
    } else if (event.key === "x" && selectedIndex() >= 0) {
      const box = assets()[selectedIndex()].querySelector('input[name="asset"]');
      if (box) box.checked = !box.checked;
    } else if (event.key === "Enter" && selectedIndex() >= 0) {
      assets()[selectedIndex()].querySelector("a.open")?.click();
    } else if (event.key === "r" && selectedIndex() >= 0) {
      assets()[selectedIndex()].querySelector("a.review-link")?.click();
    } else if (event.key === "Backspace") {
      document.querySelector('[data-key="back"]')?.click();
    }
  });
})();
